"""Alert webhook: one HTTP POST with a JSON body per firing or resolving alert, retried with back-off.

The integration point for Alertmanager, Slack bridges and the like, without a dependency on them. Posts run
in a daemon thread: a slow or absent receiver never holds up a worker's check loop.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import httpx

log = logging.getLogger(__name__)

ATTEMPTS = 5
BACKOFF_S = 0.5
TIMEOUT_S = 5.0


def post(
    url: str,
    payload: dict[str, Any],
    *,
    attempts: int = ATTEMPTS,
    backoff_s: float = BACKOFF_S,
    timeout_s: float = TIMEOUT_S,
) -> bool:
    """POST ``payload`` as JSON; a 2xx answer ends it, anything else (5xx, 429, a connection error) is tried
    again after ``backoff_s``, doubling, up to ``attempts`` times. True when delivered."""
    delay = backoff_s
    for attempt in range(1, attempts + 1):
        try:
            answer = httpx.post(url, json=payload, timeout=timeout_s)
            if answer.is_success:
                return True
            problem = f"HTTP {answer.status_code}"
            if answer.status_code < 500 and answer.status_code != 429:
                log.warning("drift webhook %s refused the alert: %s", url, problem)
                return False
        except httpx.HTTPError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if attempt < attempts:
            log.info("drift webhook %s: %s; retrying in %.1fs", url, problem, delay)
            time.sleep(delay)
            delay *= 2
    log.warning("drift webhook %s: gave up after %d attempts (%s)", url, attempts, problem)
    return False


def post_in_background(url: str, payload: dict[str, Any], **kwargs: Any) -> threading.Thread:
    thread = threading.Thread(
        target=post, args=(url, payload), kwargs=kwargs, name="drift-webhook", daemon=True
    )
    thread.start()
    return thread
