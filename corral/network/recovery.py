"""After a restart: which attachments a previous run left complete, and what else it left behind.

A manager can die between any two steps of an attach. What it left is judged from three
sources that survive it: the state files (written first, removed last), the host-side veth
devices (named and aliased after the sandbox) and the nft tables (named and commented after the
sandbox and the manager instance). Only an attachment that all three show as finished is
re-adopted; everything else is removed, so a crash never leaves a half-policed sandbox.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import commands, veth
from .addressing import host_ifname, table_name
from .firewall import Firewall
from .state import AttachedSandbox, StateDir


async def sort_out(records: Iterable[AttachedSandbox], *, netns: str | None,
                   firewall: Firewall) -> tuple[list[AttachedSandbox], list[AttachedSandbox]]:
    """(complete, incomplete): complete ones finished attaching and still have device and table."""
    links = set(await commands.link_names(netns=netns))
    tables = await firewall.tables()
    complete, incomplete = [], []
    for rec in records:
        done = (rec.status == "attached" and host_ifname(rec.sandbox_id) in links
                and table_name(rec.sandbox_id) in tables)
        (complete if done else incomplete).append(rec)
    return complete, incomplete


async def leftovers(*, netns: str | None, instance: str, state: StateDir, firewall: Firewall) -> set[str]:
    """Ids of every sandbox this instance has a state file, a table or a device for."""
    return state.ids_on_disk() | await firewall.owned() | await veth.owned(netns, instance)
