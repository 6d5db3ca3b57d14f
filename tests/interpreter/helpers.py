"""Test harness: the interpreter app served the way envd serves it, plus NDJSON helpers.

The server runs in its own process (preloaded, optionally with imports disabled, reaping its
children like pid 1) on a unix socket; kernels run as user 1000 of a scratch sandbox.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.envd.helpers import REPO, Sandbox, make_sandbox, scratch_root
from tests.processes import stop

LAUNCHER = r"""
import asyncio, ctypes, json, signal, socket, sys
from corral.envd import server
from corral.guest import reaper, users
import corral.interpreter as interpreter
uds, etc_root, lock, cfg = sys.argv[1], sys.argv[2], sys.argv[3] == "1", json.loads(sys.argv[4])
users.ETC_ROOT = etc_root
server.preload()
interpreter.preload()
from corral.interpreter.contexts import InterpreterConfig
env = cfg.pop("env_vars", {})
config = InterpreterConfig(env_vars=lambda: env, **cfg)
app = interpreter.create_app(config)
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.bind(uds)
sock.listen(64)
if lock:
    from tests.import_lock import lock_imports
    lock_imports()
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # child subreaper, like envd's serve()
reaper.REAP_ALL = True
srv = server._Server(server._uvicorn_config(app))
signal.signal(signal.SIGTERM, lambda *_: None)
async def main():
    loop = asyncio.get_running_loop()
    reaper.reaper_for(loop)
    app.state.interpreter.start_default_kernels()
    try:
        await srv.serve(sockets=[sock])
    finally:
        await app.state.interpreter.close()
        reaper.reaper_for(loop).reap()
asyncio.run(main())
"""


@dataclass
class Interpreter:
    proc: subprocess.Popen[bytes]
    uds: str
    sandbox: Sandbox
    stderr_path: Path
    base: Path

    def client(self, **kw: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=self.uds),
                                 base_url="http://interpreter", timeout=kw.pop("timeout", 120), **kw)

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def start_interpreter(*, lock_imports: bool = False, **config: Any) -> Interpreter:
    base = Path(tempfile.mkdtemp(prefix="interp", dir=scratch_root()))
    os.chmod(base, 0o755)
    sandbox = make_sandbox(base)
    uds = str(base / "interpreter.sock")
    stderr_path = base / "stderr.log"
    cfg = {"env_vars": {"SANDBOX_VAR": "from-sandbox"}, "default_user": "user", **config}
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, uds, str(sandbox.etc), "1" if lock_imports else "0",
             json.dumps(cfg)],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=err,
        )
    deadline = time.monotonic() + 60
    while not os.path.exists(uds):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("interpreter did not start: " + stderr_path.read_text(errors="replace"))
        time.sleep(0.02)
    return Interpreter(proc, uds, sandbox, stderr_path, base)


def stop_interpreter(it: Interpreter) -> int:
    code = stop(it.proc, timeout=30)
    shutil.rmtree(it.base, ignore_errors=True)
    return code  # type: ignore[return-value]


@dataclass
class Execution:
    events: list[dict[str, Any]]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    @property
    def stdout(self) -> str:
        return "".join(e["text"] for e in self.of("stdout"))

    @property
    def stderr(self) -> str:
        return "".join(e["text"] for e in self.of("stderr"))

    @property
    def results(self) -> list[dict[str, Any]]:
        return self.of("result")

    @property
    def text(self) -> str | None:
        main = [r for r in self.results if r.get("is_main_result")]
        return main[-1].get("text") if main else None

    @property
    def error(self) -> dict[str, Any] | None:
        errors = self.of("error")
        return errors[-1] if errors else None


def parse_lines(body: bytes) -> list[dict[str, Any]]:
    assert body.endswith(b"\n"), body[-200:]
    lines = body.split(b"\n")[:-1]
    assert all(lines), "a blank line in the stream"
    return [json.loads(line) for line in lines]


async def run(client: httpx.AsyncClient, code: str, **body: Any) -> Execution:
    payload = {"code": code, "context_id": None, "language": None, "env_vars": None, **body}
    r = await client.post("/execute", json=payload)
    assert r.status_code == 200, (r.status_code, r.text)
    events = parse_lines(r.content)
    assert events[-1] == {"type": "end_of_execution"}, events
    return Execution(events)


def python_has(*modules: str) -> bool:
    code = "import " + ", ".join(modules)
    return subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True).returncode == 0


