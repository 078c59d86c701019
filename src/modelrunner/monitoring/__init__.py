"""Monitoring: Prometheus metrics (metrics.py); drift and payload logs later."""
