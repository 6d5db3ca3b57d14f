"""The create's lifecycle fields as e2b==2.63.0 sends them (`autoPause`, `autoPauseMemory`,
`autoResume: {"enabled"}`): honoured on the timeout and on traffic, reported back, and the
combinations that cannot hold refused (in-memory tier, real store and reaper)."""

from __future__ import annotations

import asyncio


async def _create(client, **lifecycle) -> str:  # type: ignore[no-untyped-def]
    res = await client.post("/sandboxes", json={"templateID": "base", "timeout": 1, **lifecycle})
    assert res.status_code == 201, res.text
    return res.json()["sandboxID"]


async def _paused(client, sid: str) -> dict:  # type: ignore[no-untyped-def]
    for _ in range(600):                       # the reaper pauses it at its timeout
        info = (await client.get(f"/sandboxes/{sid}")).json()
        if info["state"] == "paused":
            return info
        await asyncio.sleep(0.05)
    raise AssertionError(f"sandbox {sid} was not paused at its timeout")


async def test_auto_pause_memory_false_pauses_to_the_filesystem_and_traffic_does_not_wake_it(client, app, tier):
    sid = await _create(client, autoPause=True, autoPauseMemory=False)
    info = await _paused(client, sid)
    assert info["corralPause"]["mode"] == "filesystem" and sid not in tier.running
    assert info["lifecycle"] == {"onTimeout": "pause", "autoResume": False}
    assert await app.state.service.auto_resume(sid) is False          # only a connect resumes it
    assert (await client.post(f"/sandboxes/{sid}/connect", json={"timeout": 60})).status_code == 201
    assert sid in tier.running


async def test_auto_resume_follows_the_create_and_is_off_unless_asked(client, app, tier):
    default = await _create(client, autoPause=True)
    off = await _create(client, autoPause=True, autoPauseMemory=True, autoResume={"enabled": False})
    on = await _create(client, autoPause=True, autoResume={"enabled": True})
    for sid in (default, off, on):
        info = await _paused(client, sid)
        assert info["corralPause"]["mode"] == "full" and sid in tier.frozen
    for sid, resumes in ((default, False), (off, False), (on, True)):
        assert (await client.get(f"/sandboxes/{sid}")).json()["lifecycle"] == {"onTimeout": "pause",
                                                                               "autoResume": resumes}
        assert await app.state.service.auto_resume(sid) is resumes
        assert (sid in tier.frozen) is not resumes


async def test_lifecycle_combinations_that_cannot_hold_are_400(client, tier):
    for body in ({"autoResume": {"enabled": True}}, {"autoPause": False, "autoResume": {"enabled": True}},
                 {"autoPause": True, "autoPauseMemory": False, "autoResume": {"enabled": True}},
                 {"autoPause": True, "autoResume": {"enabled": "yes"}}, {"autoPause": True, "autoPauseMemory": "no"}):
        res = await client.post("/sandboxes", json={"templateID": "base", **body})
        assert res.status_code == 400 and res.json()["message"], body
    assert tier.running == {}
    kill = await client.post("/sandboxes", json={"templateID": "base", "autoPause": False,
                                                 "autoResume": {"enabled": False}})
    assert kill.status_code == 201
    info = (await client.get(f"/sandboxes/{kill.json()['sandboxID']}")).json()
    assert info["lifecycle"] == {"onTimeout": "kill", "autoResume": False}
