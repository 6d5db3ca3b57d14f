"""What every step of the lifecycle works with, built once by the service façade.

The store is the truth about sandboxes; the handle table is the one thing kept only in memory,
and it is rebuilt from the store and the tier after a restart (see recovery.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timezone

from corral.config import Settings
from corral.lifecycle.egress import Egress
from corral.lifecycle.errors import SandboxNotFound
from corral.lifecycle.volumes import Volumes
from corral.runtime.base import SandboxHandle, Tier
from corral.store import SandboxRecord, SandboxState, Store
from corral.templates import TemplateStore
from corral.uds import SandboxClients
from corral.usage import UsageRecorder
from corral.wire.client import EnvdClient

# The states a client can see; `starting` and `pooled` sandboxes are invisible to the API.
VISIBLE = frozenset({SandboxState.RUNNING.value, SandboxState.PAUSED.value})


def now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Parts:
    settings: Settings
    store: Store
    templates: TemplateStore
    tier: Tier
    clients: SandboxClients
    egress: Egress
    # Metering: every hand-out, pause, resume and end, and the pools' hits, misses and refills.
    metering: UsageRecorder
    # Named persistent directories sandboxes mount (E2B's volumes).
    volumes: Volumes
    handles: dict[str, SandboxHandle] = field(default_factory=dict)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    # Set whenever a deadline may have moved closer, so the reaper looks again at once.
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def lock(self, sandbox_id: str) -> asyncio.Lock:
        return self.locks.setdefault(sandbox_id, asyncio.Lock())

    def envd(self, sandbox_id: str, handle: SandboxHandle, access_token: str | None) -> EnvdClient:
        """The host's client for this sandbox's envd, over the sandbox's shared connection pool
        (so a hand-over's connection is the one the client's first command reuses)."""
        return EnvdClient(self.clients.get(sandbox_id, handle.envd_socket), access_token)

    def visible(self, sandbox_id: str) -> SandboxRecord:
        """The record of a sandbox a client may see, or SandboxNotFound."""
        rec = self.store.get_live(sandbox_id)
        if rec is None or rec.state not in VISIBLE:
            raise SandboxNotFound(sandbox_id)
        return rec
