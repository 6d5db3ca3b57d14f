"""Lifecycle unit tests: the real service, store and template store over the in-memory tier."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.config import Settings
from corral.lifecycle import SandboxService
from corral.store import Store
from corral.templates import TemplateResources, TemplateStore
from tests.lifecycle.memory_tier import MemoryTier
from tests.templates.helpers import make_template


@pytest.fixture
def tier() -> MemoryTier:
    return MemoryTier()


@pytest.fixture
def templates(tmp_path: Path) -> TemplateStore:
    store = TemplateStore(tmp_path / "templates")
    make_template(store, "base")
    make_template(store, "big", resources=TemplateResources(cpu_count=64, memory_mb=1 << 20, disk_mb=2048))
    return store


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
async def service(settings: Settings, templates: TemplateStore, tier: MemoryTier):
    svc = SandboxService(settings, Store(settings.db_path), templates, tier)
    await svc.start()
    yield svc
    await svc.close()
