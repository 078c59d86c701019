"""Listening sockets for the workers: one ``SO_REUSEPORT`` socket per worker slot on one address (the kernel
spreads connections across them), the gRPC port held for the workers to share, and how hosts are written."""

from __future__ import annotations

import ipaddress
import socket

from modelrunner.errors import FailedPrecondition

BACKLOG = 2048


def normalize_host(host: str) -> str:
    """How sockets take a host: ``[::1]`` -> ``::1``, ``Localhost`` -> ``localhost``."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host


def is_loopback(host: str) -> bool:
    host = normalize_host(host)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_host(host: str) -> str:
    """``host`` as written in a URL: an IPv6 address in brackets."""
    host = normalize_host(host)
    return f"[{host}]" if ":" in host else host


def bind_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` listening sockets on one address with SO_REUSEPORT; port 0 picks one free port for all."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    _check_port_free(host, port, family)
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            # Linux copies TCP_NODELAY to accepted connections: no 40 ms Nagle/delayed-ACK stalls on
            # keep-alive, whatever event loop the worker runs.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]
            sock.listen(BACKLOG)
            sock.set_inheritable(True)
            sockets.append(sock)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise FailedPrecondition(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sockets


def _check_port_free(host: str, port: int, family: int) -> None:
    """Binding without SO_REUSEPORT fails if anyone (even another modelrunner) already holds the port."""
    if port == 0:
        return
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as exc:
        raise FailedPrecondition(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    finally:
        probe.close()


def reserve_port(host: str, port: int) -> socket.socket:
    """Hold ``port`` (bound with SO_REUSEPORT, never listening) for the workers' gRPC servers to share, so no
    other program takes it meanwhile; port 0 picks a free one. Close it when serving ends."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    _check_port_free(host, port, family)
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise FailedPrecondition(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock
