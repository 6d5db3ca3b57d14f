"""Pretend hosts for the cluster test: one network namespace per node, each joined to the test's
own namespace by a veth pair (a /30 each, in a 10.x.y.0/24 no route on this machine uses), and
nothing else: a node reaches no address but its own link's and loopback. Everything made here
has a name unique to the test, and `remove` deletes it (deleting a namespace deletes its veth).
"""

from __future__ import annotations

import ipaddress
import os
import random
import subprocess
import time
from dataclasses import dataclass, field


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def _free_subnet(rng: random.Random) -> ipaddress.IPv4Network:
    taken = [ipaddress.ip_network(line.split()[0], strict=False)
             for line in _ip("-4", "route", "show", "table", "all").stdout.splitlines()
             if line and line.split()[0][0].isdigit()]
    for _ in range(200):
        net = ipaddress.ip_network(f"10.{rng.randrange(160, 250)}.{rng.randrange(0, 256)}.0/24")
        if not any(net.overlaps(t) for t in taken):
            return net
    raise RuntimeError("no free 10.x.y.0/24 for the cluster test's links")


@dataclass
class Host:
    name: str          # the network namespace
    address: str       # the node's end of its link
    gateway: str       # the test's end

    @property
    def netns_path(self) -> str:
        return f"/run/netns/{self.name}"

    def enter(self) -> list[str]:
        """Run a command in this host's network only (not `ip netns exec`, which remounts /sys
        and would hide the cgroup hierarchy the node's runtime needs)."""
        return ["nsenter", f"--net={self.netns_path}"]


@dataclass
class Hosts:
    tag: str
    hosts: list[Host] = field(default_factory=list)

    @classmethod
    def make(cls, count: int) -> "Hosts":
        rng = random.Random(os.urandom(8))
        made = cls(tag=f"{rng.randrange(16**5):05x}")
        net = _free_subnet(rng)
        base = int(net.network_address)
        try:
            for i in range(count):
                name, host_if, node_if = f"crlcl-{made.tag}-{i}", f"cc{made.tag}{i}h", f"cc{made.tag}{i}n"
                gw, addr = ipaddress.ip_address(base + 4 * i + 1), ipaddress.ip_address(base + 4 * i + 2)
                _ip("netns", "add", name)
                made.hosts.append(Host(name, str(addr), str(gw)))
                _ip("link", "add", host_if, "type", "veth", "peer", "name", node_if)
                _ip("link", "set", node_if, "netns", name)
                _ip("addr", "add", f"{gw}/30", "dev", host_if)
                _ip("link", "set", host_if, "up")
                _ip("-n", name, "addr", "add", f"{addr}/30", "dev", node_if)
                _ip("-n", name, "link", "set", node_if, "up")
                _ip("-n", name, "link", "set", "lo", "up")
        except BaseException:
            made.remove()
            raise
        return made

    def remove(self) -> None:
        for h in self.hosts:
            _ip("netns", "delete", h.name, check=False)   # takes both ends of its veth with it
        self.hosts.clear()

    def leftovers(self, wait_s: float = 15) -> list[str]:
        """What is left of this test's namespaces and links; a namespace's veth goes only when the
        namespace's last process has exited, so this waits a little for that."""
        deadline = time.monotonic() + wait_s
        while True:
            names = _ip("netns", "list").stdout
            links = _ip("-o", "link").stdout
            left = [n for n in (f"crlcl-{self.tag}", f"cc{self.tag}") if n in names or n in links]
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.2)
