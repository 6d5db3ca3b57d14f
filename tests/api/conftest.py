"""API tests run the real app, store and lifecycle service against an in-memory tier.

The tier here is a test double for *unit* tests of the HTTP surface (status codes, validation,
pagination, auth); the real tiers are exercised end to end in tests/e2e and tests/security.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from corral.api import create_app
from corral.config import Settings
from corral.runtime.base import ResourceUsage, SandboxHandle, SandboxSpec, Tier

API_KEY = "e2b_" + "ab" * 20


class MemoryTier(Tier):
    name = "memory"

    def __init__(self) -> None:
        self.running: dict[str, SandboxSpec] = {}
        self.frozen: set[str] = set()
        self.destroyed: list[str] = []
        self.dead: set[str] = set()

    async def start(self) -> None: ...
    async def close(self) -> None: ...

    async def create(self, spec: SandboxSpec) -> SandboxHandle:
        self.running[spec.sandbox_id] = spec
        return SandboxHandle(spec.sandbox_id, self.name, spec.workdir / "envd.sock", 0)

    async def destroy(self, sandbox_id: str, workdir: Path) -> None:
        self.running.pop(sandbox_id, None)
        self.destroyed.append(sandbox_id)

    async def adopt(self, sandbox_id: str, workdir: Path) -> SandboxHandle | None:
        return None

    async def leftovers(self) -> list[str]:
        return list(self.running)

    async def freeze(self, sandbox_id: str) -> None:
        self.frozen.add(sandbox_id)

    async def thaw(self, sandbox_id: str) -> None:
        self.frozen.discard(sandbox_id)

    async def usage(self, sandbox_id: str, workdir: Path) -> ResourceUsage:
        spec = self.running[sandbox_id]
        return ResourceUsage(1_000_000, spec.limits.cpu_count, 10 << 20, 1 << 20, spec.limits.memory_mb << 20, 4096, spec.limits.disk_mb << 20)

    def is_alive(self, sandbox_id: str) -> bool:
        return sandbox_id not in self.dead


@dataclass
class FakeTemplate:
    name: str
    rootfs: Path
    cpu_count: int | None = None
    memory_mb: int | None = None
    disk_mb: int | None = None
    created_at: datetime = datetime(2026, 1, 1, tzinfo=timezone.utc)


class Templates:
    def __init__(self, root: Path) -> None:
        self.items = {"base": FakeTemplate("base", root), "big": FakeTemplate("big", root, cpu_count=64, memory_mb=1 << 20)}

    def exists(self, name: str) -> bool:
        return name in self.items

    def get(self, name: str) -> FakeTemplate:
        return self.items[name]

    def list(self) -> list[FakeTemplate]:
        return list(self.items.values())


@pytest.fixture
def tier() -> MemoryTier:
    return MemoryTier()


@pytest.fixture
async def app(tmp_path: Path, tier: MemoryTier):
    settings = Settings(data_dir=tmp_path / "data", env_api_keys=(API_KEY,))
    application = create_app(settings, tier=tier, templates_store=Templates(tmp_path))
    await application.state.service.start()
    yield application
    await application.state.service.close()


@pytest.fixture
async def client(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test", headers={"X-API-Key": API_KEY}) as c:
        yield c
