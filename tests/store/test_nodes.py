"""The node registry on both databases: register, heartbeat, lost after the grace, come back."""

from __future__ import annotations

import threading
from datetime import timedelta

from corral.store import NodeInfo, NodeState, Store
from tests.store.test_db import T0, record


def info(node_id: str = "n1", **kw: object) -> NodeInfo:
    fields: dict[str, object] = dict(node_id=node_id, advertise_url=f"http://{node_id}:3000", version="0.1.0",
                                     cpu_count=8, memory_mb=32768, memory_free_mb=30000,
                                     tiers=("namespace", "gvisor"), templates=("base",))
    fields.update(kw)
    return NodeInfo(**fields)  # type: ignore[arg-type]


def test_register_heartbeat_and_list(store_location):
    store = Store(store_location)
    rec = store.nodes.register(info("n1"), now=T0)
    assert rec.state == "ready" and rec.tiers == ["namespace", "gvisor"] and rec.heartbeat_at == T0
    store.nodes.register(info("n2"), now=T0)
    assert store.nodes.heartbeat("n1", memory_free_mb=1000, sandboxes=3, templates=["base", "x"],
                                 now=T0 + timedelta(seconds=5))
    n1 = store.nodes.get("n1")
    assert (n1.memory_free_mb, n1.sandboxes, n1.templates) == (1000, 3, ["base", "x"])
    assert n1.heartbeat_at == T0 + timedelta(seconds=5) and n1.registered_at == T0
    assert not store.nodes.heartbeat("nobody", memory_free_mb=1, sandboxes=0)
    assert [n.node_id for n in store.nodes.list()] == ["n1", "n2"]
    store.nodes.set_state("n2", NodeState.DRAINING)
    assert [n.node_id for n in store.nodes.list([NodeState.READY])] == ["n1"]
    store.engine.dispose()


def test_silent_node_is_lost_after_the_grace_and_comes_back_by_registering(store_location):
    store = Store(store_location)
    store.nodes.register(info("quiet"), now=T0)
    store.nodes.register(info("alive"), now=T0)
    store.nodes.heartbeat("alive", memory_free_mb=1, sandboxes=0, now=T0 + timedelta(seconds=25))
    assert store.nodes.mark_lost(30, now=T0 + timedelta(seconds=29)) == []
    assert store.nodes.mark_lost(30, now=T0 + timedelta(seconds=31)) == ["quiet"]
    assert store.nodes.mark_lost(30, now=T0 + timedelta(seconds=31)) == [], "already lost: not reported twice"
    assert store.nodes.get("quiet").state == "lost" and store.nodes.get("alive").state == "ready"
    # A lost node's heartbeat is refused: it must register again (and reconcile) first.
    assert not store.nodes.heartbeat("quiet", memory_free_mb=1, sandboxes=0, now=T0 + timedelta(seconds=40))
    back = store.nodes.register(info("quiet", advertise_url="http://quiet-new:3000"), now=T0 + timedelta(seconds=41))
    assert back.state == "ready" and back.advertise_url == "http://quiet-new:3000" and back.registered_at == T0
    store.engine.dispose()


def test_sandboxes_name_their_node(store_location):
    store = Store(store_location)
    store.add(record("a", node_id="n1", slot=1))
    store.add(record("b", node_id="n1", slot=2, state="killed"))
    store.add(record("c", node_id="n2", slot=1))
    store.add(record("local", slot=3))
    assert [r.sandbox_id for r in store.nodes.sandboxes_on("n1")] == ["a"]
    assert store.nodes.sandboxes_on("n1")[0].started_at.tzinfo is not None
    assert store.nodes.register(info("n1"), now=T0).sandboxes == 1, "a re-registering node counts what it owns"
    assert store.get("local").node_id is None
    store.engine.dispose()


def test_replicas_marking_lost_at_once_agree(store_location):
    store = Store(store_location)
    for i in range(5):
        store.nodes.register(info(f"n{i}"), now=T0)
    others = [Store(store_location) for _ in range(3)]
    results: list[list[str]] = []
    threads = [threading.Thread(target=lambda s=s: results.append(s.nodes.mark_lost(10, now=T0 + timedelta(seconds=60))))
               for s in [store, *others]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    reported = sorted(n for r in results for n in r)
    assert len(results) == 4
    if store.engine.dialect.name == "postgresql":
        assert reported == [f"n{i}" for i in range(5)], "each lost node is reported by exactly one replica"
    else:
        assert set(reported) == {f"n{i}" for i in range(5)}
    for s in [store, *others]:
        s.engine.dispose()
