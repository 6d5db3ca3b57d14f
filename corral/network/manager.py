"""NetworkManager: gives a sandbox's network namespace a policed way out, and takes it away.

Mechanism per attached sandbox (see docs/NETWORK.md):

    sandbox netns                      manager netns (the host's, or a test "world")
    eth0 10.201.n.2/30  <== veth ==>  crh<hash> 10.201.n.1/30 ── nft table inet corral-<id>
    default via .1                     resolver on 10.201.n.1:53    └─ global table: NAT, guards

The manager keeps nothing only in memory that it would need after a crash: each sandbox has a
state file (written before anything is created), kernel objects are named after the sandbox
id, and `start()` re-adopts what is complete and removes what is not.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, ip_address
from pathlib import Path
from typing import Any

from . import commands
from .addressing import (HOST_PREFIX, SANDBOX_IFNAME, Slot, SlotAllocator, check_sandbox_id, host_ifname,
                         peer_ifname, sandbox_from_table, table_name)
from .audit import DnsLog, ProxyLog, build_report
from .netns import arun_in_netns, read_sysctl, write_sysctl
from .nftables import (GLOBAL_TABLE, SandboxTable, parse_table_json, render_global, render_pin, render_table,
                       render_update)
from .policy import FLOOR_RANGES, EgressPolicy, NetworkPolicyError
from .proxy import EgressProxy
from .resolver import Resolver
from .state import SandboxRecord, StateDir

log = logging.getLogger("corral.network")


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
        self.state = StateDir(state_dir)
        self.netns = netns
        self.pool = IPv4Network(pool)
        self.allocator = SlotAllocator(self.pool)
        self.floor: tuple[IPv4Network, ...] = FLOOR_RANGES + (self.pool,) + tuple(IPv4Network(f) for f in forbidden)
        self.pin_min, self.pin_idle = pin_min_seconds, pin_idle_seconds
        upstreams = [_parse_upstream(u) for u in upstream_resolvers]
        self.instance = hashlib.sha256(str(Path(state_dir).resolve()).encode()).hexdigest()[:8]
        self._records: dict[str, SandboxRecord] = {}
        self._dns: dict[str, DnsLog] = {}
        self._proxy_logs: dict[str, ProxyLog] = {}
        self._pins: dict[str, dict[IPv4Address, tuple[float, set[str]]]] = {}   # addr -> (expiry, names)
        self._locks: dict[str, asyncio.Lock] = {}
        self._flusher: asyncio.Task[None] | None = None
        self.resolver = Resolver(netns=netns, upstreams=upstreams, policy_for=self._policy_of,
                                 log_for=self._dns_log, pinner=self._pin, floor=self.floor, timeout=dns_timeout)
        if not 0 < proxy_port < 65536:
            raise ValueError(f"proxy_port {proxy_port}: expected a TCP port")
        self.proxy_port = proxy_port
        self.proxy = EgressProxy(netns=netns, port=proxy_port, policy_for=self._policy_of, is_pinned=self._is_pinned,
                                 log_for=self._proxy_log, floor=self.floor)

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
        await commands.nft_apply(render_global(self.pool, HOST_PREFIX, self.global_table), netns=self.netns)
        records, broken = self.state.load_all()
        for p in broken:
            log.error("network: unreadable state file %s, leaving it for an operator", p)
        links = set(await commands.link_names(netns=self.netns))
        tables = await self._tables()
        for rec in records:
            self.allocator.take(rec.slot)
            complete = (rec.status == "attached" and host_ifname(rec.sandbox_id) in links
                        and table_name(rec.sandbox_id) in tables)
            if complete:
                self._records[rec.sandbox_id] = rec
                self._dns[rec.sandbox_id] = DnsLog(rec.dns)
                self._proxy_logs[rec.sandbox_id] = ProxyLog(rec.checked)
                slot = Slot(self.pool, rec.slot)
                try:
                    await self.resolver.listen(rec.sandbox_id, slot.gateway, slot.address)
                    await self.proxy.listen(rec.sandbox_id, slot.gateway, slot.address)
                    await self._readopt_pins(rec.sandbox_id)
                    log.info("network: re-adopted sandbox %s", rec.sandbox_id)
                    continue
                except OSError:
                    log.exception("network: cannot re-listen for %s; removing its network", rec.sandbox_id)
                    self._records.pop(rec.sandbox_id, None)
            await self._remove(rec.sandbox_id, rec.slot)
        self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())

    async def close(self) -> None:
        """Stop answering DNS and save audit logs; sandbox networking stays in the kernel so a
        restarted manager can re-adopt it (use detach() to remove a sandbox's network)."""
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        await self.resolver.close()
        await self.proxy.close()
        self._flush_dns()

    @property
    def global_table(self) -> str:
        return f"{GLOBAL_TABLE}_{self.instance}"

    async def shutdown(self) -> None:
        """Detach every sandbox and remove the global table (an orderly, final stop)."""
        for sid in list(self._records):
            await self.detach(sid)
        await self.close()
        await commands.run(["nft", "delete", "table", "ip", self.global_table], netns=self.netns, check=False)

    # ------------------------------------------------------------------------------ attach etc.

    def _lock(self, sandbox_id: str) -> asyncio.Lock:
        return self._locks.setdefault(sandbox_id, asyncio.Lock())

    async def attach(self, sandbox_id: str, policy: EgressPolicy, *, netns_path: str | None = None,
                     init_pid: int | None = None) -> Attachment:
        """Give the sandbox (whose netns is `netns_path` or `/proc/<init_pid>/ns/net`) its policed uplink."""
        check_sandbox_id(sandbox_id)
        if not isinstance(policy, EgressPolicy):
            raise NetworkPolicyError("policy must be an EgressPolicy (see corral.network.policy)")
        if netns_path is None:
            if not init_pid or init_pid <= 0:
                raise ValueError("attach needs netns_path or the sandbox's init_pid")
            netns_path = f"/proc/{init_pid}/ns/net"
        if not os.path.exists(netns_path):
            raise FileNotFoundError(f"sandbox network namespace {netns_path} does not exist")
        async with self._lock(sandbox_id):
            if sandbox_id in self._records:
                raise RuntimeError(f"sandbox {sandbox_id} is already attached; use update()")
            slot = self.allocator.allocate()
            rec = SandboxRecord(sandbox_id, slot.index, netns_path, policy)
            self.state.save(rec)
            try:
                await self._build(rec, slot)
            except BaseException:
                await self._remove(sandbox_id, slot.index)
                raise
            rec.status = "attached"
            self.state.save(rec)
            self._records[sandbox_id] = rec
            self._dns[sandbox_id] = DnsLog()
            return self._attachment(rec)

    async def _build(self, rec: SandboxRecord, slot: Slot) -> None:
        sid = rec.sandbox_id
        host, peer = host_ifname(sid), peer_ifname(sid)
        await commands.run(["ip", "link", "add", host, "type", "veth", "peer", "name", peer, "netns", rec.netns],
                           netns=self.netns)
        await commands.run(["ip", "link", "set", host, "alias", f"corral {self.instance} {sid}"], netns=self.netns)
        await arun_in_netns(self.netns, lambda: _quiet_ipv6(host))
        await arun_in_netns(rec.netns, lambda: _quiet_ipv6(peer))
        await commands.nft_apply(render_table(self._table(rec, slot)), netns=self.netns)
        await commands.ip_batch([f"address add {slot.gateway}/30 dev {host}", f"link set {host} up"], netns=self.netns)
        await commands.ip_batch([
            f"link set {peer} name {SANDBOX_IFNAME}",
            f"address add {slot.address}/30 dev {SANDBOX_IFNAME}",
            f"link set {SANDBOX_IFNAME} up",
            "link set lo up",
            f"route add default via {slot.gateway} dev {SANDBOX_IFNAME}",
        ], netns=rec.netns)
        await self.resolver.listen(sid, slot.gateway, slot.address)
        await self.proxy.listen(sid, slot.gateway, slot.address)

    def _table(self, rec: SandboxRecord, slot: Slot | None = None) -> SandboxTable:
        slot = slot or Slot(self.pool, rec.slot)
        return SandboxTable(rec.sandbox_id, table_name(rec.sandbox_id), host_ifname(rec.sandbox_id), slot,
                            rec.policy, self.floor, self.pin_idle,
                            comment=f"corral sandbox {rec.sandbox_id} instance {self.instance}",
                            proxy_port=self.proxy_port)

    async def ensure(self, sandbox_id: str, policy: EgressPolicy, *, netns_path: str | None = None,
                     init_pid: int | None = None) -> Attachment | None:
        """One call for create and PUT /network: attach when the policy first grants egress,
        update when attached. A sandbox that never had egress stays without a device."""
        if sandbox_id in self._records:
            await self.update(sandbox_id, policy)
            return self._attachment(self._records[sandbox_id])
        if not policy.grants_egress:
            return None
        return await self.attach(sandbox_id, policy, netns_path=netns_path, init_pid=init_pid)

    async def update(self, sandbox_id: str, policy: EgressPolicy) -> None:
        """Swap the rules atomically; counters, budget use and still-allowed pins survive."""
        if not isinstance(policy, EgressPolicy):
            raise NetworkPolicyError("policy must be an EgressPolicy (see corral.network.policy)")
        async with self._lock(sandbox_id):
            rec = self._require(sandbox_id)
            used = 0
            had_budget = rec.policy.byte_budget is not None
            if had_budget:
                objs = await commands.nft_json(["list", "quota", "inet", table_name(sandbox_id), "budget"],
                                               netns=self.netns)
                q = parse_table_json(objs)["quota"]
                used = q["used"] if q else 0
            pins = self._pins.setdefault(sandbox_id, {})
            drop = []
            for addr, (expiry, names) in list(pins.items()):
                names = {n for n in names if policy.pins_name(n)}
                if names:
                    pins[addr] = (expiry, names)
                else:
                    del pins[addr]
                    drop.append(addr)
            live = await self._live_pins(sandbox_id)
            drop = [a for a in drop if a in live]
            rec.policy = policy
            await commands.nft_apply(render_update(self._table(rec), had_budget=had_budget, budget_used=used,
                                                   drop_pins=drop), netns=self.netns)
            self.state.save(rec)
            self.proxy.revalidate(sandbox_id)

    async def detach(self, sandbox_id: str) -> None:
        """Remove everything of the sandbox's network; safe to call twice or for unknown ids."""
        check_sandbox_id(sandbox_id)
        async with self._lock(sandbox_id):
            rec = self._records.pop(sandbox_id, None)
            slot = rec.slot if rec else None
            if rec is None:
                on_disk = {r.sandbox_id: r for r in self.state.load_all()[0]}
                slot = on_disk[sandbox_id].slot if sandbox_id in on_disk else None
            await self._remove(sandbox_id, slot)
        self._locks.pop(sandbox_id, None)

    cleanup = detach

    async def _remove(self, sandbox_id: str, slot: int | None) -> None:
        await self.resolver.unlisten(sandbox_id)
        await self.proxy.unlisten(sandbox_id)
        await commands.run(["nft", "delete", "table", "inet", table_name(sandbox_id)], netns=self.netns, check=False)
        await commands.run(["ip", "link", "delete", host_ifname(sandbox_id)], netns=self.netns, check=False)
        self.state.remove(sandbox_id)
        if slot is not None:
            self.allocator.release(slot)
        self._dns.pop(sandbox_id, None)
        self._proxy_logs.pop(sandbox_id, None)
        self._pins.pop(sandbox_id, None)

    async def leftovers(self) -> set[str]:
        """Sandbox ids this manager's instance has kernel objects or state for but does not
        manage (e.g. after a crash, before `start()`); `detach()` removes them."""
        found = set(self.state.ids_on_disk())
        for name, comment in (await self._tables()).items():
            sid = sandbox_from_table(name)
            if sid and comment.endswith(f"instance {self.instance}"):
                found.add(sid)
        _, out, _ = await commands.run(["ip", "-o", "link", "show"], netns=self.netns)
        for line in out.splitlines():
            parts = line.split(" alias ")
            if len(parts) == 2:
                words = parts[1].split()
                if len(words) == 3 and words[0] == "corral" and words[1] == self.instance:
                    found.add(words[2])
        return {s for s in found if s not in self._records}

    def attached(self) -> set[str]:
        """Ids of the sandboxes this manager currently polices (after start(): re-adopted ones too)."""
        return set(self._records)

    def attachment(self, sandbox_id: str) -> Attachment | None:
        rec = self._records.get(sandbox_id)
        return self._attachment(rec) if rec else None

    def policy(self, sandbox_id: str) -> EgressPolicy | None:
        return self._policy_of(sandbox_id)

    # ------------------------------------------------------------------------------ audit

    async def audit(self, sandbox_id: str) -> dict[str, Any]:
        """Hosts contacted (with the names that pinned them), bytes each way, denied attempts,
        names asked, budget. Raises KeyError for a sandbox without network attachment."""
        rec = self._require(sandbox_id)
        objs = await commands.nft_json(["list", "table", "inet", table_name(sandbox_id)], netns=self.netns)
        slot = Slot(self.pool, rec.slot)
        return build_report(sandbox_id, str(slot.address), str(slot.gateway), rec.policy.to_json(),
                            parse_table_json(objs), self._dns_log(sandbox_id), self._proxy_log(sandbox_id))

    # ------------------------------------------------------------------------------ internals

    def _require(self, sandbox_id: str) -> SandboxRecord:
        rec = self._records.get(check_sandbox_id(sandbox_id))
        if rec is None:
            raise KeyError(f"sandbox {sandbox_id} has no network attachment")
        return rec

    def _attachment(self, rec: SandboxRecord) -> Attachment:
        slot = Slot(self.pool, rec.slot)
        return Attachment(rec.sandbox_id, slot.address, slot.gateway, slot.gateway, SANDBOX_IFNAME,
                          host_ifname(rec.sandbox_id))

    def _policy_of(self, sandbox_id: str) -> EgressPolicy | None:
        rec = self._records.get(sandbox_id)
        return rec.policy if rec else None

    def _dns_log(self, sandbox_id: str) -> DnsLog:
        return self._dns.setdefault(sandbox_id, DnsLog())

    def _proxy_log(self, sandbox_id: str) -> ProxyLog:
        return self._proxy_logs.setdefault(sandbox_id, ProxyLog())

    def _is_pinned(self, sandbox_id: str, addr: IPv4Address) -> bool:
        return bool(self._pins.get(sandbox_id, {}).get(addr, (0.0, set()))[1])

    async def _readopt_pins(self, sandbox_id: str) -> None:
        """After a restart the kernel still holds the pins; recover which allowed names made them
        (from the saved DNS record) so the proxy's "pinned for an allowed name" check holds."""
        policy, dns = self._policy_of(sandbox_id), self._dns_log(sandbox_id)
        if policy is None:
            return
        expiry = time.monotonic() + self.pin_min
        pins = self._pins.setdefault(sandbox_id, {})
        for addr in await self._live_pins(sandbox_id):
            names = {n for n in dns.names_for(str(addr)) if policy.pins_name(n)}
            if names:
                pins[addr] = (expiry, names)

    async def _tables(self) -> dict[str, str]:
        objs = await commands.nft_json(["list", "tables", "inet"], netns=self.netns)
        out = {}
        for o in objs:
            if "table" in o:
                out[o["table"]["name"]] = o["table"].get("comment", "")
        return out

    async def _live_pins(self, sandbox_id: str) -> set[IPv4Address]:
        objs = await commands.nft_json(["list", "set", "inet", table_name(sandbox_id), "pinned"], netns=self.netns)
        elems = parse_table_json(objs)["sets"].get("pinned", [])
        return {IPv4Address(e["value"]) for e in elems}

    async def _pin(self, sandbox_id: str, name: str, addrs: list[IPv4Address], ttl: int) -> None:
        """Make `addrs` reachable for at least the answer's TTL (and `pin_min`), before the
        sandbox receives the answer. Skips the nft call when every address is pinned long enough."""
        async with self._lock(sandbox_id):
            # re-checked under the lock: an update() or detach() may have run since the
            # resolver looked at the policy, and must not be undone by a late pin
            policy = self._policy_of(sandbox_id)
            if policy is None or not policy.pins_name(name):
                return
            await self._pin_locked(sandbox_id, name, addrs, ttl)

    async def _pin_locked(self, sandbox_id: str, name: str, addrs: list[IPv4Address], ttl: int) -> None:
        timeout = max(ttl, self.pin_min) + 30
        now = time.monotonic()
        pins = self._pins.setdefault(sandbox_id, {})
        stale = [a for a in addrs if a not in pins or pins[a][0] < now + timeout / 2]
        for a in addrs:
            expiry, names = pins.get(a, (0.0, set()))
            pins[a] = (max(expiry, now + timeout) if a in stale else expiry, names | {name})
        if not stale:
            return
        tn = table_name(sandbox_id)
        # add (no-op if present) + delete + add: the only way to reset an element's timeout
        # in one transaction on nft 1.0.6 (no `destroy`).
        elems = ", ".join(map(str, stale))
        script = (f"add element inet {tn} pinned {{ {elems} }}\n"
                  f"delete element inet {tn} pinned {{ {elems} }}\n" + render_pin(tn, stale, timeout))
        await commands.nft_apply(script, netns=self.netns)

    def _flush_dns(self) -> None:
        """Save the DNS and name-check records that changed (they are the audit's memory)."""
        for sid in set(self._dns) | set(self._proxy_logs):
            rec = self._records.get(sid)
            dlog, plog = self._dns.get(sid), self._proxy_logs.get(sid)
            if rec is None or not ((dlog and dlog.dirty) or (plog and plog.dirty)):
                continue
            if dlog is not None:
                rec.dns, dlog.dirty = dlog.to_json(), False
            if plog is not None:
                rec.checked, plog.dirty = plog.to_json(), False
            self.state.save(rec)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(2)
            try:
                self._flush_dns()
            except OSError:
                log.exception("network: cannot save DNS audit")


def _quiet_ipv6(ifname: str) -> None:
    """No IPv6 on the veth: not even a link-local address the sandbox could use to reach the host."""
    try:
        with open(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6", "w") as f:
            f.write("1")
    except FileNotFoundError:
        pass   # IPv6 disabled in this kernel/netns altogether
