"""A volume is held by one node at a time (its ext4 image may be mounted by one machine): the
store refuses a mount on a second node, even when two nodes claim a free volume at once."""

from __future__ import annotations

import threading

import pytest

from corral.store import NodeState, SandboxState, Store, VolumeElsewhere, VolumeRecord
from tests.store.test_db import T0, record
from tests.store.test_nodes import info


def _volume(store: Store, volume_id: str, name: str) -> None:
    store.volumes.add(VolumeRecord(volume_id=volume_id, team="corral", name=name, token="t", size_mb=16, created_at=T0))


def test_a_volume_is_held_by_the_node_whose_live_sandboxes_mount_it(store_location):
    store = Store(store_location)
    for n in ("n0", "n1"):
        store.nodes.register(info(n), now=T0)
    _volume(store, "vol-a", "data")
    _volume(store, "vol-b", "other")
    store.add(record("s1", node_id="n0"), volumes=[("vol-a", "/data")])
    store.add(record("s2", slot=1, node_id="n0"), volumes=[("vol-a", "/mnt/data")])   # the same node: shared
    assert store.volumes.holders("corral", ["data", "other"]) == {"data": {"n0"}}
    assert store.volumes.holder_of("vol-a") == (True, {"n0"}) and store.volumes.holder_of("vol-b") == (True, set())
    assert store.volumes.holder_of("nope") == (False, set())

    with pytest.raises(VolumeElsewhere) as err:
        store.add(record("s3", node_id="n1"), volumes=[("vol-b", "/b"), ("vol-a", "/data")])
    assert err.value.status == 409 and err.value.node_id == "n0"
    assert "'data' is mounted on node n0" in err.value.message and "s1, s2" in err.value.message
    # Refused as a whole: no row of the sandbox, no mount of the free volume either.
    assert store.get("s3") is None and store.volumes.mounts_of("s3") == []
    assert store.volumes.holders("corral", ["other"]) == {}

    # A dead sandbox no longer holds the volume; the last one ending frees it for any node.
    store.update("s1", state=SandboxState.KILLED.value)
    with pytest.raises(VolumeElsewhere):
        store.add(record("s3", node_id="n1"), volumes=[("vol-a", "/data")])
    store.update("s2", state=SandboxState.KILLED.value)
    store.add(record("s3", node_id="n1"), volumes=[("vol-a", "/data")])
    assert store.volumes.holders("corral", ["data"]) == {"data": {"n1"}}
    # A paused sandbox still holds it (its resume mounts it again), and so does a lost node's.
    store.update("s3", state=SandboxState.PAUSED.value)
    store.nodes.set_state("n1", NodeState.LOST)
    with pytest.raises(VolumeElsewhere):
        store.add(record("s4", node_id="n0"), volumes=[("vol-a", "/data")])
    store.engine.dispose()


def test_two_nodes_claiming_a_free_volume_at_once_cannot_both_win(store_location):
    if not isinstance(store_location, str):
        pytest.skip("one SQLite file is one machine: the race is between nodes on PostgreSQL")
    stores = [Store(store_location, node_id=f"n{i}") for i in range(2)]
    _volume(stores[0], "vol-r", "raced")
    for round_ in range(8):
        barrier = threading.Barrier(2)
        won: list[str] = []
        lost: list[str] = []

        def claim(i: int) -> None:
            sid = f"r{round_}-{i}"
            barrier.wait()
            try:
                stores[i].add(record(sid, slot=i, node_id=f"n{i}"), volumes=[("vol-r", "/r")])
                won.append(sid)
            except VolumeElsewhere:
                lost.append(sid)

        threads = [threading.Thread(target=claim, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1 and len(lost) == 1, (won, lost)
        assert len({n for held in stores[0].volumes.holders("corral", ["raced"]).values() for n in held}) == 1
        stores[0].update(won[0], state=SandboxState.KILLED.value)   # free again for the next round
    for s in stores:
        s.engine.dispose()
