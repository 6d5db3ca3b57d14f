"""The pause body's mode, snapshots and forks at the REST layer: E2B's routes, bodies and statuses."""

from __future__ import annotations

import httpx


async def _create(client) -> str:  # type: ignore[no-untyped-def]
    res = await client.post("/sandboxes", json={"templateID": "base", "timeout": 300})
    assert res.status_code == 201
    return res.json()["sandboxID"]


async def test_pause_memory_false_is_a_filesystem_pause_and_info_says_so(client, tier):
    sid = await _create(client)
    assert (await client.post(f"/sandboxes/{sid}/pause", json={"memory": False})).status_code == 204
    assert sid not in tier.running
    info = (await client.get(f"/sandboxes/{sid}")).json()
    assert info["state"] == "paused" and info["corralPause"]["mode"] == "filesystem"
    assert (await client.post(f"/sandboxes/{sid}/pause", json={})).status_code == 409
    res = await client.post(f"/sandboxes/{sid}/connect", json={"timeout": 100})
    assert res.status_code == 201 and sid in tier.running


async def test_pause_without_a_body_is_the_freezer(client, tier):
    sid = await _create(client)
    assert (await client.post(f"/sandboxes/{sid}/pause")).status_code == 204
    assert sid in tier.frozen
    assert (await client.get(f"/sandboxes/{sid}")).json()["corralPause"]["how"] == "freezer"


async def test_snapshot_list_filter_page_and_delete(client):
    sid = await _create(client)
    ids = []
    for name in ("a", "b", "c"):
        res = await client.post(f"/sandboxes/{sid}/snapshots", json={"name": name, "memory": False})
        assert res.status_code == 201
        ids.append(res.json()["snapshotID"])
        assert res.json()["names"] == [name]
    page = await client.get("/snapshots", params={"sandboxID": sid, "limit": 2})
    assert [d["snapshotID"] for d in page.json()] == ids[:2]
    rest = await client.get("/snapshots", params={"sandboxID": sid, "nextToken": page.headers["X-Next-Token"]})
    assert [d["snapshotID"] for d in rest.json()] == ids[2:] and "X-Next-Token" not in rest.headers
    assert [d["snapshotID"] for d in (await client.get("/snapshots", params={"name": "b"})).json()] == [ids[1]]
    assert (await client.get("/snapshots", params={"nextToken": "garbage"})).status_code == 400
    assert (await client.delete(f"/templates/{ids[0]}")).status_code == 204
    assert (await client.delete(f"/templates/{ids[0]}")).status_code == 404
    assert (await client.delete("/templates/no-such-template")).status_code == 404   # the template API's answer
    full = await client.post(f"/sandboxes/{sid}/snapshots", json={"memory": True})
    assert full.status_code == 400 and "mode=filesystem" in full.json()["message"]


async def test_fork_answers_one_result_per_fork_with_its_mode(client):
    sid = await _create(client)
    res = await client.post(f"/sandboxes/{sid}/fork", json={"count": 3, "timeout": 60})
    assert res.status_code == 201
    body = res.json()
    assert len(body) == 3 and all(r["mode"] == "filesystem" and r["sandbox"]["sandboxID"] != sid for r in body)
    assert (await client.post("/sandboxes/nosuchsandbox0000000/fork", json={})).status_code == 404
    assert (await client.post(f"/sandboxes/{sid}/fork", json={"count": 0})).status_code == 400


async def test_snapshot_routes_need_the_api_key(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as anon:
        assert (await anon.get("/snapshots")).status_code == 401
        assert (await anon.post("/sandboxes/x/fork", json={})).status_code == 401
        assert (await anon.delete("/templates/snap-" + "0" * 20)).status_code == 401
