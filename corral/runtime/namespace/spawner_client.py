"""The tier's side of the spawner: start it clean, talk to it, hear about exits."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from corral.runtime.base import Payload, TierError

# The only environment the spawner (and so every sandbox) inherits from the server.
CLEAN_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}


class SpawnerClient:
    def __init__(self, cgroup_group: str, on_exit: Callable[[int, int], None], payload: Payload) -> None:
        self.cgroup_group = cgroup_group
        self.on_exit = on_exit
        self.payload = payload
        self.lxcfs_root = ""   # set by the tier before start(): bound into every sandbox's /proc
        self.proc: subprocess.Popen[bytes] | None = None
        self.sock: socket.socket | None = None
        self.info: dict[str, Any] = {}
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[dict[str, Any]] | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and self._reader is not None \
            and not self._reader.done()

    async def start(self) -> None:
        if self.running:
            return
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-m", "corral.runtime.namespace.zygote",
                 str(theirs.fileno()), str(os.getpid()), self.cgroup_group,
                 json.dumps({"entry_point": self.payload.entry_point, "preload": list(self.payload.preload),
                             "process_name": self.payload.process_name, "lxcfs_root": self.lxcfs_root})],
                pass_fds=[theirs.fileno()], env=dict(CLEAN_ENV), stdin=subprocess.DEVNULL,
                cwd="/", close_fds=True,
            )
        finally:
            theirs.close()
        ours.setblocking(False)
        self.sock = ours
        self._ready = loop.create_future()
        self._reader = asyncio.create_task(self._read_loop())
        try:
            self.info = await asyncio.wait_for(asyncio.shield(self._ready), 30)
        except (asyncio.TimeoutError, TierError) as exc:
            await self.close()
            raise TierError(f"sandbox spawner did not start: {exc}") from exc

    async def _read_loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self.sock is not None
        error: Exception = TierError("sandbox spawner exited")
        try:
            while True:
                raw = await loop.sock_recv(self.sock, 1 << 16)
                if not raw:
                    break
                msg = json.loads(raw)
                if msg.get("event") == "exit":
                    self.on_exit(int(msg["pid"]), int(msg["status"]))
                elif msg.get("event") == "ready":
                    if self._ready is not None and not self._ready.done():
                        self._ready.set_result(msg)
                else:
                    fut = self._pending.pop(int(msg.get("req", -1)), None)
                    if fut is not None and not fut.done():
                        fut.set_result(msg)
        except (OSError, ValueError) as exc:
            error = TierError(f"sandbox spawner connection failed: {exc}")
        finally:
            for fut in list(self._pending.values()) + ([self._ready] if self._ready else []):
                if not fut.done():
                    fut.set_exception(error)
            self._pending.clear()

    async def request(self, msg: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        if not self.running or self.sock is None:
            raise TierError("sandbox spawner is not running")
        req_id = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        await asyncio.get_running_loop().sock_sendall(self.sock, json.dumps({**msg, "req": req_id}).encode())
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._pending.pop(req_id, None)

    async def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):
                pass
            self._reader = None
        if self.proc is not None:
            proc = self.proc
            self.proc = None
            try:
                await asyncio.wait_for(asyncio.to_thread(proc.wait), 5)
            except asyncio.TimeoutError:
                proc.kill()
                await asyncio.to_thread(proc.wait)
