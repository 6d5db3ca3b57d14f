"""Contexts: isolation, restart, removal, bad requests, interrupts on disconnect, kernel death."""

from __future__ import annotations

import json
import shutil

import httpx

from tests.interpreter.conftest import needs_kernel_python
from tests.interpreter.helpers import Interpreter, run

pytestmark = needs_kernel_python


async def _create(c: httpx.AsyncClient, **body: object) -> dict:
    r = await c.post("/contexts", json=body)
    assert r.status_code == 200, r.text
    return r.json()


async def test_contexts_are_isolated_and_listed(interp: Interpreter) -> None:
    async with interp.client() as c:
        a = await _create(c, language="python")
        b = await _create(c, language="python", cwd="/tmp")
        assert a["language"] == "python" and a["cwd"] == str(interp.sandbox.user_home)
        assert b["cwd"] == "/tmp"
        await run(c, "secret = 'a'", context_id=a["id"])
        ex = await run(c, "secret", context_id=b["id"])
        assert ex.error is not None and ex.error["name"] == "NameError"
        assert (await run(c, "secret", context_id=a["id"])).text == "a"
        assert (await run(c, "import os; os.getcwd()", context_id=b["id"])).text == "/tmp"
        listed = (await c.get("/contexts")).json()
        ids = {x["id"] for x in listed}
        assert {a["id"], b["id"]} <= ids
        for x in listed:
            assert set(x) == {"id", "language", "cwd"}


async def test_default_contexts_are_python_and_javascript_listed_first(interp: Interpreter) -> None:
    """As on E2B, a fresh interpreter lists a Python and a JavaScript context, before any context a
    client creates; the JavaScript kernel starts only when a cell first runs in it."""
    async with interp.client() as c:
        listed = (await c.get("/contexts")).json()
        defaults = {x["language"]: x for x in listed[:2]}
        assert set(defaults) == {"python", "javascript"}, listed
        assert defaults["javascript"]["cwd"] == str(interp.sandbox.user_home)
        made = await _create(c, language="python")
        again = (await c.get("/contexts")).json()
        assert again[-1]["id"] == made["id"] and [x["id"] for x in again[:2]] == [x["id"] for x in listed[:2]]
        # A cell with language "javascript" runs in that listed default context.
        if shutil.which("node"):
            await run(c, "globalThis.markDefault = 5", language="javascript")
            ex = await run(c, "markDefault + 1", context_id=defaults["javascript"]["id"])
            assert ex.text == "6", ex.events


async def test_restart_clears_state(interp: Interpreter) -> None:
    async with interp.client() as c:
        ctx = await _create(c)
        await run(c, "value = 1", context_id=ctx["id"])
        r = await c.post(f"/contexts/{ctx['id']}/restart")
        assert r.status_code == 200
        ex = await run(c, "value", context_id=ctx["id"])
        assert ex.error["name"] == "NameError"
        assert (await run(c, "5", context_id=ctx["id"])).text == "5"


async def test_remove_then_unknown(interp: Interpreter) -> None:
    async with interp.client() as c:
        ctx = await _create(c)
        assert (await c.delete(f"/contexts/{ctx['id']}")).status_code == 204
        r = await c.post("/execute", json={"code": "1", "context_id": ctx["id"]})
        assert r.status_code == 404 and r.text == f"Context {ctx['id']} not found"
        assert ctx["id"] not in {x["id"] for x in (await c.get("/contexts")).json()}
        assert (await c.delete(f"/contexts/{ctx['id']}")).status_code == 404
        assert (await c.post(f"/contexts/{ctx['id']}/restart")).status_code == 404


async def test_bad_requests(interp: Interpreter) -> None:
    async with interp.client() as c:
        r = await c.post("/execute", json={"code": "1", "context_id": "x", "language": "python"})
        assert (r.status_code, r.text) == (400, "Only one of context_id or language can be provided")
        r = await c.post("/execute", json={"code": "1", "context_id": "nope"})
        assert (r.status_code, r.text) == (404, "Context nope not found")
        assert (await c.post("/execute", json={"code": 1})).status_code == 400
        assert (await c.post("/execute", json={"code": "1", "language": "cobol"})).status_code == 400
        assert (await c.post("/execute", content=b"{not json")).status_code == 400
        assert (await c.post("/execute", json=["code"])).status_code == 400
        for env in ({"A=B": "x"}, {"": "x"}, {"A": "x\x00y"}, {"A": ["x"]}, ["A"]):
            r = await c.post("/execute", json={"code": "1", "env_vars": env})
            assert r.status_code == 400, env
        r = await c.post("/contexts", json={"cwd": "/does/not/exist"})
        assert r.status_code == 400
        r = await c.post("/contexts", json={"language": "klingon"})
        assert r.status_code == 400
        big = "x" * (33 * 1024 * 1024)
        r = await c.post("/execute", content=json.dumps({"code": big}).encode())
        assert r.status_code == 413


async def test_disconnect_interrupts_the_cell(interp: Interpreter) -> None:
    async with interp.client() as c:
        ctx = await _create(c)
        code = ("import time\nstate = 'running'\nprint('started', flush=True)\n"
                "try:\n    while True: time.sleep(0.01)\nexcept KeyboardInterrupt:\n    state = 'interrupted'")
        body = {"code": code, "context_id": ctx["id"]}
        async with c.stream("POST", "/execute", json=body) as r:
            async for line in r.aiter_lines():
                if json.loads(line).get("text") == "started\n":
                    break
        # Leaving the block closed the connection mid-cell. The kernel survives and the next cell
        # runs after the interrupted one (it would wait forever had the interrupt not landed).
    async with interp.client() as c:
        assert (await run(c, "state", context_id=ctx["id"])).text == "interrupted"


async def test_kernel_death_restarts_with_a_clear_error(interp: Interpreter) -> None:
    async with interp.client() as c:
        ctx = await _create(c)
        await run(c, "before = 1", context_id=ctx["id"])
        ex = await run(c, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)", context_id=ctx["id"])
        assert ex.error is not None and ex.error["name"] == "KernelDied"
        assert "restarted" in ex.error["value"] and "killed" in ex.error["value"]
        assert (await run(c, "1+1", context_id=ctx["id"])).text == "2"
        assert (await run(c, "before", context_id=ctx["id"])).error["name"] == "NameError"


async def test_default_context_survives_a_dead_kernel(interp: Interpreter) -> None:
    async with interp.client() as c:
        ex = await run(c, "import os; os._exit(3)")
        assert ex.error["name"] == "KernelDied" and "3" in ex.error["value"]
        assert (await run(c, "40+2")).text == "42"
