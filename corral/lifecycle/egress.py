"""Network egress for sandboxes: one policy per sandbox, enforced by `corral.network`.

Where a policy comes from: a create request's E2B fields (`allow_internet_access`, `network`,
parsed by the API into a `NetworkRequest`) narrow the template's `e2b.toml` network settings, and both are capped by the server's ceiling;
without either, a sandbox has no network at all (the product spec's default). The network
machinery (forwarding, the global nftables table, the DNS resolver) starts only when a sandbox
first needs it, or at start-up when a previous run left attachments to re-adopt or remove.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from corral.config import Settings
from corral.errors import InvalidRequest
from corral.lifecycle.requests import NetworkRequest
from corral.network import NO_EGRESS, CarriedUse, EgressPolicy, NetworkManager, NetworkPolicyError, from_spec, narrow
from corral.network import system_resolvers
from corral.runtime.base import SandboxHandle
from corral.uds import SandboxClients
from corral.wire.client import EnvdClient, EnvdError

log = logging.getLogger("corral.egress")


class Egress:
    def __init__(self, settings: Settings, clients: SandboxClients) -> None:
        self.settings = settings
        self.clients = clients
        self.ceiling = EgressPolicy(internet=settings.egress)
        self._net: NetworkManager | None = None
        self._started = False
        # Two creates asking for egress at once must not both start the manager: the second
        # start's recovery saw the first's attachment half-built (state file written, device
        # not yet aliased or addressed) and removed it, and the first then failed with
        # `ip: Cannot find device crh...` (a 500 on create, seen with warm pools and egress).
        self._starting = asyncio.Lock()

    @property
    def state_dir(self) -> Path:
        return self.settings.data_dir / "network"

    def _manager(self) -> NetworkManager:
        if self._net is None:
            self._net = NetworkManager(
                self.state_dir,
                upstream_resolvers=list(self.settings.dns_upstreams) or system_resolvers(),
                pool=self.settings.network_pool,
                forbidden=list(self.settings.network_forbidden),
            )
        return self._net

    async def _ensure_started(self) -> NetworkManager:
        net = self._manager()
        if self._started:
            return net
        async with self._starting:
            if not self._started:
                await net.start()
                self._started = True
        return net

    # --- policy --------------------------------------------------------------------------------

    def resolve(self, request: NetworkRequest, template_network: dict[str, Any] | None) -> EgressPolicy:
        """The policy of a new sandbox: the request narrows the template, both capped by the server."""
        try:
            tmpl = self._template_policy(template_network)
        except NetworkPolicyError as exc:
            raise InvalidRequest(f"the template's network settings are invalid: {exc}") from None
        if request.egress is not None:
            policy = request.egress if tmpl is None else narrow(request.egress, tmpl)
            return self._cap(policy)
        # A template's own defaults are narrowed to what the server allows, without an error:
        # the client asked for nothing.
        return narrow(tmpl or NO_EGRESS, self.ceiling)

    def _cap(self, policy: EgressPolicy) -> EgressPolicy:
        capped = narrow(policy, self.ceiling)
        if policy.grants_egress and not capped.grants_egress:
            raise InvalidRequest("network egress is disabled on this server (CORRAL_EGRESS=off)")
        return capped

    @staticmethod
    def _template_policy(net: dict[str, Any] | None) -> EgressPolicy | None:
        """A template's `[template.network]` (from its e2b.toml): the most its sandboxes get."""
        if not net:
            return None
        return from_spec(bool(net.get("internet_access", False)), net.get("allowed_hosts") or None)

    # --- lifecycle -----------------------------------------------------------------------------

    async def attach(self, sandbox_id: str, policy: EgressPolicy, handle: SandboxHandle,
                     access_token: str | None, carried: CarriedUse | None = None) -> None:
        """`carried`: what the sandbox's network used before a filesystem-mode pause took it down."""
        if not policy.grants_egress:
            return
        net = await self._ensure_started()
        att = await net.ensure(sandbox_id, policy, init_pid=handle.init_pid, carried=carried)
        if att is not None:
            await self._write_resolv_conf(sandbox_id, handle.envd_socket, access_token, str(att.nameserver))

    def policy_of(self, sandbox_id: str) -> EgressPolicy | None:
        """The rules an attached sandbox runs with now (after any runtime update), else None."""
        if self._net is None or not self._started:
            return None
        return self._net.policy(sandbox_id)

    async def usage(self, sandbox_id: str) -> CarriedUse | None:
        """Budget use and byte counters of an attached sandbox (None without a network), read
        before a filesystem-mode pause removes its network, so the resume carries them on."""
        if not self.is_attached(sandbox_id):
            return None
        assert self._net is not None
        return await self._net.usage(sandbox_id)

    def is_attached(self, sandbox_id: str) -> bool:
        return self._net is not None and sandbox_id in self._net.attached()

    async def attach_at_boot(self, sandbox_id: str, policy: EgressPolicy, netns_path: str,
                             carried: CarriedUse | None = None) -> None:
        """Attach into a namespace the sandbox will join when it boots (the gVisor tier); the
        later `attach` finds it attached and writes resolv.conf through envd."""
        net = await self._ensure_started()
        await net.ensure(sandbox_id, policy, netns_path=netns_path, carried=carried)

    async def update(self, sandbox_id: str, requested: EgressPolicy, handle: SandboxHandle,
                     access_token: str | None) -> EgressPolicy:
        """PUT /sandboxes/{id}/network: replace the sandbox's egress rules (capped by the server)."""
        policy = self._cap(requested)
        if self._net is None and not policy.grants_egress:
            return policy
        net = await self._ensure_started()
        attached = sandbox_id in net.attached()
        att = await net.ensure(sandbox_id, policy, init_pid=handle.init_pid)
        if att is not None and not attached:
            await self._write_resolv_conf(sandbox_id, handle.envd_socket, access_token, str(att.nameserver))
        return policy

    async def detach(self, sandbox_id: str) -> None:
        if self._net is not None and self._started:
            await self._net.detach(sandbox_id)

    async def audit(self, sandbox_id: str) -> dict[str, Any]:
        if self._net is None or not self._started or sandbox_id not in self._net.attached():
            return {"sandboxID": sandbox_id, "attached": False}
        report = await self._net.audit(sandbox_id)
        return {"sandboxID": sandbox_id, "attached": True, **report}

    async def recover(self, live_ids: set[str]) -> None:
        """Re-adopt the attachments of live sandboxes, remove every other one."""
        if not any((self.state_dir / "sandboxes").glob("*.json")):
            return
        net = await self._ensure_started()
        for sid in (await net.leftovers()) | (net.attached() - live_ids):
            log.info("removing the network of sandbox %s (no longer live)", sid)
            await net.detach(sid)

    async def close(self) -> None:
        if self._net is not None and self._started:
            await self._net.close()

    async def _write_resolv_conf(self, sandbox_id: str, socket: Path, token: str | None, nameserver: str) -> None:
        """Through envd, as the sandbox's root: the host never writes into a sandbox's tree."""
        envd = EnvdClient(self.clients.get(sandbox_id, socket), token)
        try:
            await envd.write_file("/etc/resolv.conf", f"nameserver {nameserver}\n".encode(), user="root")
        except EnvdError as exc:
            if exc.status_code is None:   # envd is gone: the attach fails and the sandbox with it
                raise
            log.warning("could not write resolv.conf in %s: %s", sandbox_id, exc.message)
