"""Sending a sandbox's rules to the kernel and reading them back: the only module that runs `nft`.

`nftables.py` renders rule sets as text and knows nothing of processes, so it is tested without
root; this module applies them, each change as one `nft -f` transaction (a half-applied rule set
is never live), and reads counters, the budget's quota and the pinned set back for updates and
the audit.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from . import commands
from .addressing import HOST_PREFIX, Slot, host_ifname, sandbox_from_table, table_name
from .nftables import (GLOBAL_TABLE, CarriedUse, SandboxTable, parse_table_json, render_global, render_pin, render_table,
                       render_update)
from .state import AttachedSandbox


class Firewall:
    def __init__(self, *, netns: str | None, pool: IPv4Network, floor: tuple[IPv4Network, ...], pin_idle: int,
                 proxy_port: int, instance: str) -> None:
        self.netns, self.pool, self.floor = netns, pool, floor
        self.pin_idle, self.proxy_port, self.instance = pin_idle, proxy_port, instance

    @property
    def global_table(self) -> str:
        """One per manager instance, so two managers (a server and a template build) coexist."""
        return f"{GLOBAL_TABLE}_{self.instance}"

    async def install_global(self) -> None:
        await commands.nft_apply(render_global(self.pool, HOST_PREFIX, self.global_table), netns=self.netns)

    async def remove_global(self) -> None:
        await commands.run(["nft", "delete", "table", "ip", self.global_table], netns=self.netns, check=False)

    def table(self, sandbox: AttachedSandbox) -> SandboxTable:
        return SandboxTable(sandbox.sandbox_id, table_name(sandbox.sandbox_id), host_ifname(sandbox.sandbox_id),
                            Slot(self.pool, sandbox.slot), sandbox.policy, self.floor, self.pin_idle,
                            comment=f"corral sandbox {sandbox.sandbox_id} instance {self.instance}",
                            proxy_port=self.proxy_port)

    async def create(self, sandbox: AttachedSandbox, carried: CarriedUse | None = None) -> None:
        await commands.nft_apply(render_table(self.table(sandbox), carried), netns=self.netns)

    async def replace_rules(self, sandbox: AttachedSandbox, *, had_budget: bool, budget_used: int,
                            drop_pins: Iterable[IPv4Address]) -> None:
        """The sandbox's current policy, swapped in atomically; counters and budget use survive."""
        await commands.nft_apply(render_update(self.table(sandbox), had_budget=had_budget, budget_used=budget_used,
                                               drop_pins=drop_pins), netns=self.netns)

    async def budget_used(self, sandbox_id: str) -> int:
        objs = await commands.nft_json(["list", "quota", "inet", table_name(sandbox_id), "budget"], netns=self.netns)
        quota = parse_table_json(objs)["quota"]
        return quota["used"] if quota else 0

    async def delete(self, sandbox_id: str) -> None:
        await commands.run(["nft", "delete", "table", "inet", table_name(sandbox_id)], netns=self.netns, check=False)

    async def tables(self) -> dict[str, str]:
        """Every inet table in the namespace, name -> comment (other servers' too)."""
        objs = await commands.nft_json(["list", "tables", "inet"], netns=self.netns)
        return {o["table"]["name"]: o["table"].get("comment", "") for o in objs if "table" in o}

    async def owned(self) -> set[str]:
        """Sandbox ids whose table this instance created (by the table's comment)."""
        return {sid for name, comment in (await self.tables()).items()
                if (sid := sandbox_from_table(name)) and comment.endswith(f"instance {self.instance}")}

    async def read(self, sandbox_id: str) -> dict[str, Any]:
        """Counters, quota and dynamic sets of the sandbox's table (see nftables.parse_table_json)."""
        objs = await commands.nft_json(["list", "table", "inet", table_name(sandbox_id)], netns=self.netns)
        return parse_table_json(objs)

    async def live_pins(self, sandbox_id: str) -> set[IPv4Address]:
        objs = await commands.nft_json(["list", "set", "inet", table_name(sandbox_id), "pinned"], netns=self.netns)
        return {IPv4Address(e["value"]) for e in parse_table_json(objs)["sets"].get("pinned", [])}

    async def pin(self, sandbox_id: str, addrs: list[IPv4Address], timeout: int) -> None:
        """(Re)start each address's timeout. add (a no-op if present) + delete + add is the only way
        to reset an element's timeout in one transaction on nft 1.0.6 (no `destroy`)."""
        tn = table_name(sandbox_id)
        elems = ", ".join(map(str, addrs))
        script = (f"add element inet {tn} pinned {{ {elems} }}\n"
                  f"delete element inet {tn} pinned {{ {elems} }}\n" + render_pin(tn, addrs, timeout))
        await commands.nft_apply(script, netns=self.netns)
