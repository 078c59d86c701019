"""The hot path in the routed app: :class:`FastApp` answers plain JSON predict requests before routing.

:class:`FastApp` is the FastAPI app of :func:`modelrunner.server.app.create_app`. It answers the commonest
request itself — see :mod:`modelrunner.server.plain` for which requests and how — with exactly what
``rest.predict`` answers, without building a Starlette ``Request``, matching routes, or passing the
middleware stack (about a sixth of a small model's request time, measured in docs/performance.md). Every
other request goes to FastAPI unchanged. A middleware added to the app does not see the requests answered
here.
"""

from __future__ import annotations

from fastapi import FastAPI

from modelrunner.runner.endpoint import Endpoint
from modelrunner.server import plain
from modelrunner.server.plain import Receive, Scope, Send


class FastApp(FastAPI):
    """FastAPI, with plain JSON predict requests answered first (see the module docstring)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # type: ignore[override]
        predict_auth = self.state.settings.require_auth_for_predict  # then the routed app checks tokens
        if scope["type"] == "http" and scope["method"] == "POST" and not predict_auth:
            endpoint = self._plain_predict(scope)
            if endpoint is not None:
                scope["app"] = self
                settings = self.state.settings
                await plain.answer(endpoint, settings.max_request_bytes, scope, receive, send,
                                   max_rows=settings.max_request_rows)
                return
        await super().__call__(scope, receive, send)  # type: ignore[arg-type]

    def _plain_predict(self, scope: Scope) -> Endpoint | None:
        endpoint: Endpoint | None = plain.endpoint_for(self.state.runtime.endpoints, scope)
        return endpoint
