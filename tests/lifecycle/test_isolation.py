"""Choosing a sandbox's tier through the service: server default, template minimum, request."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from corral.config import Settings
from corral.errors import CorralError
from corral.lifecycle import CreateRequest, SandboxService
from corral.runtime.tiers import TierSet
from corral.store import Store
from corral.templates import TemplateStore
from corral.templates.image import IMAGE_FILE, ImageConfig
from tests.lifecycle.memory_tier import MemoryTier
from tests.templates.helpers import make_template


class Named(MemoryTier):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name


@pytest.fixture
def two_tiers() -> TierSet:
    return TierSet({"namespace": Named("namespace"), "gvisor": Named("gvisor")}, "namespace")


@pytest.fixture
def templates(tmp_path: Path) -> TemplateStore:
    store = TemplateStore(tmp_path / "templates")
    make_template(store, "base")
    hardened = make_template(store, "hardened")
    (Path(hardened.path) / IMAGE_FILE).write_text(ImageConfig(isolation="gvisor").to_json())
    return store


async def _service(tmp_path: Path, templates: TemplateStore, tier, default: str = "namespace"):  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path / "data", tier=default)
    svc = SandboxService(settings, Store(settings.db_path), templates, tier)
    await svc.start()
    return svc


async def test_default_template_minimum_and_raising(tmp_path, templates, two_tiers) -> None:  # type: ignore[no-untyped-def]
    svc = await _service(tmp_path, templates, two_tiers)
    try:
        plain = await svc.create(CreateRequest(template="base"))
        assert plain.tier == "namespace"
        assert plain.sandbox_id in two_tiers.tiers["namespace"].running  # type: ignore[attr-defined]
        hard = await svc.create(CreateRequest(template="hardened"))
        assert hard.tier == "gvisor"
        assert hard.sandbox_id in two_tiers.tiers["gvisor"].running  # type: ignore[attr-defined]
        raised = await svc.create(CreateRequest(template="base", isolation="gvisor"))
        assert raised.tier == "gvisor"
        await svc.pause(raised.sandbox_id)   # later calls follow the sandbox to its tier
        assert raised.sandbox_id in two_tiers.tiers["gvisor"].frozen  # type: ignore[attr-defined]
    finally:
        await svc.close()


async def test_lowering_is_a_400_with_the_reason(tmp_path, templates, two_tiers) -> None:  # type: ignore[no-untyped-def]
    svc = await _service(tmp_path, templates, two_tiers)
    try:
        with pytest.raises(CorralError) as exc:
            await svc.create(CreateRequest(template="hardened", isolation="namespace"))
        assert exc.value.status == 400 and "never lower" in exc.value.message
        assert "the template" in exc.value.message
    finally:
        await svc.close()
    svc = await _service(tmp_path / "b", templates, two_tiers, default="gvisor")
    try:
        assert (await svc.create(CreateRequest(template="base"))).tier == "gvisor"
        with pytest.raises(CorralError, match="server's default"):
            await svc.create(CreateRequest(template="base", isolation="namespace"))
    finally:
        await svc.close()


async def test_a_tier_the_server_lacks_is_refused(tmp_path, templates) -> None:  # type: ignore[no-untyped-def]
    only = TierSet({"namespace": Named("namespace")}, "namespace")
    svc = await _service(tmp_path, templates, only)
    try:
        with pytest.raises(CorralError, match="does not run") as exc:
            await svc.create(CreateRequest(template="hardened"))
        assert exc.value.status == 400
    finally:
        await svc.close()


async def test_a_tier_pool_serves_creates_that_raise_isolation_and_only_those(tmp_path, templates, two_tiers) -> None:  # type: ignore[no-untyped-def]
    """`base@gvisor=1` keeps a gVisor sandbox of `base` warm: a create that raises isolation to
    gvisor draws from it (the in-memory tier has no envd, so the hand-over fails and the pooled
    sandbox is killed as unhealthy: that it was tried shows the claim chose it); a plain create
    never does. A pool on a tier the template may not run (below its minimum) is switched off."""
    settings = Settings(data_dir=tmp_path / "data", tier="namespace")
    settings.pool = {"base@gvisor": 1, "hardened@namespace": 1}
    svc = SandboxService(settings, Store(settings.db_path), templates, two_tiers)
    await svc.start()
    try:
        assert svc.pool is not None and set(svc.pool.sizes) == {"base@gvisor"}   # hardened@namespace is off
        for _ in range(500):
            if svc.pool.ready("base@gvisor") == 1:
                break
            await asyncio.sleep(0.01)
        [pooled] = svc.store.live()
        assert pooled.tier == "gvisor" and pooled.state == "pooled"
        assert pooled.sandbox_id in two_tiers.tiers["gvisor"].running  # type: ignore[attr-defined]
        plain = await svc.create(CreateRequest(template="base"))
        assert plain.tier == "namespace" and svc.store.get(pooled.sandbox_id).state == "pooled"
        raised = await svc.create(CreateRequest(template="base", isolation="gvisor"))
        assert raised.tier == "gvisor" and raised.sandbox_id != pooled.sandbox_id
        assert svc.store.get(pooled.sandbox_id).kill_reason == "pooled sandbox unhealthy"
    finally:
        await svc.close()


def test_pool_names_with_a_tier() -> None:
    from corral.config import parse_pool

    assert parse_pool("base=1,base@gvisor=2") == {"base": 1, "base@gvisor": 2}
    for bad in ("base@vm=1", "@gvisor=1", "base@=1"):
        with pytest.raises(ValueError, match="TEMPLATE@TIER"):
            parse_pool(bad)
