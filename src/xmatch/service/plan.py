"""Cluster plans: which shard server holds which partitions of which catalog.

A plan (JSON, written by ``xmatch cluster plan``) names the data directory, the router's
address, the shard servers and, for each catalog, its *slices*: sets of partitions placed
together on the same replicas. Partitions go, largest first, to the ``replicas`` shards with
the fewest rows so far, so the shards end up balanced by rows; the partitions that share a
replica set form one slice. The router asks one replica of each slice a request touches, and
another when that one is unavailable.

Each server's address in the plan is the ``host:port`` the others reach it by: all on one
host, or each on its own (``xmatch cluster plan --router HOST:PORT --shard-addresses ...``).
A server behind NAT or listening on every interface is started with ``--listen``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from xmatch.errors import InputError, XmatchError

PLAN_VERSION = 1


@dataclass(frozen=True)
class ShardEntry:
    name: str
    address: str


@dataclass(frozen=True)
class SliceEntry:
    """Partitions ``(order, pixel)`` of one catalog held by the same shards."""

    id: str
    shards: tuple[int, ...]           # indexes into Plan.shards
    partitions: tuple[tuple[int, int], ...]  # (order, pixel); "order/pixel" in the file
    rows: int


@dataclass(frozen=True)
class Plan:
    data: str                          # the data directory every process reads
    router: str                        # host:port of the router
    replicas: int
    shards: tuple[ShardEntry, ...]
    catalogs: dict[str, tuple[SliceEntry, ...]]

    def shard_index(self, name: str) -> int:
        for i, shard in enumerate(self.shards):
            if shard.name == name:
                return i
        raise XmatchError(f"no shard {name!r} in the plan; shards: "
                          f"{', '.join(s.name for s in self.shards)}")

    def slices_held_by(self, shard: int) -> dict[str, dict[str, list[tuple[int, int]]]]:
        """``{catalog: {slice id: partitions}}`` of what one shard server holds."""
        held = {}
        for catalog, slices in self.catalogs.items():
            mine = {s.id: list(s.partitions) for s in slices if shard in s.shards}
            if mine:
                held[catalog] = mine
        return held

    def rows_held_by(self, shard: int) -> int:
        return sum(s.rows for slices in self.catalogs.values() for s in slices
                   if shard in s.shards)

    # ------------------------------------------------------------------ files

    def to_json(self) -> str:
        return json.dumps({
            "version": PLAN_VERSION, "data": self.data, "router": self.router,
            "replicas": self.replicas,
            "shards": [{"name": s.name, "address": s.address} for s in self.shards],
            "catalogs": {name: [{"id": s.id, "shards": list(s.shards), "rows": s.rows,
                                 "partitions": [f"{o}/{p}" for o, p in s.partitions]}
                                for s in slices]
                         for name, slices in self.catalogs.items()},
        }, indent=1)

    def write(self, path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def read(cls, path) -> Plan:
        try:
            raw = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise XmatchError(f"{path}: no such plan file; write one with "
                              "`xmatch cluster plan`") from None
        except json.JSONDecodeError as error:
            raise XmatchError(f"{path}: not a cluster plan (invalid JSON: {error})") from None
        try:
            if raw.get("version") != PLAN_VERSION:
                raise XmatchError(f"{path}: plan version {raw.get('version')!r}; this xmatch "
                                  f"reads version {PLAN_VERSION}")
            shards = tuple(ShardEntry(str(s["name"]), str(s["address"])) for s in raw["shards"])
            catalogs = {
                name: tuple(SliceEntry(str(s["id"]), tuple(int(i) for i in s["shards"]),
                                       tuple(_partition(p) for p in s["partitions"]),
                                       int(s["rows"]))
                            for s in slices)
                for name, slices in raw["catalogs"].items()}
            plan = cls(str(raw["data"]), str(raw["router"]), int(raw["replicas"]), shards,
                       catalogs)
        except (KeyError, TypeError, ValueError) as error:
            raise XmatchError(f"{path}: not a valid cluster plan ({type(error).__name__}: "
                              f"{error})") from None
        try:
            plan_addresses(len(shards), router=plan.router,
                           shard_addresses=[s.address for s in shards])
        except InputError as error:
            raise XmatchError(f"{path}: {error}") from None
        for name, slices in plan.catalogs.items():
            for s in slices:
                if not s.shards or any(not 0 <= i < len(shards) for i in s.shards):
                    raise XmatchError(f"{path}: slice {s.id} of {name} names shards "
                                      f"{list(s.shards)}; the plan has {len(shards)}")
        return plan


def _partition(text: str) -> tuple[int, int]:
    order, pixel = text.split("/")
    return int(order), int(pixel)


def address_of(text: str, what: str) -> str:
    """``HOST:PORT`` checked (``what`` names it in the message): a host (an IPv6 address in
    brackets, ``[::1]:50052``) and a port 1..65535, as others reach the server."""
    host, colon, port = text.rpartition(":")
    if not colon or not host or not port:
        raise InputError(f"{what} {text!r} is not HOST:PORT (e.g. 10.0.0.2:50052)")
    if any(c.isspace() for c in text):
        raise InputError(f"{what} {text!r} contains white space; give HOST:PORT")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not bare or "[" in bare or "]" in bare or (":" in bare and bare == host):
        raise InputError(f"{what} {text!r}: the host {host!r} is not a host name or address "
                         "(an IPv6 address goes in brackets: [::1]:50052)")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise InputError(f"{what} {text!r}: the port {port!r} is not 1..65535")
    return text


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def plan_addresses(shards: int, host: str | None = None, router_port: int | None = None,
                   shard_ports: list[int] | None = None, router: str | None = None,
                   shard_addresses: list[str] | None = None) -> tuple[str, list[str]]:
    """The router's and each shard's ``host:port``, checked: either one ``host`` (default
    127.0.0.1) with the router on ``router_port`` (default 50051) and shard i on
    ``shard_ports[i]`` (default ``router_port + 1 + i``), or each server's own address,
    ``router`` and ``shard_addresses`` (one per shard). Every address differs."""
    if router is not None or shard_addresses is not None:
        mixed = [name for name, value in (("host", host), ("router_port", router_port),
                                          ("shard_ports", shard_ports)) if value is not None]
        if mixed:
            raise InputError(f"{' and '.join(mixed)} given with the servers' own addresses; "
                             "give either one host and its ports or router and "
                             "shard_addresses (HOST:PORT each)")
        if router is None or shard_addresses is None:
            raise InputError("router and shard_addresses go together: give the router's "
                             "HOST:PORT and one HOST:PORT per shard")
        router = address_of(router, "router address")
        addresses = [address_of(a, "shard address") for a in shard_addresses]
        if len(addresses) != shards:
            raise InputError(f"{len(addresses)} shard address(es) for {shards} shard(s); give "
                             "one HOST:PORT per shard")
    else:
        host = host or "127.0.0.1"
        router_port = 50051 if router_port is None else router_port
        ports = shard_ports or [router_port + 1 + i for i in range(shards)]
        if len(ports) != shards:
            raise InputError(f"{len(ports)} shard ports for {shards} shards")
        router = address_of(_host_port(host, router_port), "router address")
        addresses = [address_of(_host_port(host, port), "shard address") for port in ports]
    named = [("the router", router)] + [(f"shard-{i}", a) for i, a in enumerate(addresses)]
    for i, (name, address) in enumerate(named):
        for other, again in named[i + 1:]:
            if again == address:
                raise InputError(f"{address} is given to both {name} and {other}; each "
                                 "server needs an address of its own")
    return router, addresses


def make_plan(data, shards: int, replicas: int, host: str | None = None,
              router_port: int | None = None, shard_ports: list[int] | None = None,
              catalogs: list[str] | None = None, *, router: str | None = None,
              shard_addresses: list[str] | None = None) -> Plan:
    """Place every partition of the ``catalogs`` of ``data`` (default: all) on ``replicas``
    of ``shards`` shard servers, balanced by rows.

    The servers' addresses (:func:`plan_addresses`): all on one ``host`` (default 127.0.0.1),
    the router on ``router_port`` (default 50051), shard i on ``shard_ports[i]`` (default
    ``router_port + 1 + i``); or across hosts, ``router="10.0.0.1:50051"`` and
    ``shard_addresses=["10.0.0.2:50052", ...]``, one per shard."""
    from xmatch.service.catalogs import partition_rows
    from xmatch.store.catalog import open_catalog

    if shards < 1:
        raise InputError(f"shards = {shards} is not allowed; a cluster needs at least one")
    if not 1 <= replicas <= shards:
        raise InputError(f"replicas = {replicas} is not allowed; it must be 1..{shards} (the "
                         "number of shards)")
    router, addresses = plan_addresses(shards, host, router_port, shard_ports, router,
                                       shard_addresses)
    names = data.names()
    missing = sorted(set(catalogs or []) - set(names))
    if missing:
        raise XmatchError(f"{data.root}: no catalog(s) {', '.join(missing)}; it holds "
                          f"{', '.join(names) or 'none'}")
    names = [n for n in names if catalogs is None or n in catalogs]
    if not names:
        raise XmatchError(f"{data.root}: no catalogs to place; load some first "
                          "(`xmatch load` or `xmatch demo`)")
    pieces = []  # (rows, catalog, partition)
    for name in names:
        catalog = open_catalog(name, data)
        pieces += [(rows, name, (p.order, p.pixel)) for p, rows in partition_rows(catalog).items()]
    load = [0] * shards
    placed: dict[str, dict[tuple[int, ...], list]] = {name: {} for name in names}
    for rows, name, partition in sorted(pieces, key=lambda p: (-p[0], p[1], p[2])):
        chosen = tuple(sorted(sorted(range(shards), key=lambda i: (load[i], i))[:replicas]))
        for i in chosen:
            load[i] += rows
        placed[name].setdefault(chosen, []).append((rows, partition))
    planned = {}
    for name in names:
        slices = [SliceEntry("shards-" + "-".join(str(i) for i in chosen), chosen,
                             tuple(sorted(p for _, p in members)),
                             sum(r for r, _ in members))
                  for chosen, members in sorted(placed[name].items())]
        # A catalog without partitions still gets a slice: its shards answer (emptily), so
        # requests to it have a schema to return.
        planned[name] = tuple(slices) or (SliceEntry("shards-0", (0,), (), 0),)
    return Plan(str(data.root), router, replicas,
                tuple(ShardEntry(f"shard-{i}", address) for i, address in enumerate(addresses)),
                planned)
