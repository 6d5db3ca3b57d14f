"""DNS pins: which addresses a sandbox may reach because an allowed name resolved to them.

The kernel holds the pins (the `pinned` set of the sandbox's table, with timeouts) and decides
on every packet; this module keeps the other half, which names made each pin, because the egress
proxy admits a connection to a pinned address only for a name that pinned it, and because a
policy update must drop exactly the pins whose names are no longer allowed. The callers hold the
sandbox's lock.
"""

from __future__ import annotations

import time
from ipaddress import IPv4Address

from .audit import DnsLog
from .egress_policy import EgressPolicy
from .firewall import Firewall


class DnsPins:
    def __init__(self, firewall: Firewall, *, pin_min: int) -> None:
        self.firewall = firewall
        self.pin_min = pin_min
        self._pins: dict[str, dict[IPv4Address, tuple[float, set[str]]]] = {}   # addr -> (expiry, names)

    def is_pinned(self, sandbox_id: str, addr: IPv4Address) -> bool:
        return bool(self._pins.get(sandbox_id, {}).get(addr, (0.0, set()))[1])

    async def pin(self, sandbox_id: str, name: str, addrs: list[IPv4Address], ttl: int) -> None:
        """Make `addrs` reachable for at least the answer's TTL (and `pin_min`), before the sandbox
        receives the answer. Skips the nft call when every address is pinned long enough."""
        timeout = max(ttl, self.pin_min) + 30
        now = time.monotonic()
        pins = self._pins.setdefault(sandbox_id, {})
        stale = [a for a in addrs if a not in pins or pins[a][0] < now + timeout / 2]
        for a in addrs:
            expiry, names = pins.get(a, (0.0, set()))
            pins[a] = (max(expiry, now + timeout) if a in stale else expiry, names | {name})
        if stale:
            await self.firewall.pin(sandbox_id, stale, timeout)

    def prune(self, sandbox_id: str, policy: EgressPolicy) -> list[IPv4Address]:
        """Forget the names `policy` no longer allows; returns the addresses left with no name."""
        pins = self._pins.setdefault(sandbox_id, {})
        dropped = []
        for addr, (expiry, names) in list(pins.items()):
            names = {n for n in names if policy.pins_name(n)}
            if names:
                pins[addr] = (expiry, names)
            else:
                del pins[addr]
                dropped.append(addr)
        return dropped

    async def readopt(self, sandbox_id: str, policy: EgressPolicy, dns: DnsLog) -> None:
        """After a restart the kernel still holds the pins; recover which allowed names made them
        (from the saved DNS record) so the proxy's "pinned for an allowed name" check holds."""
        expiry = time.monotonic() + self.pin_min
        pins = self._pins.setdefault(sandbox_id, {})
        for addr in await self.firewall.live_pins(sandbox_id):
            names = {n for n in dns.names_for(str(addr)) if policy.pins_name(n)}
            if names:
                pins[addr] = (expiry, names)

    def forget(self, sandbox_id: str) -> None:
        self._pins.pop(sandbox_id, None)
