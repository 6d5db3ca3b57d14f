"""The Python kernel through the HTTP surface: values, state, output, errors, env, streaming."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.interpreter.conftest import needs_kernel_python
from tests.interpreter.helpers import Interpreter, parse_lines, run

pytestmark = needs_kernel_python


async def test_health(interp: Interpreter) -> None:
    async with interp.client() as c:
        r = await c.get("/health")
    assert (r.status_code, r.text) == (200, "OK")


async def test_one_plus_one_and_state(interp: Interpreter) -> None:
    async with interp.client() as c:
        ex = await run(c, "1+1")
        assert ex.text == "2"
        assert ex.of("number_of_executions")[0]["execution_count"] >= 1
        assert ex.error is None
        await run(c, "kept = 41")
        assert (await run(c, "kept + 1")).text == "42"
        assert (await run(c, "'abc'", language="python")).text == "abc"


async def test_stdout_and_stderr(interp: Interpreter) -> None:
    async with interp.client() as c:
        ex = await run(c, "import sys\nprint('out')\nprint('err', file=sys.stderr)")
    assert ex.stdout == "out\n"
    assert ex.stderr == "err\n"
    assert all("timestamp" in e for e in ex.of("stdout"))
    assert ex.text is None


async def test_error_has_traceback_and_kernel_lives_on(interp: Interpreter) -> None:
    async with interp.client() as c:
        ex = await run(c, "def f():\n    return 1/0\nf()")
        assert ex.error is not None
        assert ex.error["name"] == "ZeroDivisionError"
        assert ex.error["value"] == "division by zero"
        assert "return 1/0" in ex.error["traceback"] and "\x1b[" not in ex.error["traceback"]
        assert (await run(c, "2*3")).text == "6"


async def test_output_streams_while_the_cell_runs(interp: Interpreter) -> None:
    flag = interp.base / "release"
    code = (f"import os, time\nprint('first', flush=True)\n"
            f"while not os.path.exists({str(flag)!r}): time.sleep(0.01)\nprint('second')")
    async with interp.client() as c:
        body = {"code": code, "context_id": None, "language": None, "env_vars": None}
        async with c.stream("POST", "/execute", json=body) as r:
            assert r.status_code == 200
            seen = []
            lines = r.aiter_lines()
            async for line in lines:
                seen.append(json.loads(line))
                if seen[-1].get("text") == "first\n":
                    break
            # The cell is still blocked on the flag, yet its first line has arrived.
            flag.touch()
            async for line in lines:
                seen.append(json.loads(line))
    assert [e["text"] for e in seen if e["type"] == "stdout"] == ["first\n", "second\n"]
    assert seen[-1] == {"type": "end_of_execution"}


async def test_env_vars_are_applied_and_restored(interp: Interpreter) -> None:
    async with interp.client() as c:
        ex = await run(c, "import os; os.environ.get('FOO')", env_vars={"FOO": "bar"})
        assert ex.text == "bar"
        assert (await run(c, "import os; repr(os.environ.get('FOO'))")).text == "None"
        # A variable that existed keeps its old value afterwards.
        ex = await run(c, "os.environ['SANDBOX_VAR']", env_vars={"SANDBOX_VAR": "overridden"})
        assert ex.text == "overridden"
        assert (await run(c, "os.environ['SANDBOX_VAR']")).text == "from-sandbox"
        # Restored even when the cell fails.
        ex = await run(c, "raise ValueError(os.environ['FOO'])", env_vars={"FOO": "x"})
        assert ex.error["name"] == "ValueError" and ex.error["value"] == "x"
        assert (await run(c, "repr(os.environ.get('FOO'))")).text == "None"


async def test_kernel_runs_as_the_sandbox_user_in_its_home(interp: Interpreter) -> None:
    async with interp.client() as c:
        ex = await run(c, "import os; (os.getuid(), os.getcwd())")
    assert ex.text == f"(1000, {str(interp.sandbox.user_home)!r})"


async def test_no_blank_lines_and_end_marker(interp: Interpreter) -> None:
    async with interp.client() as c:
        r = await c.post("/execute", json={"code": "print('\\n\\n')", "context_id": None,
                                           "language": None, "env_vars": None})
    events = parse_lines(r.content)
    assert events[-1] == {"type": "end_of_execution"}
    assert r.headers["content-type"].startswith("application/json")


def _connection_dirs(root_pid: int) -> set[str]:
    """The /tmp/.corral-kernel-* directories whose connection.json the descendants of
    `root_pid` (this interpreter's kernels) were started with."""
    children: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # exited while we looked
        children.setdefault(ppid, []).append(int(entry))
    found: set[str] = set()
    todo = [root_pid]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        found |= {os.path.dirname(a.decode()) for a in argv
                  if a.startswith(b"/tmp/.corral-kernel-") and a.endswith(b"/connection.json")}
    return found


async def test_connection_files_are_removed(interp: Interpreter) -> None:
    """A kernel's connection file (its ports and key) is gone once the kernel runs, also after a
    restart. The check is of this interpreter's kernels: other tests' kernels on this host (another
    pytest worker's) have theirs in /tmp while they start."""
    async with interp.client() as c:
        ctx = (await c.post("/contexts", json={})).json()
        assert (await run(c, "1", context_id=ctx["id"])).text == "1"
        await c.post(f"/contexts/{ctx['id']}/restart")
        assert (await run(c, "2", context_id=ctx["id"])).text == "2"
    named = _connection_dirs(interp.proc.pid)
    assert named, "the interpreter's kernels were started from connection files"
    assert sorted(d for d in named if os.path.exists(d)) == []
