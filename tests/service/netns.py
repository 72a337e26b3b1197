"""Hosts on one machine: Linux network namespaces joined by veth pairs to a bridge.

``hosts(["router", "shard-0", ...])`` makes one namespace per host and one "switch"
namespace holding a bridge; each host has a veth pair, its own end (``eth0``, up, with an
address in a private /24) in the host's namespace, the other end on the bridge. The host's
(root) network namespace is not touched: no device, address or route is added there, so
parallel runs (names carry the pid and a counter) and the machine's own network do not
collide with it.

The test process stays in the root namespace. It reaches a server inside a host through
:meth:`Network.expose`: a small relay process in that host's namespace accepting on a Unix
socket in the file system (which every network namespace shares) and connecting to the
server over the host's network. gRPC dials ``unix:PATH`` directly.

Creating namespaces needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and the ``ip`` tool of
iproute2; :func:`netns_available` says why it cannot, for ``pytest.skip``.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

#: Every namespace this module makes is named PREFIX<pid>n<counter>-<role>.
PREFIX = "xmt"
#: Host devices: the same name inside every host namespace.
DEVICE = "eth0"
BRIDGE = "br0"
_counter = itertools.count()

# A byte relay from a Unix socket to host:port, run inside a host's namespace. No imports
# of xmatch: it starts in tens of milliseconds.
RELAY = """
import asyncio, os, sys

path, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])

async def pipe(reader, writer):
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()

async def accept(client_reader, client_writer):
    try:
        server_reader, server_writer = await asyncio.open_connection(host, port)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

async def main():
    server = await asyncio.start_unix_server(accept, path)
    print("relay: ready", flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip() or result.returncode}")
    return result


def netns_available() -> str | None:
    """None where this process can create network namespaces and veth pairs, else the
    reason it cannot (for ``pytest.skip``)."""
    if sys.platform != "linux":
        return f"network namespaces are Linux only (this is {sys.platform})"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    probe = f"{PREFIX}{os.getpid()}probe{next(_counter)}"
    try:
        _ip("netns", "add", probe)
    except RuntimeError as error:
        return str(error)
    try:
        _ip("-n", probe, "link", "add", "a0", "type", "veth", "peer", "name", "a1")
        _ip("-n", probe, "link", "add", "b0", "type", "bridge")
        _ip("-n", probe, "link", "set", "lo", "up")
    except RuntimeError as error:
        return str(error)
    finally:
        _ip("netns", "del", probe, check=False)
    return None


@dataclass(frozen=True)
class Host:
    name: str        # the test's name for it: "router", "shard-0"
    netns: str       # its network namespace
    address: str     # its IPv4 address on the switch


