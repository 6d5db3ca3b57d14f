"""`/.corral/init`: how the server hands a pre-started sandbox to the client that claims it."""

from __future__ import annotations

import pytest

from tests.envd.helpers import TOKEN, start_daemon, stop_daemon


@pytest.mark.root
async def test_init_swaps_token_and_env_vars():
    d = start_daemon()
    try:
        async with d.client(token="not-the-token") as c:
            assert (await c.post("/.corral/init", json={"accessToken": "x" * 20})).status_code == 401
        async with d.client() as c:
            assert (await c.post("/.corral/init", json={"accessToken": 5})).status_code == 400
            assert (await c.post("/.corral/init", json={"envVars": {"A": 1}})).status_code == 400
            assert (await c.get("/.corral/init")).status_code == 405
            r = await c.post("/.corral/init", json={"accessToken": "new-token-123", "envVars": {"CLAIMED": "yes"}})
            assert r.status_code == 204
            # The old token no longer works ...
            assert (await c.get("/envs")).status_code == 401
        async with d.client(token="new-token-123") as c:
            # ... the new one does, and new processes see the new env vars.
            assert (await c.get("/envs")).json() == {"CLAIMED": "yes"}
    finally:
        stop_daemon(d)
    assert TOKEN != "new-token-123"
