"""E2B's /volumes routes and `volumeMounts` on create at the REST layer (in-memory tier, real store
and real volume images): bodies, statuses, what is refused before any sandbox is made."""

from __future__ import annotations

import uuid

import httpx

from corral.lifecycle import recovery
from tests.api.conftest import API_KEY


def _name() -> str:
    return "vol-" + uuid.uuid4().hex[:10]


async def _volume(client, size_mb: int = 16) -> dict:  # type: ignore[no-untyped-def]
    res = await client.post("/volumes", json={"name": _name(), "corral": {"sizeMB": size_mb}})
    assert res.status_code == 201, res.text
    return res.json()


async def test_create_list_get_delete_as_the_sdk_parses_them(client, app):
    vol = await _volume(client)
    assert set(vol) >= {"volumeID", "name", "token"} and vol["sizeMB"] == 16 and vol["token"]
    assert str(uuid.UUID(vol["volumeID"])) == vol["volumeID"]
    listed = (await client.get("/volumes")).json()
    assert {"volumeID": vol["volumeID"], "name": vol["name"], "sizeMB": 16} in listed
    assert all("token" not in v for v in listed)       # the list never hands out tokens
    got = await client.get(f"/volumes/{vol['volumeID']}")
    assert got.status_code == 200 and got.json()["token"] == vol["token"] and got.json()["usedBytes"] > 0
    image = app.state.settings.volumes_dir / vol["volumeID"] / "volume.img"
    assert image.stat().st_size == 16 * 1024 * 1024 and image.stat().st_mode & 0o077 == 0
    assert (await client.post("/volumes", json={"name": vol["name"]})).status_code == 409
    assert (await client.delete(f"/volumes/{vol['volumeID']}")).status_code == 204
    assert not image.parent.exists()
    assert (await client.get(f"/volumes/{vol['volumeID']}")).status_code == 404
    assert (await client.delete(f"/volumes/{vol['volumeID']}")).status_code == 404


async def test_bad_names_ids_and_sizes_are_refused_with_a_message(client, app):
    for name in ("../etc", "a/b", ".", "..", "", "x" * 65, "-lead", "a b", "a\x00b"):
        res = await client.post("/volumes", json={"name": name})
        assert res.status_code == 400, name
        assert res.json()["code"] == 400 and res.json()["message"]
    for size in (1, 10**9, "big", True):
        assert (await client.post("/volumes", json={"name": _name(), "corral": {"sizeMB": size}})).status_code == 400
    for vid in ("..", "..%2F..%2Fetc", "not-a-uuid", str(uuid.uuid4())):
        assert (await client.get(f"/volumes/{vid}")).status_code == 404
        assert (await client.delete(f"/volumes/{vid}")).status_code == 404
    assert list(app.state.settings.volumes_dir.glob("*")) == [] or all(
        p.name != "etc" for p in app.state.settings.volumes_dir.iterdir())


async def test_volume_routes_need_the_api_key(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as anon:
        assert (await anon.get("/volumes")).status_code == 401
        assert (await anon.post("/volumes", json={"name": _name()})).status_code == 401
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test",
                                 headers={"X-API-Key": API_KEY}) as ok:
        assert (await ok.get("/volumes")).status_code == 200


async def test_mounts_reach_the_tier_and_a_mounted_volume_cannot_be_deleted(client, tier, app):
    vol = await _volume(client)
    res = await client.post("/sandboxes", json={"templateID": "base", "timeout": 300,
                                                "volumeMounts": [{"name": vol["name"], "path": "/home/user/data"}]})
    assert res.status_code == 201, res.text
    sid = res.json()["sandboxID"]
    [bind] = tier.running[sid].volumes
    assert bind.target == "/home/user/data" and bind.image.name == "volume.img" and vol["volumeID"] in str(bind.image)
    info = (await client.get(f"/sandboxes/{sid}")).json()
    assert info["volumeMounts"] == [{"name": vol["name"], "path": "/home/user/data"}]

    conflict = await client.delete(f"/volumes/{vol['volumeID']}")
    assert conflict.status_code == 409 and sid in conflict.json()["message"]
    # paused (to its filesystem) it still holds the volume, and its resume mounts it again
    assert (await client.post(f"/sandboxes/{sid}/pause", json={"memory": False})).status_code == 204
    assert sid not in tier.running
    assert (await client.delete(f"/volumes/{vol['volumeID']}")).status_code == 409
    assert (await client.post(f"/sandboxes/{sid}/connect", json={"timeout": 60})).status_code == 201
    assert [b.target for b in tier.running[sid].volumes] == ["/home/user/data"]
    # a fork shares the volume (it is not copied)
    forks = (await client.post(f"/sandboxes/{sid}/fork", json={"count": 1})).json()
    fork_id = forks[0]["sandbox"]["sandboxID"]
    assert tier.running[fork_id].volumes == tier.running[sid].volumes
    assert (await client.delete(f"/sandboxes/{sid}")).status_code == 204
    assert fork_id in (await client.delete(f"/volumes/{vol['volumeID']}")).json()["message"]
    assert (await client.delete(f"/sandboxes/{fork_id}")).status_code == 204
    # a killed sandbox's mount rows go with it
    mounts = app.state.service.store.volumes
    assert mounts.mounts_of(sid) == [] and mounts.mounts_of(fork_id) == []
    assert (await client.delete(f"/volumes/{vol['volumeID']}")).status_code == 204


