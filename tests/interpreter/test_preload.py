"""After preload() the interpreter works with imports disabled, as it must after pivot_root."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from tests.interpreter.conftest import needs_kernel_python
from tests.interpreter.helpers import run, start_interpreter, stop_interpreter


@needs_kernel_python
async def test_preloaded_interpreter_works_with_imports_disabled() -> None:
    it = start_interpreter(lock_imports=True)
    try:
        async with it.client() as c:
            assert (await c.get("/health")).text == "OK"
            assert (await run(c, "1+1")).text == "2"
            assert (await run(c, "1/0")).error["name"] == "ZeroDivisionError"
            assert (await run(c, "import os; os.environ['A']", env_vars={"A": "b"})).text == "b"
            ctx = (await c.post("/contexts", json={"language": "python", "cwd": "/tmp"})).json()
            assert (await c.post(f"/contexts/{ctx['id']}/restart")).status_code == 200
            ex = await run(c, "import os; os.kill(os.getpid(), 9)", context_id=ctx["id"])
            assert ex.error["name"] == "KernelDied"
            assert (await c.delete(f"/contexts/{ctx['id']}")).status_code == 204
            assert (await c.post("/execute", json={"code": "1", "context_id": "x"})).status_code == 404
            assert (await c.post("/execute", content=b"{bad")).status_code == 400
            if shutil.which("node"):
                assert (await run(c, "console.log(1); 2", language="js")).text == "2"
            assert (await run(c, "echo hi", language="bash")).stdout == "hi\n"
        assert it.proc.poll() is None
    finally:
        rc = stop_interpreter(it)
    log = it.stderr()
    for marker in ("ImportError", "ModuleNotFoundError", "Traceback"):
        assert marker not in log, log
    assert rc == 0


@pytest.mark.parametrize("lock", [True])
async def test_the_import_lock_blocks_imports(lock: bool) -> None:
    import subprocess
    import sys
    code = ("import sys, importlib.machinery as m; sys.path.clear(); "
            "sys.meta_path[:] = [f for f in sys.meta_path if f in (m.BuiltinImporter, m.FrozenImporter)]; "
            "sys.path_importer_cache.clear()\n"
            "try:\n import zmq\nexcept ImportError:\n print('blocked')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "blocked"


@needs_kernel_python
async def test_kernels_die_with_a_killed_daemon() -> None:
    """Outside a pid namespace nothing else would end them: they carry a parent-death signal."""
    import signal

    it = start_interpreter()
    try:
        async with it.client() as c:
            pids = [int((await run(c, "import os; os.getpid()")).text),
                    int((await run(c, "echo $$", language="bash")).stdout)]
        it.proc.send_signal(signal.SIGKILL)
        it.proc.wait()
        for pid in pids:
            while True:  # gone, or a zombie waiting for init: either way no longer running
                try:
                    with open(f"/proc/{pid}/stat") as fh:
                        state = fh.read().rsplit(")", 1)[1].split()[0]
                except FileNotFoundError:
                    break
                if state in ("Z", "X"):
                    break
                await asyncio.sleep(0.01)
    finally:
        stop_interpreter(it)
