"""The hot path in the routed app: :class:`FastApp` answers plain JSON predict requests before routing.

:class:`FastApp` is the FastAPI app of :func:`modelrunner.server.app.create_app`. It answers the commonest
request itself through :func:`modelrunner.server.native.plain.intercept` — the same interception the
worker's ``shell.WorkerApp`` makes — with exactly what ``native.rest.predict`` answers, without building a
Starlette ``Request``, matching routes, or passing the middleware stack (about a sixth of a small model's
request time, measured in docs/performance.md). Every other request goes to FastAPI unchanged. A
middleware added to the app does not see the requests answered here.
"""

from __future__ import annotations

from fastapi import FastAPI

from modelrunner.server.native import plain, protocore
from modelrunner.server.wire import Receive, Scope, Send


class FastApp(FastAPI):
    """FastAPI, with plain JSON and protobuf predict requests answered first (see the module docstring)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            plane = self.state.dataplane
            if await plain.intercept(plane, scope, receive, send):
                return
            if await protocore.intercept(plane, scope, receive, send):  # a plain protobuf predict
                return
        await super().__call__(scope, receive, send)