async def test_a_restart_removes_mount_rows_a_crashed_server_left(client, app, tier):
    """Rows of sandboxes that ended without a kill (a server killed with -9, a sandbox that ended
    at its own deadline with no server): the next start's recovery removes them, a live one's stay."""
    vol = await _volume(client)
    res = await client.post("/sandboxes", json={"templateID": "base", "timeout": 300,
                                                "volumeMounts": [{"name": vol["name"], "path": "/home/user/data"}]})
    live = res.json()["sandboxID"]
    service = app.state.service
    mounts = service.store.volumes
    mounts.add_mounts("ghost" + uuid.uuid4().hex[:8], [(vol["volumeID"], "/data")])   # no row at all
    dead = (await client.post("/sandboxes", json={"templateID": "base", "timeout": 300,
                                                  "volumeMounts": [{"name": vol["name"], "path": "/v"}]})).json()["sandboxID"]
    service.store.update(dead, state="killed")   # closed the way a crash leaves it: rows kept
    lost = (await client.post("/sandboxes", json={"templateID": "base", "timeout": 300,
                                                  "volumeMounts": [{"name": vol["name"], "path": "/w"}]})).json()["sandboxID"]
    assert len(mounts.mounts_of(dead)) == 1 and len(mounts.mounts_of(lost)) == 1
    tier.adoptable.add(live)   # the restarted server finds it running, and `lost` gone (its deadline passed)
    await recovery.recover(service.parts, service.teardown)
    assert mounts.mounts_of(dead) == [] and mounts.mounts_of(lost) == []
    assert service.store.get(lost).state == "killed"
    assert mounts.mounts_of(live) == [(vol["volumeID"], "/home/user/data")]
    assert mounts.drop_dead_mounts() == 0   # the ghost's row went too
    assert (await client.delete(f"/sandboxes/{live}")).status_code == 204


async def test_mount_paths_over_the_system_or_outside_are_refused_before_a_sandbox_starts(client, tier):
    vol = await _volume(client)
    bad = ["/", "/etc", "/etc/cron.d", "/proc/sys", "/sys", "/dev/shm", "/usr/bin", "/bin", "/lib64", "/.corral",
           "/run/x", "/tmp", "/home", "relative/path", "/home/user/../../etc", "/home//user", "/home/user/.",
           "/home/user/", "/a\nb", "/x/" + "y" * 300]
    for path in bad:
        res = await client.post("/sandboxes", json={"templateID": "base",
                                                    "volumeMounts": [{"name": vol["name"], "path": path}]})
        assert res.status_code == 400, (path, res.text)
    two = [{"name": vol["name"], "path": "/data"}, {"name": vol["name"], "path": "/data/inner"}]
    assert (await client.post("/sandboxes", json={"templateID": "base", "volumeMounts": two})).status_code == 400
    missing = await client.post("/sandboxes", json={"templateID": "base",
                                                    "volumeMounts": [{"name": "no-such-volume", "path": "/data"}]})
    assert missing.status_code == 400 and "no-such-volume" in missing.json()["message"]
    path_name = await client.post("/sandboxes", json={"templateID": "base",
                                                      "volumeMounts": [{"name": "../../etc", "path": "/data"}]})
    assert path_name.status_code == 400
    assert tier.running == {}


async def test_the_content_api_takes_the_volume_token_only_and_keeps_paths_inside(client, app):
    vol = await _volume(client)
    other = await _volume(client)
    base = f"/volumecontent/{vol['volumeID']}"
    bearer = {"Authorization": f"Bearer {vol['token']}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as anon:
        for headers in ({}, {"X-API-Key": API_KEY}, {"Authorization": f"Bearer {other['token']}"},
                        {"Authorization": "Bearer "}, {"Authorization": vol["token"]}):
            assert (await anon.get(base + "/dir", params={"path": "/"}, headers=headers)).status_code == 401
        for vid in ("..", "not-a-uuid", str(uuid.uuid4())):   # the same answer whether the id exists or not
            assert (await anon.get(f"/volumecontent/{vid}/dir", headers=bearer)).status_code == 401
        made = await anon.post(base + "/dir", params={"path": "a/b", "force": "true", "mode": "488"}, headers=bearer)
        assert made.status_code == 201 and made.json()["path"] == "/a/b" and made.json()["mode"] == 0o750
        put = await anon.put(base + "/file", params={"path": "/a/b/../../../../x.txt"}, content=b"top", headers=bearer)
        assert put.status_code == 201 and put.json()["path"] == "/x.txt"      # `..` never leaves the root
        got = await anon.get(base + "/file", params={"path": "x.txt"}, headers=bearer)
        assert got.status_code == 200 and got.content == b"top"
        assert (await anon.get(base + "/file", params={"path": "/a"}, headers=bearer)).status_code == 404
        assert (await anon.delete(base + "/path", params={"path": "/"}, headers=bearer)).status_code == 400
        for bad in ({"mode": "0o777"}, {"uid": "-1"}, {"mode": "99999"}):
            res = await anon.post(base + "/dir", params={"path": "/c", **bad}, headers=bearer)
            assert res.status_code == 400, bad


async def test_content_metadata_updates_are_checked(client, app):
    vol = await _volume(client)
    base = f"/volumecontent/{vol['volumeID']}"
    bearer = {"Authorization": f"Bearer {vol['token']}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as anon:
        assert (await anon.post(base + "/dir", params={"path": "/d"}, headers=bearer)).status_code == 201
        ok = await anon.patch(base + "/path", params={"path": "/d"}, json={"mode": 0o700, "uid": 1000}, headers=bearer)
        assert ok.status_code == 200 and ok.json()["mode"] == 0o700 and ok.json()["uid"] == 1000
        for bad in ({"mode": "0700"}, {"mode": 0o17777}, {"uid": -1}, {"gid": True}):
            assert (await anon.patch(base + "/path", params={"path": "/d"}, json=bad, headers=bearer)).status_code == 400
        assert (await anon.patch(base + "/path", params={"path": "/nope"}, json={}, headers=bearer)).status_code == 404