@dataclass
class Network:
    """Namespaces, a switch and the processes started in them; :func:`hosts` makes one."""

    switch: str
    subnet: str                                  # "10.213.N" of 10.213.N.0/24
    hosts: dict[str, Host]
    directory: Path                              # relay sockets, removed at the end
    processes: list[subprocess.Popen] = field(default_factory=list)

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def popen(self, host: str, argv: list[str], **kwargs) -> subprocess.Popen:
        """Start ``argv`` inside ``host``'s namespace (in a session of its own, so the
        whole group is killed at the end)."""
        process = subprocess.Popen(["ip", "netns", "exec", self.hosts[host].netns, *argv],
                                   start_new_session=True, **kwargs)
        self.processes.append(process)
        return process

    def run(self, host: str, argv: list[str], timeout: float = 60,
            **kwargs) -> subprocess.CompletedProcess:
        """Run ``argv`` inside ``host``'s namespace to its end."""
        return subprocess.run(["ip", "netns", "exec", self.hosts[host].netns, *argv],
                              capture_output=True, text=True, timeout=timeout, **kwargs)

    def expose(self, host: str, port: int, timeout: float = 30) -> str:
        """A gRPC address (``unix:PATH``) the root namespace reaches ``host``'s
        ``address:port`` by, through a relay process inside ``host``."""
        path = self.directory / f"{host}-{port}.sock"
        relay = self.popen(host, [sys.executable, "-c", RELAY, str(path),
                                  self.hosts[host].address, str(port)],
                           stdout=subprocess.PIPE, text=True)
        line = relay.stdout.readline()  # "relay: ready" once it listens
        if "ready" not in line:
            raise RuntimeError(f"the relay into {host} did not start (exit code "
                               f"{relay.wait(timeout)})")
        return f"unix:{path}"

    def cut(self, host: str) -> None:
        """Cut ``host``'s link: its veth end goes down (packets to and from it vanish)."""
        _ip("-n", self.hosts[host].netns, "link", "set", DEVICE, "down")

    def restore(self, host: str) -> None:
        """Restore ``host``'s link (the kernel puts back the route of its /24)."""
        _ip("-n", self.hosts[host].netns, "link", "set", DEVICE, "up")

    def stop_processes(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    stream.close()

    def close(self) -> None:
        """Kill every process started here, then remove every namespace (their devices go
        with them) and the relay sockets. Names never made are skipped quietly."""
        try:
            self.stop_processes()
        finally:
            for netns in [h.netns for h in self.hosts.values()] + [self.switch]:
                _ip("netns", "del", netns, check=False)
            shutil.rmtree(self.directory, ignore_errors=True)


def sweep_stale() -> None:
    """Remove what a killed earlier run left: namespaces named by this module for a
    process that no longer exists, and the processes still inside them."""
    for line in _ip("netns", "list", check=False).stdout.split("\n"):
        found = re.match(rf"({PREFIX}(\d+)n\d+-\S+)", line)
        if found is None or Path(f"/proc/{found[2]}").exists():
            continue
        for pid in _ip("netns", "pids", found[1], check=False).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        _ip("netns", "del", found[1], check=False)


def namespaces_of_this_process() -> list[str]:
    """The namespaces (made by this module, in this process) that exist now."""
    mine = f"{PREFIX}{os.getpid()}n"
    listed = _ip("netns", "list", check=False).stdout.split("\n")
    return [line.split()[0] for line in listed if line.startswith(mine)]


@contextmanager
def hosts(names: list[str]):
    """A :class:`Network` of one namespace per name, all on one switch, for the duration
    of a ``with`` block; everything is removed at its end, on failure too."""
    if len(names) > 250:
        raise ValueError(f"{len(names)} hosts; a /24 holds 250 here")
    sweep_stale()
    tag = f"{PREFIX}{os.getpid()}n{next(_counter)}"
    # The subnet only has to be unique inside this network (no route leads here from the
    # root namespace); varying it per run still keeps logs of parallel runs apart.
    subnet = f"10.213.{os.getpid() % 250 + 1}"
    network = Network(switch=f"{tag}-switch", subnet=subnet,
                      hosts={name: Host(name, f"{tag}-{name}", f"{subnet}.{i + 1}")
                             for i, name in enumerate(names)},
                      directory=Path(tempfile.mkdtemp(prefix=f"{tag}-")))
    try:
        _ip("netns", "add", network.switch)
        _ip("-n", network.switch, "link", "add", BRIDGE, "type", "bridge")
        _ip("-n", network.switch, "link", "set", BRIDGE, "up")
        _ip("-n", network.switch, "link", "set", "lo", "up")
        for i, host in enumerate(network.hosts.values()):
            _ip("netns", "add", host.netns)
            # Both ends made directly in their namespaces: none appears in the root one.
            _ip("link", "add", DEVICE, "netns", host.netns, "type", "veth", "peer", "name",
                f"port{i}", "netns", network.switch)
            _ip("-n", network.switch, "link", "set", f"port{i}", "master", BRIDGE)
            _ip("-n", network.switch, "link", "set", f"port{i}", "up")
            _ip("-n", host.netns, "link", "set", "lo", "up")
            _ip("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", DEVICE)
            _ip("-n", host.netns, "link", "set", DEVICE, "up")
        yield network
    finally:
        network.close()
