"""Snapshots through the official SDK: create while the source runs, list, start many, delete."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from e2b import Sandbox
from e2b.exceptions import SandboxException

pytestmark = pytest.mark.e2e


def test_snapshot_starts_three_sandboxes_with_the_same_files(sdk) -> None:  # type: ignore[no-untyped-def]
    src = Sandbox.create(timeout=300)
    children: list[Sandbox] = []
    try:
        src.files.write("/home/user/state.txt", "from the source")
        src.commands.run("head -c 1048576 /dev/urandom > /home/user/blob && sha256sum /home/user/blob > /home/user/blob.sum")
        snap = src.create_snapshot(name="three-of-a-kind", mode="filesystem")
        assert snap.snapshot_id.startswith("snap-")
        # The source keeps running and keeps its files.
        assert src.commands.run("echo still here").stdout.strip() == "still here"
        src.files.write("/home/user/state.txt", "changed after the snapshot")
        # Layered: the snapshot holds the diff (about the 1 MB written), not the template.
        doc = httpx.get(f"{sdk.url}/snapshots", params={"sandboxID": src.sandbox_id},
                        headers={"X-API-Key": sdk.api_key}).json()
        assert [d["snapshotID"] for d in doc] == [snap.snapshot_id]
        assert 1 << 20 <= doc[0]["sizeBytes"] < 64 << 20
        with ThreadPoolExecutor(3) as pool:
            children = list(pool.map(lambda _: Sandbox.create(snap.snapshot_id, timeout=120), range(3)))
        assert len({c.sandbox_id for c in children}) == 3
        for child in children:
            assert child.files.read("/home/user/state.txt") == "from the source"
            assert child.commands.run("sha256sum -c /home/user/blob.sum").exit_code == 0
        children[0].files.write("/home/user/state.txt", "child 0 only")
        assert children[1].files.read("/home/user/state.txt") == "from the source"
        listed = src.list_snapshots(name="three-of-a-kind").next_items()
        assert [s.snapshot_id for s in listed] == [snap.snapshot_id]
        assert Sandbox.delete_snapshot(snap.snapshot_id) is True
        assert Sandbox.delete_snapshot(snap.snapshot_id) is False
        with pytest.raises(SandboxException):
            Sandbox.create(snap.snapshot_id, timeout=30)
    finally:
        for c in children:
            c.kill()
        src.kill()


def test_full_snapshot_on_the_namespace_tier_names_the_mode_that_works(sdk) -> None:  # type: ignore[no-untyped-def]
    src = Sandbox.create(timeout=120)
    try:
        with pytest.raises(SandboxException, match="400: .*mode=filesystem"):
            src.create_snapshot(mode="full")
        assert src.commands.run("echo ok").stdout.strip() == "ok"
    finally:
        src.kill()
