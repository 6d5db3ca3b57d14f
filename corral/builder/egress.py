"""Registry-only egress for build sandboxes, through corral's NetworkManager.

The build gets its own manager instance (own state dir, own address pool) so it never shares
addresses or nft tables with a running server. The policy allows exactly the registry hosts
(`registries.py`); the manager's floor keeps loopback, the LAN and cloud metadata out of reach
whatever those names resolve to.
"""

from __future__ import annotations

from pathlib import Path

from corral.errors import CorralError
from corral.network import NetworkManager, from_spec
from corral.builder.registries import host_nameservers, local_ca_pem, registry_hosts

BUILD_POOL = "10.202.0.0/24"
DEFAULT_STATE_DIR = Path("/var/lib/corral/build-network")


class EgressUnavailable(CorralError, RuntimeError):
    pass


class RegistryEgress:
    def __init__(self, hosts: list[str] | None = None, *, state_dir: Path = DEFAULT_STATE_DIR,
                 pool: str = BUILD_POOL, upstreams: list[str] | None = None) -> None:
        self.hosts = list(hosts if hosts is not None else registry_hosts())
        self.ca_pem = local_ca_pem()
        servers = upstreams if upstreams is not None else host_nameservers()
        if not servers:
            raise EgressUnavailable("no IPv4 nameserver in /etc/resolv.conf for the build's resolver")
        self.policy = from_spec(True, self.hosts)
        self.manager = NetworkManager(state_dir, upstream_resolvers=servers, pool=pool)
        self._started = False

    async def __aenter__(self) -> "RegistryEgress":
        await self.manager.start()
        self._started = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._started:
            await self.manager.shutdown()

    async def attach(self, sandbox_id: str, init_pid: int) -> str:
        att = await self.manager.attach(sandbox_id, self.policy, init_pid=init_pid)
        return str(att.nameserver)

    async def detach(self, sandbox_id: str) -> None:
        await self.manager.detach(sandbox_id)
