"""API tests run the real app, store and lifecycle service against an in-memory tier.

The tier is tests/lifecycle's in-memory implementation of the Tier contract, for *unit* tests of
the HTTP surface (status codes, validation, pagination, auth); the templates are real ones in a
real store. The real tiers are exercised end to end in tests/e2e and tests/security.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from corral.api import create_app
from corral.config import Settings
from corral.templates import TemplateResources, TemplateStore
from tests.lifecycle.memory_tier import MemoryTier
from tests.templates.helpers import make_template

API_KEY = "e2b_" + "ab" * 20


def make_templates(root: Path) -> TemplateStore:
    """A real template store with two tiny templates: `base`, and `big`, whose resources are
    above the server's default ceilings."""
    store = TemplateStore(root / "templates")
    make_template(store, "base")
    make_template(store, "big", resources=TemplateResources(cpu_count=64, memory_mb=1 << 20, disk_mb=2048))
    return store


@pytest.fixture
def tier() -> MemoryTier:
    return MemoryTier()


@pytest.fixture
async def app(tmp_path: Path, tier: MemoryTier):
    settings = Settings(data_dir=tmp_path / "data", env_api_keys=(API_KEY,))
    application = create_app(settings, tier=tier, templates_store=make_templates(tmp_path))
    await application.state.service.start()
    yield application
    await application.state.service.close()


@pytest.fixture
async def client(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test", headers={"X-API-Key": API_KEY}) as c:
        yield c
