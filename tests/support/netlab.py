"""A small network of hosts on one machine: Linux network namespaces joined by veth links (iproute2).

Topology (``T`` is a tag unique to the run, so concurrent runs do not clash)::

    T-svc   PostgreSQL (10.N.1.1) and the S3 endpoint (10.N.1.2) on the back bridge; the front bridge
    T-h1..  one runner host each: ``back`` (10.N.1.1x, database + store) and ``front`` (10.N.2.1x, clients)
    root    the test process: 10.N.1.254 (operator: registry writes) and 10.N.2.254 (load generator)

A host's ``back`` link can be taken down to cut it off the database and the store while its clients still
reach it on ``front``; an unreachable route to one address cuts it off that service alone. Traffic stays
within these namespaces; nothing is routed out. Each host runs its
processes in its own UTS namespace with its own host name, as separate machines would.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import subprocess
from dataclasses import dataclass, field


class NetlabUnavailable(RuntimeError):
    """Network namespaces cannot be created here (not root, no iproute2, no CAP_NET_ADMIN)."""


def ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = ["ip", *(["-n", netns] if netns else []), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc


def _used_networks() -> list[ipaddress.IPv4Network]:
    out = ip("-4", "-o", "addr", "show").stdout
    nets = []
    for line in out.splitlines():
        parts = line.split()
        if "inet" in parts:
            nets.append(ipaddress.ip_interface(parts[parts.index("inet") + 1]).network)
    return nets


def _free_octet() -> int:
    """A second octet N such that 10.N.0.0/16 overlaps nothing configured in the root namespace."""
    used = _used_networks()
    for _ in range(200):
        n = 64 + secrets.randbelow(190)
        net = ipaddress.ip_network(f"10.{n}.0.0/16")
        if not any(net.overlaps(u) for u in used):
            return n
    raise NetlabUnavailable("no free 10.N.0.0/16 for the test network")


@dataclass
class Host:
    name: str  # host name inside its UTS namespace, e.g. h1
    netns: str
    back_ip: str
    front_ip: str

    def exec_argv(self, *argv: str) -> list[str]:
        """``argv`` run inside this host: its network namespace and its own host name."""
        script = f'hostname {self.name} && exec "$@"'
        return ["ip", "netns", "exec", self.netns, "unshare", "--uts", "sh", "-c", script, "sh", *argv]

    def link(self, which: str, up: bool) -> None:
        """Bring this host's ``back`` or ``front`` link up or down (the cable of that network)."""
        ip("link", "set", which, "up" if up else "down", netns=self.netns)

    def reach(self, address: str, reachable: bool) -> None:
        """Cut this host off one address (an ``unreachable`` route) or restore it."""
        ip("route", "add" if not reachable else "del", "unreachable", f"{address}/32", netns=self.netns)


@dataclass
class NetLab:
    hosts_count: int = 3
    tag: str = field(default_factory=lambda: f"mr{os.getpid() % 1000:03d}{secrets.token_hex(2)}")
    octet: int = 0
    hosts: list[Host] = field(default_factory=list)
    _created: list[str] = field(default_factory=list)
    _root_links: list[str] = field(default_factory=list)

    @property
    def svc(self) -> str:
        return f"{self.tag}-svc"

    @property
    def svc_ip(self) -> str:
        return f"10.{self.octet}.1.1"

    @property
    def store_ip(self) -> str:
        return f"10.{self.octet}.1.2"

    @property
    def operator_ip(self) -> str:
        return f"10.{self.octet}.1.254"

    def svc_argv(self, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", self.svc, *argv]

    def up(self) -> NetLab:
        """Create the namespaces, bridges and links; NetlabUnavailable when namespaces cannot be made."""
        probe = f"{self.tag}-probe"
        try:
            ip("netns", "add", probe)
        except (RuntimeError, FileNotFoundError, PermissionError) as exc:
            raise NetlabUnavailable(f"cannot create a network namespace: {exc}") from exc
        ip("netns", "del", probe, check=False)
        self.octet = _free_octet()
        try:
            self._build()
        except BaseException:
            self.down()
            raise
        return self

    def _netns(self, name: str) -> str:
        ip("netns", "add", name)
        self._created.append(name)
        ip("link", "set", "lo", "up", netns=name)
        return name

    def _build(self) -> None:
        svc, n = self._netns(self.svc), self.octet
        for bridge, addr in (("brback", f"10.{n}.1.1/24"), ("brfront", f"10.{n}.2.1/24")):
            ip("link", "add", bridge, "type", "bridge", netns=svc)
            ip("addr", "add", addr, "dev", bridge, netns=svc)
            ip("link", "set", bridge, "up", netns=svc)
        ip("addr", "add", f"{self.store_ip}/24", "dev", "brback", netns=svc)
        for side, subnet in (("b", 1), ("f", 2)):  # the test process: operator and load generator
            mine = f"{self.tag}{side}"
            ip("link", "add", mine, "type", "veth", "peer", "name", f"root{side}", "netns", svc)
            self._root_links.append(mine)
            ip("addr", "add", f"10.{n}.{subnet}.254/24", "dev", mine)
            ip("link", "set", mine, "up")
            self._attach(f"root{side}", "brback" if side == "b" else "brfront")
        for i in range(1, self.hosts_count + 1):
            host = Host(f"h{i}", self._netns(f"{self.tag}-h{i}"), f"10.{n}.1.{10 + i}", f"10.{n}.2.{10 + i}")
            for link, bridge, addr in (("back", "brback", host.back_ip), ("front", "brfront", host.front_ip)):
                peer = f"h{i}{link[0]}"
                ip("link", "add", link, "type", "veth", "peer", "name", peer, "netns", svc, netns=host.netns)
                ip("addr", "add", f"{addr}/24", "dev", link, netns=host.netns)
                ip("link", "set", link, "up", netns=host.netns)
                self._attach(peer, bridge)
            self.hosts.append(host)

    def _attach(self, link: str, bridge: str) -> None:
        ip("link", "set", link, "master", bridge, netns=self.svc)
        ip("link", "set", link, "up", netns=self.svc)

    def down(self) -> None:
        """Remove every namespace and root link this lab made (their veth pairs go with them)."""
        for link in self._root_links:
            ip("link", "del", link, check=False)
        for name in reversed(self._created):
            pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout
            for pid in pids.split():  # a process left in the namespace would keep it alive
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), 9)
            ip("netns", "del", name, check=False)
        self._root_links.clear()
        self._created.clear()
