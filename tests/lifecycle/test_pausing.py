"""Pause modes, resume timeouts, retention and restart recovery, over the in-memory tier (whose
writable layer is a real file, so what a mode keeps or drops is checked on disk)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from corral.lifecycle import CreateRequest, SandboxService
from corral.lifecycle.errors import ModeUnsupported
from corral.network import CarriedUse, DomainRule, EgressPolicy
from corral.store import Store


def _left(rec) -> float:  # type: ignore[no-untyped-def]
    return (rec.end_at - datetime.now(timezone.utc)).total_seconds()


async def test_full_pause_freezes_and_resume_thaws(service, tier):
    rec = await service.create(CreateRequest(template="base", timeout=600))
    assert await service.pause(rec.sandbox_id, "full") is True
    assert rec.sandbox_id in tier.frozen and rec.sandbox_id in tier.running
    assert service.pause_state(rec.sandbox_id)["how"] == "freezer"
    assert await service.pause(rec.sandbox_id, "full") is False
    back, resumed = await service.connect(rec.sandbox_id, None)
    assert resumed and back.state == "running" and rec.sandbox_id not in tier.frozen
    assert 590 < _left(back) <= 600          # what was left, not the 300 s default


async def test_filesystem_pause_stops_it_keeps_the_layer_and_boots_from_it(service, tier):
    rec = await service.create(CreateRequest(template="base", timeout=600, env_vars={"A": "1"}))
    layer = Path(rec.workdir) / "disk.img"
    layer.write_bytes(b"the sandbox's files")
    await service.pause(rec.sandbox_id, "filesystem")
    assert rec.sandbox_id not in tier.running and layer.read_bytes() == b"the sandbox's files"
    assert service.handle(rec.sandbox_id) is None
    back, resumed = await service.connect(rec.sandbox_id, 1200)
    assert resumed and tier.boots.count(rec.sandbox_id) == 2
    assert tier.running[rec.sandbox_id].layer == layer and layer.read_bytes() == b"the sandbox's files"
    assert 1190 < _left(back) <= 1200        # the caller's timeout
    assert service.handle(rec.sandbox_id) is not None


async def test_a_paused_sandbox_is_kept_for_the_retention_then_deleted_with_its_files(settings, templates, tier):
    settings.paused_retention_s = 3600
    svc = SandboxService(settings, Store(settings.db_path), templates, tier)
    await svc.start()
    try:
        rec = await svc.create(CreateRequest(template="base", timeout=600))
        await svc.pause(rec.sandbox_id, "filesystem")
        paused = svc.get(rec.sandbox_id)
        assert 3590 < _left(paused) <= 3600
        await svc.reaper.once()
        assert svc.get(rec.sandbox_id).state == "paused"
        svc.store.update(rec.sandbox_id, end_at=datetime.now(timezone.utc) - timedelta(seconds=1))
        await svc.reaper.once()
        assert svc.store.get(rec.sandbox_id).kill_reason == "retention"
        assert not Path(rec.workdir).exists()
    finally:
        await svc.close()


async def test_a_filesystem_pause_survives_a_restart(settings, templates, tier):
    first = SandboxService(settings, Store(settings.db_path), templates, tier)
    await first.start()
    rec = await first.create(CreateRequest(template="base", timeout=600))
    (Path(rec.workdir) / "disk.img").write_bytes(b"kept")
    await first.pause(rec.sandbox_id, "filesystem")
    await first.close()
    second = SandboxService(settings, Store(settings.db_path), templates, tier)
    await second.start()
    try:
        assert second.get(rec.sandbox_id).state == "paused"
        back, resumed = await second.connect(rec.sandbox_id, 60)
        assert resumed and (Path(rec.workdir) / "disk.img").read_bytes() == b"kept"
    finally:
        await second.close()


async def test_a_filesystem_pause_keeps_the_egress_rules_and_the_resume_attaches_them(service, tier, monkeypatch):
    """The plumbing around the real network (tests/e2e/test_egress.py checks the rules hold):
    the rules in force when it pauses are kept beside the layer, the old attachment goes, and the
    resume attaches exactly those rules to the new sandbox before anything else runs."""
    rec = await service.create(CreateRequest(template="base", timeout=600))
    rules = EgressPolicy(allow_domains=(DomainRule("api.example.test"),), byte_budget=1000)
    egress = service.parts.egress
    calls: list[tuple[str, object]] = []

    used = CarriedUse(budget_used=700, bytes_out=300, packets_out=4, bytes_in=400, packets_in=5)

    async def attach(sid, policy, handle, token, carried=None):  # type: ignore[no-untyped-def]
        calls.append(("attach", policy, carried))
        assert sid in tier.running and handle.sandbox_id == sid and token == rec.envd_access_token

    async def usage(sid):  # type: ignore[no-untyped-def]
        return used if sid == rec.sandbox_id else None

    async def detach(sid):  # type: ignore[no-untyped-def]
        calls.append(("detach", sid in tier.running))

    monkeypatch.setattr(egress, "policy_of", lambda sid: rules if sid == rec.sandbox_id else None)
    monkeypatch.setattr(egress, "attach", attach)
    monkeypatch.setattr(egress, "detach", detach)
    monkeypatch.setattr(egress, "usage", usage)
    await service.pause(rec.sandbox_id, "filesystem")
    assert calls == [("detach", False)]                      # after its processes (and netns) ended
    assert (Path(rec.workdir) / "pause-egress.json").stat().st_mode & 0o077 == 0
    await service.connect(rec.sandbox_id, 60)
    # the budget and counters go on from what the old network used (kept in the file, not in memory)
    assert calls[1:] == [("attach", rules, used)]
    assert not (Path(rec.workdir) / "pause-egress.json").exists()


async def test_an_unknown_mode_is_a_400(service):
    rec = await service.create(CreateRequest(template="base", timeout=600))
    with pytest.raises(ModeUnsupported) as err:
        await service.pause(rec.sandbox_id, "hibernate")
    assert err.value.status == 400


async def test_auto_resume_only_for_auto_paused_full_mode(service, tier):
    auto = await service.create(CreateRequest(template="base", timeout=600, auto_pause=True, auto_resume=True))
    manual = await service.create(CreateRequest(template="base", timeout=600))
    await service.pause(auto.sandbox_id, "full")
    await service.pause(manual.sandbox_id, "full")
    assert await service.auto_resume(auto.sandbox_id) is True
    assert await service.auto_resume(manual.sandbox_id) is False
    assert service.get(manual.sandbox_id).state == "paused"
    await service.pause(auto.sandbox_id, "filesystem")
    assert await service.auto_resume(auto.sandbox_id) is False   # its processes are gone: explicit only
