"""The veth pair that is a sandbox's only way out: created, brought up, found again, removed.

Creating and bringing up are two steps on purpose: the manager installs the sandbox's nftables
table between them, so no packet ever crosses the pair before its rules are live. Each host-side
device carries the alias `corral <instance> <sandbox id>`, which is how a restarted manager tells
its own devices from another server's (the name itself is a hash, see addressing.py).
"""

from __future__ import annotations

from . import commands
from .addressing import SANDBOX_IFNAME, Slot, host_ifname, peer_ifname
from .netns import arun_in_netns


async def create_pair(host_netns: str | None, sandbox_netns: str, sandbox_id: str, instance: str) -> None:
    """Both ends, down and without addresses; the peer is moved into the sandbox at once."""
    host, peer = host_ifname(sandbox_id), peer_ifname(sandbox_id)
    await commands.run(["ip", "link", "add", host, "type", "veth", "peer", "name", peer, "netns", sandbox_netns],
                       netns=host_netns)
    await commands.run(["ip", "link", "set", host, "alias", f"corral {instance} {sandbox_id}"], netns=host_netns)
    await arun_in_netns(host_netns, lambda: _quiet_ipv6(host))
    await arun_in_netns(sandbox_netns, lambda: _quiet_ipv6(peer))


async def bring_up(host_netns: str | None, sandbox_netns: str, sandbox_id: str, slot: Slot) -> None:
    """Addresses and routes on both ends: the gateway on the host side, eth0 + default route inside."""
    host, peer = host_ifname(sandbox_id), peer_ifname(sandbox_id)
    await commands.ip_batch([f"address add {slot.gateway}/30 dev {host}", f"link set {host} up"], netns=host_netns)
    await commands.ip_batch([
        f"link set {peer} name {SANDBOX_IFNAME}",
        f"address add {slot.address}/30 dev {SANDBOX_IFNAME}",
        f"link set {SANDBOX_IFNAME} up",
        "link set lo up",
        f"route add default via {slot.gateway} dev {SANDBOX_IFNAME}",
    ], netns=sandbox_netns)


async def delete(host_netns: str | None, sandbox_id: str) -> None:
    """Removes both ends (deleting one end of a veth deletes the other); no error when absent."""
    await commands.run(["ip", "link", "delete", host_ifname(sandbox_id)], netns=host_netns, check=False)


async def owned(host_netns: str | None, instance: str) -> set[str]:
    """Sandbox ids of the host-side devices this instance created (by their alias)."""
    _, out, _ = await commands.run(["ip", "-o", "link", "show"], netns=host_netns)
    found = set()
    for line in out.splitlines():
        parts = line.split(" alias ")
        if len(parts) == 2:
            words = parts[1].split()
            if len(words) == 3 and words[0] == "corral" and words[1] == instance:
                found.add(words[2])
    return found


def _quiet_ipv6(ifname: str) -> None:
    """No IPv6 on the veth: not even a link-local address the sandbox could use to reach the host."""
    try:
        with open(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6", "w") as f:
            f.write("1")
    except FileNotFoundError:
        pass   # IPv6 disabled in this kernel/netns altogether
