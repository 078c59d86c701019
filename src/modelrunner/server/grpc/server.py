"""The gRPC server of one worker process: V2 (``inference.GRPCInferenceService``) + per-contract services.

A ``grpc.aio`` server on the worker's event loop, next to the HTTP app and over the same runtime. Every
worker binds the same ``--grpc-port`` with ``SO_REUSEPORT`` (the kernel spreads connections). It starts
after the runtime (first loads done) and stops before it, letting in-flight calls finish (``attach``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc

from modelrunner.errors import FailedPrecondition
from modelrunner.server.dataplane import DataPlane
from modelrunner.server.grpc.native import ContractHandler
from modelrunner.server.grpc.v2 import InferenceServicer, add_to_server
from modelrunner.settings import Settings

log = logging.getLogger(__name__)

MAX_GRACE_S = 10.0


def address(host: str, port: int) -> str:
    """``host:port`` as gRPC wants it (IPv6 literals in brackets)."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


class GrpcServer:
    """``start()`` binds and serves; ``port`` is the bound port (useful with port 0); ``stop()`` drains."""

    def __init__(self, plane: DataPlane, host: str = "127.0.0.1", port: int = 0) -> None:
        self.plane = plane
        self.settings = plane.settings
        self.host = host
        self.port = port
        self._server: grpc.aio.Server | None = None

    def _options(self) -> list[tuple[str, Any]]:
        return [
            ("grpc.so_reuseport", 1),
            ("grpc.max_receive_message_length", self.settings.max_request_bytes),
            ("grpc.max_send_message_length", -1),
        ]

    def _interceptors(self) -> list[Any]:
        """The auth check, only when a call can need a token (``require_auth_for_predict``: no other gRPC
        method needs one): an aio interceptor costs ~65 us of CPU per call even when it lets it through."""
        if not self.settings.require_auth_for_predict:
            return []
        from modelrunner.server.auth import grpc_interceptor  # imports FastAPI: only when needed

        return [grpc_interceptor(self.settings, self.plane.registry)]

    def register(self, server: Any) -> None:
        """Add the V2 service and the per-contract ``Predict`` services to ``server``."""
        add_to_server(InferenceServicer(self.plane), server)
        server.add_generic_rpc_handlers((ContractHandler(self.plane),))

    async def start(self) -> int:
        server = grpc.aio.server(options=self._options(), interceptors=self._interceptors())
        self.register(server)
        where = address(self.host, self.port)
        try:
            bound = _add_port(server, where, self.settings)
        except RuntimeError as exc:
            raise FailedPrecondition(f"cannot serve gRPC on {where}: {exc}") from exc
        if not bound:
            raise FailedPrecondition(f"cannot serve gRPC on {where}")
        await server.start()
        self._server, self.port = server, bound
        log.info("serving gRPC on %s", address(self.host, bound))
        return bound

    async def stop(self, grace_s: float | None = None) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        grace = min(self.settings.drain_timeout_s, MAX_GRACE_S) if grace_s is None else grace_s
        await server.stop(grace)


def _add_port(server: Any, where: str, settings: Settings) -> int:
    """Bind ``where``: over TLS when ``settings.tls_cert``/``tls_key`` are set (then plaintext is refused)."""
    if settings.tls_cert is None:
        return int(server.add_insecure_port(where))
    if settings.tls_key is None:
        raise FailedPrecondition("MODELRUNNER_TLS_CERT is set without MODELRUNNER_TLS_KEY")
    credentials = grpc.ssl_server_credentials(
        [(settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())]
    )
    return int(server.add_secure_port(where, credentials))


def attach(app: Any, host: str = "127.0.0.1", port: int = 0) -> GrpcServer:
    """Serve gRPC alongside ``app`` (from ``server.app.create_app``), over its data plane.

    The gRPC server starts once the app's lifespan has started the runtime and stops before the runtime
    does. It is also ``app.state.grpc``.
    """
    server = GrpcServer(app.state.dataplane, host, port)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: Any) -> AsyncIterator[Any]:
        async with inner(a) as state:
            await server.start()
            try:
                yield state
            finally:
                await server.stop()

    app.router.lifespan_context = lifespan
    app.state.grpc = server
    return server
