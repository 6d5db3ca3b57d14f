"""Per-sandbox names and addresses: derived from the sandbox id or from a numbered slot.

Everything a sandbox leaves in the kernel is named after its id, so a restarted server (or an
operator with `ip link`/`nft list tables`) can tell whose it is:

* host-side veth `crh<12 hex>` and its peer `crp<12 hex>` (renamed `eth0` inside the sandbox):
  IFNAMSIZ allows 15 characters, so the id is hashed;
* nftables table `inet corral-<id>` (ids are `[a-z0-9]`, legal in nft names).

Each sandbox gets slot *n* of the pool, a /30: network+1 is the gateway on the host side (where
the resolver listens), network+2 the sandbox's address.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from corral.errors import Unavailable

# Names built from an id end up in nft scripts and device names, so the id must match in full: a
# `$`-anchored search would also accept a trailing newline, which would end an nft statement.
_ID = re.compile(r"[a-z0-9]{1,64}")


def _is_sandbox_id(value: str) -> bool:
    return _ID.fullmatch(value) is not None


HOST_PREFIX = "crh"
PEER_PREFIX = "crp"
TABLE_PREFIX = "corral-"
SANDBOX_IFNAME = "eth0"
IFNAMSIZ = 15


def check_sandbox_id(sandbox_id: str) -> str:
    if not isinstance(sandbox_id, str) or not _is_sandbox_id(sandbox_id):
        raise ValueError(f"not a sandbox id: {sandbox_id!r}")
    return sandbox_id


def _digest(sandbox_id: str) -> str:
    return hashlib.sha256(check_sandbox_id(sandbox_id).encode()).hexdigest()[:12]


def host_ifname(sandbox_id: str) -> str:
    return HOST_PREFIX + _digest(sandbox_id)


def peer_ifname(sandbox_id: str) -> str:
    return PEER_PREFIX + _digest(sandbox_id)


def table_name(sandbox_id: str) -> str:
    return TABLE_PREFIX + check_sandbox_id(sandbox_id)


def sandbox_from_table(name: str) -> str | None:
    if name.startswith(TABLE_PREFIX) and _is_sandbox_id(name[len(TABLE_PREFIX):]):
        return name[len(TABLE_PREFIX):]
    return None


class PoolExhausted(Unavailable):
    """Every /30 of the pool is in use (a 503: slots come free as sandboxes end)."""


@dataclass(frozen=True)
class Slot:
    """One /30 of the pool."""

    pool: IPv4Network
    index: int

    @property
    def network(self) -> IPv4Network:
        return IPv4Network((int(self.pool.network_address) + 4 * self.index, 30))

    @property
    def gateway(self) -> IPv4Address:
        return self.network.network_address + 1

    @property
    def address(self) -> IPv4Address:
        return self.network.network_address + 2


class SlotAllocator:
    """Hands out free /30s, walking forward so a just-freed slot is not reused at once
    (conntrack entries of the previous owner may still be alive for a while)."""

    def __init__(self, pool: IPv4Network) -> None:
        if pool.prefixlen > 30:
            raise ValueError(f"sandbox pool {pool} is smaller than one /30")
        self.pool = pool
        self.capacity = pool.num_addresses // 4
        self._used: set[int] = set()
        self._next = 0

    def take(self, index: int) -> Slot:
        """Mark a known slot as used (state files read back after a restart)."""
        if not 0 <= index < self.capacity:
            raise ValueError(f"slot {index} outside pool {self.pool}")
        self._used.add(index)
        return Slot(self.pool, index)

    def allocate(self) -> Slot:
        for step in range(self.capacity):
            i = (self._next + step) % self.capacity
            if i not in self._used:
                self._used.add(i)
                self._next = (i + 1) % self.capacity
                return Slot(self.pool, i)
        raise PoolExhausted(f"the sandbox network pool is exhausted ({self.capacity} sandboxes)")

    def release(self, index: int) -> None:
        self._used.discard(index)

    @property
    def used(self) -> frozenset[int]:
        return frozenset(self._used)
