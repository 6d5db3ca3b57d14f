"""After a restart: what is healthy is re-adopted, everything else is removed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from corral.config import Settings
from corral.lifecycle import CreateRequest, SandboxService
from corral.store import SandboxRecord, Store


def _row(sid: str, state: str, settings: Settings, slot: int) -> SandboxRecord:
    now = datetime.now(timezone.utc)
    return SandboxRecord(sandbox_id=sid, template_id="base", alias="base", client_id="corral", state=state,
                         tier="memory", started_at=now, end_at=now + timedelta(hours=1), cpu_count=1,
                         memory_mb=256, disk_mb=256, pids_max=64, uid_slot=slot,
                         workdir=str(settings.sandboxes_dir / sid), envd_version="0.6.4", metadata_={})


async def test_restart_readopts_the_healthy_and_removes_the_rest(settings, templates, tier):
    first = SandboxService(settings, Store(settings.db_path), templates, tier)
    await first.start()
    healthy = await first.create(CreateRequest(template="base"))
    lost = await first.create(CreateRequest(template="base"))
    await first.close()                      # sandboxes outlive the server
    store = Store(settings.db_path)
    store.add(_row("halfmade000000000001", "starting", settings, 7))   # a crash mid-create
    (settings.sandboxes_dir / "orphan0000000000000").mkdir()            # a workdir no row claims
    tier.running["stray000000000000000"] = tier.running[healthy.sandbox_id]  # tier resources no row claims
    tier.adoptable = {healthy.sandbox_id}    # `lost`'s daemon did not survive

    second = SandboxService(settings, store, templates, tier)
    await second.start()
    try:
        assert [r.sandbox_id for r in second.list()] == [healthy.sandbox_id]
        assert second.handle(healthy.sandbox_id) is not None
        for sid, reason in ((lost.sandbox_id, "lost in restart"), ("halfmade000000000001", "lost in restart")):
            rec = store.get(sid)
            assert rec.state == "killed" and rec.kill_reason == reason
        assert {"stray000000000000000", lost.sandbox_id} <= set(tier.destroyed)
        assert sorted(p.name for p in settings.sandboxes_dir.iterdir()) == [healthy.sandbox_id]
    finally:
        await second.kill(healthy.sandbox_id)
        await second.close()


async def test_a_restart_discards_pooled_sandboxes(settings, templates, tier):
    store = Store(settings.db_path)
    store.add(_row("pooled00000000000001", "pooled", settings, 0))
    tier.running["pooled00000000000001"] = None  # type: ignore[assignment]
    tier.adoptable = {"pooled00000000000001"}
    svc = SandboxService(settings, store, templates, tier)
    await svc.start()
    try:
        assert store.get("pooled00000000000001").state == "killed"
        assert "pooled00000000000001" in tier.destroyed
    finally:
        await svc.close()
