"""A throwaway `corral serve` for the benchmark: free loopback port, temp data dir, fresh key.

Benchmarking our own process (rather than an in-process app) measures what users get: the real
CLI, uvicorn, the real tier. The server is a child of the benchmark so its whole process tree,
sandboxes included, can be measured and, at the end, is gone with its data dir.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from corral.errors import CorralError


class ServerError(CorralError, RuntimeError):
    """The benchmark's own server did not start; the message carries the tail of its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def new_api_key() -> str:
    return "e2b_" + secrets.token_hex(20)


class LocalServer:
    """`with LocalServer() as srv:` gives srv.url and srv.api_key of a healthy server."""

    def __init__(self, startup_timeout_s: float = 60.0, extra_env: dict[str, str] | None = None) -> None:
        self.startup_timeout_s = startup_timeout_s
        self.extra_env = extra_env or {}
        self.api_key = new_api_key()
        self.port = 0
        self.root: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise ServerError("server is not running")
        return self.proc.pid

    @property
    def log_path(self) -> Path:
        if self.root is None:
            raise ServerError("server was never started")
        return self.root / "server.log"

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def start(self) -> None:
        if os.geteuid() != 0:
            raise ServerError("the benchmark starts its own corral server, which needs root; "
                              "run as root or pass --url/--api-key of a running server")
        self.root = Path(tempfile.mkdtemp(prefix="corral-bench-"))
        data_dir = self.root / "data"
        data_dir.mkdir()
        self.port = free_port()
        env = {**os.environ, **self.extra_env, "CORRAL_API_KEY": self.api_key}
        for name in ("E2B_API_KEY", "E2B_API_URL", "E2B_SANDBOX_URL", "E2B_DOMAIN", "E2B_DEBUG"):
            env.pop(name, None)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "corral.cli.main", "serve", "--host", "127.0.0.1",
                 "--port", str(self.port), "--data-dir", str(data_dir), "--log-level", "warning"],
                stdout=log, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_tail()
                self.stop()
                raise ServerError(f"corral serve exited with {self.proc.returncode}:\n{tail}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        tail = self.log_tail()
        self.stop()
        raise ServerError(f"corral serve did not become healthy in {self.startup_timeout_s:.0f} s:\n{tail}")

    def stop(self) -> None:
        """Stop the server and delete its temp dir, unless sandboxes were left in it.

        The caller kills every sandbox first; a sandbox directory still present afterwards means
        a kill failed, and deleting under a possibly live sandbox would hide that, so we keep it
        and say where it is.
        """
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.root is None:
            return
        sandboxes = self.root / "data" / "sandboxes"
        leftovers = sorted(p.name for p in sandboxes.iterdir()) if sandboxes.is_dir() else []
        if leftovers:
            raise ServerError(f"{len(leftovers)} sandbox dir(s) left in {sandboxes} after the benchmark; "
                              f"kept for inspection: {', '.join(leftovers[:5])}")
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def __enter__(self) -> "LocalServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
