"""Small asyncio helpers (``wait_event`` lives in ``modelrunner.background`` with the background tasks)."""

from __future__ import annotations

from modelrunner.background import wait_event

__all__ = ["wait_event"]
