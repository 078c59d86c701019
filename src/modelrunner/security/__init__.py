"""Tokens' routes, pickle trust decisions and registry federation (docs/security.md, docs/federation.md)."""
