"""Test harness for the envd daemon: a real daemon process on a unix socket, plus Connect helpers."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.processes import stop

REPO = Path(__file__).resolve().parents[2]
TOKEN = "envd-test-token"
USER_UID = 1000
USER_GID = 1000

# Launches the daemon the way the runtime will: preload, then (optionally) make every further
# import impossible, then serve on an already-listening socket.
LAUNCHER = r"""
import json, os, socket, sys
from corral.envd import server
from corral.guest import users
from corral.wire.handoff import EnvdConfig
uds, config_path, etc_root, lock = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
tcp_port = int(sys.argv[5]) if len(sys.argv) > 5 else 0
users.ETC_ROOT = etc_root
config = EnvdConfig.from_bytes(open(config_path, "rb").read())
server.preload()
if tcp_port:  # only for driving the official SDK in its debug mode (loopback only)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", tcp_port))
else:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(uds)
sock.listen(64)
if lock:
    from tests.import_lock import lock_imports
    lock_imports()
server.serve(sock, config)
"""


@dataclass
class Sandbox:
    """A scratch 'sandbox': an etc dir with passwd/group and home directories."""

    root: Path
    etc: Path
    user_home: Path
    root_home: Path


def scratch_root() -> str:
    """/tmp, unless this machine made it private (mode 0700): user 1000 must reach its home."""
    return "/tmp" if os.stat("/tmp").st_mode & 0o001 else "/var/tmp"


def make_sandbox(base: Path) -> Sandbox:
    etc = base / "etc"
    etc.mkdir()
    user_home = base / "home" / "user"
    user_home.mkdir(parents=True)
    os.chown(user_home, USER_UID, USER_GID)
    root_home = base / "root"
    root_home.mkdir(mode=0o700)
    os.chmod(root_home, 0o700)
    (etc / "passwd").write_text(
        "root:x:0:0:root:%s:/bin/bash\n"
        "user:x:%d:%d::%s:/bin/bash\n"
        "other:x:1001:1001::/nonexistent:/bin/sh\n" % (root_home, USER_UID, USER_GID, user_home)
    )
    (etc / "group").write_text("root:x:0:\nuser:x:1000:\nother:x:1001:\nextra:x:2000:user,other\n")
    # Let user 1000 traverse to its home.
    os.chmod(base, 0o755)
    os.chmod(base / "home", 0o755)
    return Sandbox(base, etc, user_home, root_home)


@dataclass
class Daemon:
    proc: subprocess.Popen[bytes]
    uds: str
    sandbox: Sandbox
    token: str | None
    stderr_path: Path
    workdir: Path

    def client(self, token: str | None | bool = True, **kw: Any) -> httpx.AsyncClient:
        headers = dict(kw.pop("headers", {}))
        tok = self.token if token is True else (token or None)
        if tok:
            headers["x-access-token"] = tok
        return httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=self.uds), base_url="http://envd",
            headers=headers, timeout=kw.pop("timeout", 30), **kw)

    def stderr(self) -> str:
        try:
            self._log = self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            pass  # the scratch dir is gone; return what was read last
        return getattr(self, "_log", "")

    def stop(self) -> int:
        return stop(self.proc, timeout=15)  # type: ignore[return-value]


def start_daemon(*, token: str | None = TOKEN, lock_imports: bool = False, tcp_port: int = 0,
                 env_vars: dict[str, str] | None = None, **config: Any) -> Daemon:
    # Not under pytest's tmp dirs: those are 0700 root, and user 1000 must reach its home.
    base = Path(tempfile.mkdtemp(prefix="envd", dir=scratch_root()))
    os.chmod(base, 0o755)
    sandbox = make_sandbox(base)
    cfg = {"sandbox_id": "sbxtest", "access_token": token, "env_vars": env_vars or {"SANDBOX_VAR": "from-config"},
           "default_user": "user", **config}
    config_path = base / "config.json"
    config_path.write_text(json.dumps(cfg))
    uds = str(base / "s")
    stderr_path = base / "daemon.stderr"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, uds, str(config_path), str(sandbox.etc), "1" if lock_imports else "0",
             str(tcp_port)],
            cwd=str(base), env=env, stdout=err, stderr=err)
    daemon = Daemon(proc, uds, sandbox, token, stderr_path, base)
    for _ in range(300):
        if proc.poll() is not None:
            log = daemon.stderr()
            shutil.rmtree(base, ignore_errors=True)
            raise RuntimeError(f"daemon exited early: {log}")
        try:
            with (socket.create_connection(("127.0.0.1", tcp_port)) if tcp_port else socket.socket(socket.AF_UNIX)) as s:
                if not tcp_port:
                    s.connect(uds)
                s.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
                if s.recv(100).startswith(b"HTTP/1.1 204"):
                    return daemon
        except OSError:
            pass
        time.sleep(0.05)
    stop_daemon(daemon)
    raise RuntimeError("daemon did not become ready")


def stop_daemon(daemon: Daemon) -> int:
    """Stop the daemon and remove its scratch sandbox; returns its exit status."""
    rc = daemon.stop()
    daemon.stderr()  # keep the log readable after the scratch dir is gone
    shutil.rmtree(daemon.workdir, ignore_errors=True)
    return rc


# ---------------------------------------------------------------- Connect helpers

def envelope(msg: dict[str, Any] | bytes, flags: int = 0) -> bytes:
    payload = msg if isinstance(msg, bytes) else json.dumps(msg).encode()
    return struct.pack(">BI", flags, len(payload)) + payload


def parse_envelopes(data: bytes) -> list[tuple[int, Any]]:
    out = []
    while data:
        assert len(data) >= 5, f"truncated envelope header: {data!r}"
        flags, length = struct.unpack(">BI", data[:5])
        assert len(data) >= 5 + length, "truncated envelope"
        out.append((flags, json.loads(data[5:5 + length])))
        data = data[5 + length:]
    return out


def basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:".encode()).decode()


async def unary(client: httpx.AsyncClient, method: str, msg: dict[str, Any], **headers: str) -> httpx.Response:
    return await client.post(f"/{method}", json=msg, headers={"connect-protocol-version": "1", **headers})


@dataclass
class StreamResult:
    status: int
    messages: list[Any] = field(default_factory=list)
    end: dict[str, Any] | None = None
    content_type: str = ""

    @property
    def events(self) -> list[dict[str, Any]]:
        return [m["event"] for m in self.messages if "event" in m]

    def output(self, kind: str = "stdout") -> bytes:
        return b"".join(base64.b64decode(e["data"][kind]) for e in self.events if "data" in e and kind in e["data"])

    @property
    def end_event(self) -> dict[str, Any]:
        ends = [e["end"] for e in self.events if "end" in e]
        assert len(ends) == 1, self.messages
        return ends[0]


async def stream(client: httpx.AsyncClient, method: str, msg: dict[str, Any], **headers: str) -> StreamResult:
    resp = await client.post(f"/{method}", content=envelope(msg),
                             headers={"content-type": "application/connect+json", **headers})
    result = StreamResult(resp.status_code, content_type=resp.headers.get("content-type", ""))
    if resp.status_code != 200:
        return result
    for flags, body in parse_envelopes(resp.content):
        if flags & 2:
            result.end = body
        else:
            result.messages.append(body)
    return result


class StreamReader:
    """Incremental reader of a live server stream (for Connect, keepalives, disconnects)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._iter = response.aiter_raw()
        self._buf = b""

    async def next(self) -> tuple[int, Any]:
        while True:
            if len(self._buf) >= 5:
                flags, length = struct.unpack(">BI", self._buf[:5])
                if len(self._buf) >= 5 + length:
                    body = json.loads(self._buf[5:5 + length])
                    self._buf = self._buf[5 + length:]
                    return flags, body
            self._buf += await self._iter.__anext__()

    async def next_event(self) -> dict[str, Any]:
        flags, body = await self.next()
        assert flags == 0, body
        return body.get("event", body)


def start_msg(cmd: str, *, stdin: bool | None = False, **extra: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {"process": {"cmd": "/bin/bash", "args": ["-c", cmd]}, **extra}
    if stdin is not None:
        msg["stdin"] = stdin
    return msg
