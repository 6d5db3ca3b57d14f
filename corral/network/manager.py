"""NetworkManager: gives a sandbox's network namespace a policed way out, and takes it away.

Mechanism per attached sandbox (see docs/NETWORK.md):

    sandbox netns                      manager netns (the host's, or a test "world")
    eth0 10.201.n.2/30  <== veth ==>  crh<hash> 10.201.n.1/30 ── nft table inet corral-<id>
    default via .1                     resolver on 10.201.n.1:53    └─ global table: NAT, guards

This class is the façade: it owns the table of attached sandboxes and one lock per sandbox, and
orders the steps. Each step lives in its own module: `veth` (the device pair), `firewall` (nft
tables), `pins` (DNS pins), `audit_logs` (saving what the resolver and proxy saw), `recovery`
(what a previous run left), `state` (the per-sandbox state file).

Nothing it would need after a crash is kept only in memory: the state file is written before
anything is created, kernel objects are named after the sandbox id, and `start()` re-adopts what
is complete and removes what is not.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, ip_address
from pathlib import Path

from corral.errors import NotFound

from . import recovery, veth
from .addressing import SANDBOX_IFNAME, Slot, SlotAllocator, check_sandbox_id, host_ifname
from .audit import AuditReport, build_report
from .audit_logs import AuditLogs
from .egress_policy import FLOOR_RANGES, EgressPolicy
from .firewall import Firewall
from .netns import read_sysctl, write_sysctl
from .nftables import CarriedUse
from .pins import DnsPins
from .egress_proxy import EgressProxy
from .resolver import Resolver
from .state import AttachedSandbox, StateDir

log = logging.getLogger("corral.network")


class NotAttached(NotFound, KeyError):
    """The sandbox has no network attachment (it never had egress, or it was detached)."""


@dataclass(frozen=True)
class Attachment:
    """What the sandbox side looks like: write `nameserver <nameserver>` into its resolv.conf."""

    sandbox_id: str
    address: IPv4Address
    gateway: IPv4Address
    nameserver: IPv4Address
    interface: str
    host_interface: str


def _parse_upstream(text: str) -> tuple[str, int]:
    host, _, port = text.partition(":") if text.count(":") == 1 else (text, "", "")
    try:
        addr = ip_address(host)
    except ValueError:
        raise ValueError(f"upstream resolver {text!r}: expected an IPv4 address, optionally with :port") from None
    if addr.version != 4:
        raise ValueError(f"upstream resolver {text!r}: IPv4 only")
    return str(addr), int(port) if port else 53


class NetworkManager:
    def __init__(self, state_dir: str | os.PathLike[str], *, upstream_resolvers: Sequence[str],
                 pool: str = "10.201.0.0/16", netns: str | None = None, forbidden: Sequence[str] = (),
                 pin_min_seconds: int = 120, pin_idle_seconds: int = 600, dns_timeout: float = 2.0,
                 proxy_port: int = 15443) -> None:
        """`netns`: path of the network namespace to build the host side in (None = this
        process's own, i.e. the host). `forbidden`: extra CIDRs no policy may ever reach (the
        operator's LAN, for instance). The pool must not be shared with another server.
        `proxy_port`: where the SNI/Host-checking egress proxy listens on each sandbox's gateway."""
        if not 0 < proxy_port < 65536:
            raise ValueError(f"proxy_port {proxy_port}: expected a TCP port")
        self.state = StateDir(state_dir)
        self.netns = netns
        self.pool = IPv4Network(pool)
        self.allocator = SlotAllocator(self.pool)
        self.floor: tuple[IPv4Network, ...] = FLOOR_RANGES + (self.pool,) + tuple(IPv4Network(f) for f in forbidden)
        upstreams = [_parse_upstream(u) for u in upstream_resolvers]
        self.instance = hashlib.sha256(str(Path(state_dir).resolve()).encode()).hexdigest()[:8]
        self._attached: dict[str, AttachedSandbox] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.firewall = Firewall(netns=netns, pool=self.pool, floor=self.floor, pin_idle=pin_idle_seconds,
                                 proxy_port=proxy_port, instance=self.instance)
        self.pins = DnsPins(self.firewall, pin_min=pin_min_seconds)
        self.logs = AuditLogs(self.state, self._attached)
        self.resolver = Resolver(netns=netns, upstreams=upstreams, policy_for=self._policy_of,
                                 log_for=self.logs.dns, pinner=self._pin, floor=self.floor, timeout=dns_timeout)
        self.proxy_port = proxy_port
        self.proxy = EgressProxy(netns=netns, port=proxy_port, policy_for=self._policy_of,
                                 is_pinned=self.pins.is_pinned, log_for=self.logs.proxy, floor=self.floor)

    @property
    def global_table(self) -> str:
        return self.firewall.global_table

    # ------------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Enable forwarding, install the global table, re-adopt or clean what a previous run left."""
        self.state.ensure()
        if self.netns is not None and not os.path.exists(self.netns):
            raise FileNotFoundError(f"network namespace {self.netns} does not exist")
        if read_sysctl(self.netns, "net/ipv4/ip_forward") != "1":
            # Needed to route any sandbox traffic; the global guard table keeps sandboxes closed
            # to inbound connections. (Affects the whole netns: see docs/NETWORK.md.)
            write_sysctl(self.netns, "net/ipv4/ip_forward", "1")
        await self.firewall.install_global()
        records, broken = self.state.load_all()
        for p in broken:
            log.error("network: unreadable state file %s, leaving it for an operator", p)
        for rec in records:
            self.allocator.take(rec.slot)
        complete, incomplete = await recovery.sort_out(records, netns=self.netns, firewall=self.firewall)
        for rec in complete:
            if not await self._readopt(rec):
                incomplete.append(rec)
        for rec in incomplete:
            await self._remove(rec.sandbox_id, rec.slot)
        self.logs.start()

    async def _readopt(self, rec: AttachedSandbox) -> bool:
        self._attached[rec.sandbox_id] = rec
        self.logs.adopt(rec)
        slot = Slot(self.pool, rec.slot)
        try:
            await self.resolver.listen(rec.sandbox_id, slot.gateway, slot.address)
            await self.proxy.listen(rec.sandbox_id, slot.gateway, slot.address)
            await self.pins.readopt(rec.sandbox_id, rec.policy, self.logs.dns(rec.sandbox_id))
        except OSError:
            log.exception("network: cannot re-listen for %s; removing its network", rec.sandbox_id)
            self._attached.pop(rec.sandbox_id, None)
            return False
        log.info("network: re-adopted sandbox %s", rec.sandbox_id)
        return True

    async def close(self) -> None:
        """Stop answering DNS and save audit logs; sandbox networking stays in the kernel so a
        restarted manager can re-adopt it (use detach() to remove a sandbox's network)."""
        await self.resolver.close()
        await self.proxy.close()
        self.logs.stop()

    async def shutdown(self) -> None:
        """Detach every sandbox and remove the global table (an orderly, final stop)."""
        for sid in list(self._attached):
            await self.detach(sid)
        await self.close()
        await self.firewall.remove_global()

    # ------------------------------------------------------------------------------ attach etc.

    def _lock(self, sandbox_id: str) -> asyncio.Lock:
        return self._locks.setdefault(sandbox_id, asyncio.Lock())

    async def attach(self, sandbox_id: str, policy: EgressPolicy, *, netns_path: str | None = None,
                     init_pid: int | None = None, carried: CarriedUse | None = None) -> Attachment:
        """Give the sandbox (whose netns is `netns_path` or `/proc/<init_pid>/ns/net`) its policed
        uplink; `carried` is what its previous uplink used (`usage`), for a re-made network."""
        check_sandbox_id(sandbox_id)
        _check_policy(policy)
        if netns_path is None:
            if not init_pid or init_pid <= 0:
                raise ValueError("attach needs netns_path or the sandbox's init_pid")
            netns_path = f"/proc/{init_pid}/ns/net"
        if not os.path.exists(netns_path):
            raise FileNotFoundError(f"sandbox network namespace {netns_path} does not exist")
        async with self._lock(sandbox_id):
            if sandbox_id in self._attached:
                raise RuntimeError(f"sandbox {sandbox_id} is already attached; use update()")
            slot = self.allocator.allocate()
            rec = AttachedSandbox(sandbox_id, slot.index, netns_path, policy)
            self.state.save(rec)
            try:
                await self._build(rec, slot, carried)
            except BaseException:
                await self._remove(sandbox_id, slot.index)
                raise
            rec.status = "attached"
            self.state.save(rec)
            self._attached[sandbox_id] = rec
            self.logs.forget(sandbox_id)
            return self._attachment(rec)

    async def _build(self, rec: AttachedSandbox, slot: Slot, carried: CarriedUse | None = None) -> None:
        """Device pair, then its rules, then addresses: no packet crosses before the rules are live."""
        sid = rec.sandbox_id
        await veth.create_pair(self.netns, rec.netns, sid, self.instance)
        await self.firewall.create(rec, carried)
        await veth.bring_up(self.netns, rec.netns, sid, slot)
        await self.resolver.listen(sid, slot.gateway, slot.address)
        await self.proxy.listen(sid, slot.gateway, slot.address)

    async def ensure(self, sandbox_id: str, policy: EgressPolicy, *, netns_path: str | None = None,
                     init_pid: int | None = None, carried: CarriedUse | None = None) -> Attachment | None:
        """One call for create and PUT /network: attach when the policy first grants egress,
        update when attached. A sandbox that never had egress stays without a device."""
        if sandbox_id in self._attached:
            await self.update(sandbox_id, policy)
            return self._attachment(self._attached[sandbox_id])
        if not policy.grants_egress:
            return None
        return await self.attach(sandbox_id, policy, netns_path=netns_path, init_pid=init_pid, carried=carried)

    async def usage(self, sandbox_id: str) -> CarriedUse:
        """Budget use and byte counters of an attached sandbox, to carry into a network made
        again for it (`attach(carried=...)`)."""
        self._require(sandbox_id)
        return CarriedUse.from_table(await self.firewall.read(sandbox_id))

    async def update(self, sandbox_id: str, policy: EgressPolicy) -> None:
        """Swap the rules atomically; counters, budget use and still-allowed pins survive."""
        _check_policy(policy)
        async with self._lock(sandbox_id):
            rec = self._require(sandbox_id)
            had_budget = rec.policy.byte_budget is not None
            used = await self.firewall.budget_used(sandbox_id) if had_budget else 0
            dropped = self.pins.prune(sandbox_id, policy)
            live = await self.firewall.live_pins(sandbox_id)
            rec.policy = policy
            await self.firewall.replace_rules(rec, had_budget=had_budget, budget_used=used,
                                              drop_pins=[a for a in dropped if a in live])
            self.state.save(rec)
            self.proxy.revalidate(sandbox_id)

    async def detach(self, sandbox_id: str) -> None:
        """Remove everything of the sandbox's network; safe to call twice or for unknown ids."""
        check_sandbox_id(sandbox_id)
        async with self._lock(sandbox_id):
            rec = self._attached.pop(sandbox_id, None)
            slot = rec.slot if rec else None
            if rec is None:
                on_disk = {r.sandbox_id: r for r in self.state.load_all()[0]}
                slot = on_disk[sandbox_id].slot if sandbox_id in on_disk else None
            await self._remove(sandbox_id, slot)
        self._locks.pop(sandbox_id, None)

    async def _remove(self, sandbox_id: str, slot: int | None) -> None:
        """In reverse order of creation; the state file goes last, so a crash here is retried."""
        await self.resolver.unlisten(sandbox_id)
        await self.proxy.unlisten(sandbox_id)
        await self.firewall.delete(sandbox_id)
        await veth.delete(self.netns, sandbox_id)
        self.state.remove(sandbox_id)
        if slot is not None:
            self.allocator.release(slot)
        self.logs.forget(sandbox_id)
        self.pins.forget(sandbox_id)

    async def leftovers(self) -> set[str]:
        """Sandbox ids this manager's instance has kernel objects or state for but does not
        manage (e.g. after a crash, before `start()`); `detach()` removes them."""
        found = await recovery.leftovers(netns=self.netns, instance=self.instance, state=self.state,
                                         firewall=self.firewall)
        return found - set(self._attached)

    def attached(self) -> set[str]:
        """Ids of the sandboxes this manager currently polices (after start(): re-adopted ones too)."""
        return set(self._attached)

    def policy(self, sandbox_id: str) -> EgressPolicy | None:
        """The egress rules an attached sandbox is policed by now."""
        return self._policy_of(sandbox_id)

    def attachment(self, sandbox_id: str) -> Attachment | None:
        rec = self._attached.get(sandbox_id)
        return self._attachment(rec) if rec else None

    # ------------------------------------------------------------------------------ audit

    async def audit(self, sandbox_id: str) -> AuditReport:
        """Hosts contacted (with the names that pinned them), bytes each way, denied attempts,
        names asked, budget. Raises NotAttached for a sandbox without network attachment."""
        rec = self._require(sandbox_id)
        slot = Slot(self.pool, rec.slot)
        return build_report(sandbox_id, str(slot.address), str(slot.gateway), rec.policy.to_json(),
                            await self.firewall.read(sandbox_id), self.logs.dns(sandbox_id),
                            self.logs.proxy(sandbox_id))

    # ------------------------------------------------------------------------------ internals

    def _require(self, sandbox_id: str) -> AttachedSandbox:
        rec = self._attached.get(check_sandbox_id(sandbox_id))
        if rec is None:
            raise NotAttached(f"sandbox {sandbox_id} has no network attachment")
        return rec

    def _attachment(self, rec: AttachedSandbox) -> Attachment:
        slot = Slot(self.pool, rec.slot)
        return Attachment(rec.sandbox_id, slot.address, slot.gateway, slot.gateway, SANDBOX_IFNAME,
                          host_ifname(rec.sandbox_id))

    def _policy_of(self, sandbox_id: str) -> EgressPolicy | None:
        rec = self._attached.get(sandbox_id)
        return rec.policy if rec else None

    async def _pin(self, sandbox_id: str, name: str, addrs: list[IPv4Address], ttl: int) -> None:
        """The resolver's hook, called before the sandbox receives the answer."""
        async with self._lock(sandbox_id):
            # re-checked under the lock: an update() or detach() may have run since the
            # resolver looked at the policy, and must not be undone by a late pin
            policy = self._policy_of(sandbox_id)
            if policy is None or not policy.pins_name(name):
                return
            await self.pins.pin(sandbox_id, name, addrs, ttl)


def _check_policy(policy: object) -> None:
    if not isinstance(policy, EgressPolicy):
        raise TypeError("policy must be an EgressPolicy (build one with from_e2b, from_spec or narrow)")
