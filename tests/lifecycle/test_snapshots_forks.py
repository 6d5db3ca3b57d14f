"""Snapshots and forks over the in-memory tier: layered copies, independent children, per-fork
failures, and the modes a tier cannot do refused with the one that works."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.lifecycle import CreateRequest
from corral.lifecycle.errors import ModeUnsupported
from corral.lifecycle.snapshots import SnapshotNotFound, is_snapshot_id
from corral.runtime.base import TierError


async def _source(service, data: bytes = b"source layer"):  # type: ignore[no-untyped-def]
    rec = await service.create(CreateRequest(template="base", timeout=600, env_vars={"K": "v"},
                                             metadata={"agent": "a"}))
    (Path(rec.workdir) / "disk.img").write_bytes(data)
    return rec


async def test_a_snapshot_starts_sandboxes_from_its_layer_any_number_of_times(service, tier):
    src = await _source(service)
    snap = await service.snapshot(src.sandbox_id, "named", None)
    assert snap.mode == "filesystem" and snap.size_bytes == len(b"source layer") and is_snapshot_id(snap.snapshot_id)
    (Path(src.workdir) / "disk.img").write_bytes(b"changed later")
    kids = [await service.create(CreateRequest(template=snap.snapshot_id, timeout=60)) for _ in range(3)]
    for kid in kids:
        assert (Path(kid.workdir) / "disk.img").read_bytes() == b"source layer"
        assert kid.template_id == "base" and kid.disk_mb == src.disk_mb
    by_name = await service.create(CreateRequest(template="named", timeout=60))
    assert (Path(by_name.workdir) / "disk.img").read_bytes() == b"source layer"
    assert [s.snapshot_id for s in service.snapshots.list(sandbox_id=src.sandbox_id)] == [snap.snapshot_id]
    assert service.snapshots.delete(snap.snapshot_id) and not service.snapshots.delete(snap.snapshot_id)
    with pytest.raises(Exception):
        await service.create(CreateRequest(template=snap.snapshot_id, timeout=60))


async def test_a_full_snapshot_or_fork_is_refused_naming_filesystem(service):
    src = await _source(service)
    with pytest.raises(ModeUnsupported, match="mode=filesystem"):
        await service.snapshot(src.sandbox_id, None, "full")
    with pytest.raises(ModeUnsupported, match="mode=filesystem"):
        await service.fork(src.sandbox_id, 1, None, "full")


async def test_snapshot_ids_cannot_name_paths(service):
    for bad in ("../../etc", "snap-../../x", "snap-" + "g" * 20, "/abs"):
        assert not is_snapshot_id(bad)
        assert service.snapshots.delete(bad) is False
        with pytest.raises(SnapshotNotFound):
            service.snapshots.get(bad)


async def test_fork_gives_independent_sandboxes_and_the_source_keeps_running(service, tier):
    src = await _source(service)
    results = await service.fork(src.sandbox_id, 5, 120, None)
    kids = [r.record for r in results]
    assert all(r.mode == "filesystem" and r.error is None for r in results)
    assert len({k.sandbox_id for k in kids}) == 5 and src.sandbox_id in tier.running
    assert service.get(src.sandbox_id).state == "running"
    for kid in kids:
        assert (Path(kid.workdir) / "disk.img").read_bytes() == b"source layer"
        assert kid.metadata_ == {"agent": "a"} and kid.envd_access_token != src.envd_access_token
    (Path(kids[0].workdir) / "disk.img").write_bytes(b"mine")
    assert (Path(kids[1].workdir) / "disk.img").read_bytes() == b"source layer"
    assert not list(service.snapshots.root.glob(".fork-*"))     # the staging copy is gone


async def test_each_fork_fails_on_its_own(service, tier):
    src = await _source(service)
    real_create = tier.create
    calls = 0

    async def flaky(spec):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 2:
            raise TierError("no room for this one")
        return await real_create(spec)

    tier.create = flaky  # type: ignore[method-assign]
    results = await service.fork(src.sandbox_id, 3, None, None)
    assert sum(r.record is not None for r in results) == 2
    failed = [r for r in results if r.error is not None]
    assert len(failed) == 1 and "no room" in str(failed[0].error)


async def test_fork_count_is_bounded(service):
    src = await _source(service)
    for bad in (0, 21):
        with pytest.raises(Exception, match="count"):
            await service.fork(src.sandbox_id, bad, None, None)
