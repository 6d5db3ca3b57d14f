"""The cluster's pieces without a cluster: placement, the node credential gate, the database
guard and the role settings (cheap; the end-to-end behaviour is test_cluster.py's)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest

from corral.cluster.credential import HEADER, NodeGate
from corral.cluster.errors import ClusterUnavailable
from corral.cluster.guard import DatabaseGuard, GuardError
from corral.cluster.placement import choose
from corral.config import Settings
from corral.store import NodeRecord

SECRET = "s" * 24


def _node(node_id: str, *, free: int = 8000, templates: tuple[str, ...] = ("base",), memory: int = 16000) -> NodeRecord:
    now = datetime.now(timezone.utc)
    return NodeRecord(node_id=node_id, advertise_url=f"http://{node_id}", state="ready", version="0", tiers=["namespace"],
                      templates=list(templates), cpu_count=2, memory_mb=memory, memory_free_mb=free, sandboxes=0,
                      registered_at=now, heartbeat_at=now)


def test_placement_spreads_prefers_cached_templates_and_skips_full_nodes() -> None:
    rng = random.Random(7)
    nodes = [_node("a"), _node("b"), _node("c")]
    live: Counter[str] = Counter()
    for _ in range(300):
        live[choose(nodes, "base", live, {}, 2, rng=rng).node_id] += 1
    assert max(live.values()) - min(live.values()) <= 2, live
    # A node that has the template on disk wins over one that would have to fetch it.
    only_b = [_node("a", templates=()), _node("b", templates=("custom",)), _node("c", templates=())]
    assert {choose(only_b, "custom", {}, {}, 2, rng=rng).node_id for _ in range(20)} == {"b"}
    # ... and in-flight creates count as load before their rows exist.
    assert choose([_node("a"), _node("b")], "base", {}, {"a": 5}, 2, rng=rng).node_id == "b"
    # A node short of memory, or excluded (it did not answer), takes nothing; none left is a 503.
    assert choose([_node("a", free=10), _node("b")], "base", {}, {}, 2, rng=rng).node_id == "b"
    with pytest.raises(ClusterUnavailable) as err:
        choose([_node("a")], "base", {}, {}, 2, exclude={"a"}, rng=rng)
    assert err.value.status == 503 and "no ready node" in err.value.message


async def _call(gate: NodeGate, scope: dict) -> tuple[list[dict], dict | None]:
    sent: list[dict] = []
    seen: dict = {}

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        seen.update(scope)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    gate.app = app

    async def receive() -> dict:
        return {"type": "websocket.connect"} if scope["type"] == "websocket" else {"type": "http.request", "body": b""}

    async def send(msg: dict) -> None:
        sent.append(msg)

    await gate(scope, receive, send)
    return sent, (seen or None)


def test_the_node_gate_lets_only_the_credential_through_and_strips_it() -> None:
    gate = NodeGate(None, SECRET)  # type: ignore[arg-type]

    def http(path: str, headers: list[tuple[bytes, bytes]]) -> dict:
        return {"type": "http", "path": path, "headers": headers, "method": "GET"}

    for headers in ([], [(HEADER, b"wrong" + SECRET.encode())], [(HEADER, SECRET.encode()[:-1])],
                    [(HEADER, SECRET.encode()), (HEADER, b"x")], [(b"x-api-key", SECRET.encode())]):
        sent, seen = asyncio.run(_call(gate, http("/v2/sandboxes", headers)))
        assert seen is None and sent[0]["status"] == 401, headers
    sent, seen = asyncio.run(_call(gate, {"type": "websocket", "path": "/", "headers": []}))
    assert seen is None and sent == [{"type": "websocket.close", "code": 1008}]
    sent, seen = asyncio.run(_call(gate, http("/health", [])))
    assert seen is not None and sent[0]["status"] == 204
    sent, seen = asyncio.run(_call(gate, http("/v2/sandboxes", [(HEADER, SECRET.encode()), (b"a", b"b")])))
    assert sent[0]["status"] == 204 and seen is not None and seen["headers"] == [(b"a", b"b")]


def test_two_all_in_one_servers_cannot_share_a_sqlite_database(tmp_path: Path) -> None:
    db = tmp_path / "corral.db"
    first = DatabaseGuard(db, "all").acquire()
    with pytest.raises(GuardError, match="must not share one database"):
        DatabaseGuard(db, "all").acquire()
    with pytest.raises(GuardError, match="a node cannot join it"):
        DatabaseGuard(db, "node").acquire()
    first.release()
    nodes = [DatabaseGuard(db, "node").acquire(), DatabaseGuard(db, "node").acquire()]   # nodes share
    with pytest.raises(GuardError):
        DatabaseGuard(db, "all").acquire()
    for g in nodes:
        g.release()
    DatabaseGuard(db, "all").acquire().release()


def test_role_settings_are_checked_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("CORRAL_NODE_SECRET", "CORRAL_ADVERTISE", "CORRAL_ROLE", "CORRAL_NODE_ID"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(ValueError, match="role must be one of"):
        Settings.from_env(role="master")
    with pytest.raises(ValueError, match="CORRAL_NODE_SECRET"):
        Settings.from_env(role="api")
    monkeypatch.setenv("CORRAL_NODE_SECRET", SECRET)
    with pytest.raises(ValueError, match="--advertise"):
        Settings.from_env(role="node")
    with pytest.raises(ValueError, match="shorter than CORRAL_NODE_GRACE"):
        Settings.from_env(role="api", node_heartbeat_s=30.0, node_grace_s=10.0)
    node = Settings.from_env(role="node", advertise_url="http://10.0.0.7:3000", node_id="n7")
    assert (node.node_id, node.advertise_url) == ("n7", "http://10.0.0.7:3000")
    assert Settings.from_env(node_id="n7").node_id is None    # all-in-one owns the rows no node owns
    # The cluster's warm pool: a node starts with none (its share comes with the registry), one
    # server alone keeps it all; CORRAL_POOL still counts for the other templates.
    monkeypatch.setenv("CORRAL_CLUSTER_POOL", "base=3")
    monkeypatch.setenv("CORRAL_POOL", "base=1,code-interpreter-v1=2")
    node = Settings.from_env(role="node", advertise_url="http://10.0.0.7:3000", node_id="n7")
    assert node.pool == {"base": 0, "code-interpreter-v1": 2} and node.cluster_pool == {"base": 3}
    assert Settings.from_env().pool == {"base": 3, "code-interpreter-v1": 2}


def _serve(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CORRAL_", "E2B_"))}
    return subprocess.run([sys.executable, "-m", "corral.cli.main", "serve", *args], capture_output=True, text=True,
                          timeout=120, env={**clean, **env})


@pytest.mark.skipif(os.geteuid() != 0, reason="corral serve (roles all and node) needs root")
def test_serve_refuses_a_half_configured_node_and_a_second_server_on_one_database(tmp_path: Path) -> None:
    r = _serve("--role", "node", "--data-dir", str(tmp_path / "n"), env={"CORRAL_NODE_SECRET": SECRET})
    assert r.returncode == 1 and "needs --advertise URL" in r.stderr + r.stdout and "Traceback" not in r.stderr
    data = tmp_path / "data"
    held = DatabaseGuard(data / "corral.db", "all").acquire()     # a running all-in-one server's lock
    try:
        r = _serve("--port", "1", "--data-dir", str(data), env={"CORRAL_API_KEY": "e2b_" + "ab" * 20})
    finally:
        held.release()
    assert r.returncode == 1 and "must not share one database" in r.stderr + r.stdout, r.stderr


def test_replica_to_node_over_tls_carries_the_credential_and_verifies_the_node(tmp_path: Path) -> None:
    """`CORRAL_NODE_TLS_CERT/KEY` on the node, `CORRAL_NODE_CA` on the replica: a real HTTPS hop."""
    import socket
    import threading
    import time

    import httpx
    import uvicorn

    from corral.cluster.links import NodeLinks
    from corral.tls import ensure_certificates

    files = ensure_certificates(tmp_path / "tls", "e2b.localhost")
    seen: list[list[tuple[bytes, bytes]]] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        seen.append(scope["headers"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(NodeGate(app, SECRET), host="127.0.0.1", port=port, lifespan="off",
                                           ssl_certfile=str(files.cert), ssl_keyfile=str(files.key), log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)

        async def calls() -> None:
            trusted, untrusted = NodeLinks(SECRET, files.ca_cert), NodeLinks(SECRET, None)
            try:
                r = await trusted.client(f"https://127.0.0.1:{port}").get("/v2/sandboxes")
                assert r.status_code == 204
                with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                    await untrusted.client(f"https://127.0.0.1:{port}").get("/v2/sandboxes")
                async with httpx.AsyncClient(verify=trusted.ssl_context()) as bare:
                    r = await bare.get(f"https://127.0.0.1:{port}/v2/sandboxes")
                assert r.status_code == 401          # TLS alone is no credential
            finally:
                await trusted.close()
                await untrusted.close()

        asyncio.run(calls())
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert len(seen) == 1 and all(k != HEADER for k, _ in seen[0])    # and the node never passes it on


def test_lists_leave_out_a_lost_nodes_sandboxes_unless_asked_for_them() -> None:
    from corral.cluster.listing import corrected, node_query
    from corral.errors import InvalidRequest

    assert node_query("") == ("", {"running", "paused"})
    q, asked = node_query("state=running&limit=5")
    assert asked == {"running"} and "limit=5" in q and "state=running" in q
    q, asked = node_query("state=lost,running")
    assert asked == {"lost", "running"} and "state=paused%2Crunning" in q   # the node is asked for every row
    with pytest.raises(InvalidRequest, match="expected running, paused, lost"):
        node_query("state=dead")
    items = [{"sandboxID": "a", "state": "running"}, {"sandboxID": "b", "state": "running"},
             {"sandboxID": "c", "state": "paused"}]
    body, n = corrected(json.dumps(items).encode(), {"running", "paused"}, {"b"})
    assert n == 1 and [i["sandboxID"] for i in json.loads(body)] == ["a", "c"]
    body, n = corrected(json.dumps(items).encode(), {"lost", "running"}, {"b"})
    assert n == 1 and json.loads(body) == [items[0], {"sandboxID": "b", "state": "lost"}]
    assert corrected(b'{"code": 400}', {"running"}, {"b"}) == (b'{"code": 400}', 0)


def test_a_volumes_create_goes_to_its_holder_and_is_refused_when_that_cannot_be() -> None:
    from corral.cluster.volumes import VolumeHolders, volume_names
    from corral.errors import Conflict

    assert volume_names({"templateID": "base", "volumeMounts": [{"name": "b", "path": "/b"}, {"name": "a"}, 3]}) == ["a", "b"]
    assert volume_names({"volumeMounts": "x"}) == [] and volume_names(None) == []

    class Rows:
        held: dict[str, set[str | None]] = {}

        def holders(self, team: str, names: list[str]) -> dict[str, set[str | None]]:
            return {n: h for n, h in self.held.items() if n in names}

    class Directory:
        def __init__(self) -> None:
            self.store = type("S", (), {"volumes": Rows()})()
            self.nodes = {"n0": _node("n0"), "n1": _node("n1")}

        async def node(self, node_id: str) -> NodeRecord | None:
            return self.nodes.get(node_id)

        async def refresh(self) -> None:
            pass

    d = Directory()
    holders = VolumeHolders(d)  # type: ignore[arg-type]
    Rows.held = {"a": {"n1"}, "b": {"n0"}}
    assert asyncio.run(holders.node_for([])) is None and asyncio.run(holders.node_for(["c"])) is None
    assert asyncio.run(holders.node_for(["a", "c"])).node_id == "n1"
    with pytest.raises(Conflict, match="held by different nodes"):
        asyncio.run(holders.node_for(["a", "b"]))
    d.nodes["n1"].state = "lost"
    with pytest.raises(Conflict, match="'a' is mounted on node n1, which is lost"):
        asyncio.run(holders.node_for(["a"]))
    d.nodes["n0"].state = "draining"
    with pytest.raises(Conflict, match="which is draining"):
        asyncio.run(holders.node_for(["b"]))


def test_a_replica_trusts_a_checked_key_for_the_ttl_and_a_revoked_one_no_longer(tmp_path: Path) -> None:
    from corral.api.auth import KeyRing
    from corral.cluster.keys import CachedKeys
    from corral.ids import hash_key
    from corral.store import Store

    store = Store(tmp_path / "keys.db")
    lookups = Counter()
    real = store.has_key

    def counted(digest: str) -> bool:
        lookups[digest] += 1
        return real(digest)

    store.has_key = counted  # type: ignore[method-assign]
    now = [100.0]
    keys = CachedKeys(KeyRing(store), ttl_s=5, clock=lambda: now[0])
    store.add_key(hash_key("e2b_good"), "ci", "e2b_good")
    assert all(keys.check("e2b_good") for _ in range(50)) and lookups[hash_key("e2b_good")] == 1
    # A wrong key is looked up every time (never remembered), and so is a key created a moment ago.
    assert not keys.check("e2b_wrong") and not keys.check("e2b_wrong") and lookups[hash_key("e2b_wrong")] == 2
    assert not keys.check(None) and not keys.check("")
    store.add_key(hash_key("e2b_new"), "new", "e2b_new")
    assert keys.check("e2b_new")
    # Revoked: trusted until the TTL runs out, refused from then on.
    assert store.remove_key("ci") == 1
    now[0] += 4.9
    assert keys.check("e2b_good")
    now[0] += 0.2
    assert not keys.check("e2b_good") and not keys.check("e2b_good")
    store.engine.dispose()


def test_a_clusters_warm_pool_is_split_over_the_ready_nodes() -> None:
    from corral.cluster.pools import shares

    assert shares({"base": 3}, ["n2", "n0", "n1"], "n1") == {"base": 1}
    assert [shares({"base": 3}, ["n0", "n2"], n)["base"] for n in ("n0", "n2")] == [2, 1]
    assert sum(shares({"base": 10}, list("abc"), n)["base"] for n in "abc") == 10
    assert shares({"base": 3, "ci": 1}, ["n0"], "n1") == {"base": 0, "ci": 0}, "a node not ready keeps none"
    assert shares({"ci": 1}, ["n0", "n1"], "n1") == {"ci": 0}


def test_a_free_volume_has_one_home_every_replica_agrees_on() -> None:
    from corral.cluster.volumes import home

    nodes = [_node(f"n{i}") for i in range(4)]
    homes = {f"vol-{i}": home(f"vol-{i}", nodes).node_id for i in range(200)}
    assert home("vol-1", list(reversed(nodes))).node_id == homes["vol-1"], "the order nodes are listed in does not matter"
    assert set(Counter(homes.values())) == {"n0", "n1", "n2", "n3"}
    # A node leaving moves only the volumes whose home it was.
    left = [n for n in nodes if n.node_id != "n2"]
    moved = {v for v in homes if home(v, left).node_id != homes[v]}
    assert moved == {v for v, n in homes.items() if n == "n2"}
    assert home("vol-1", []) is None
