"""Inside a gVisor sandbox: host sockets in front of envd's sandbox-internal sockets.

runsc (``--host-uds=create``) lets the sandbox create a listening unix socket in a bind-mounted
host directory, which is how the server reaches envd without any network. But gVisor cannot
checkpoint a sandbox that holds a host socket ("Cannot save endpoint with bound host socket").
So envd listens on sandbox-internal sockets only, and this relay, a thread of the same process,
owns every host-backed socket: it accepts the server's connections on ``/run/corral/*.sock``
and splices each one to envd's internal socket.

Before a checkpoint the tier sends ``quiesce`` on ``ctl.sock``: the relay closes every host
socket (listeners and connections; envd sees its relayed connections end), answers ``ok`` and
waits. After a restore (or a checkpoint that leaves the sandbox running) the tier writes a new
generation number into ``/run/corral/resume``; the relay sees it change and binds again.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Awaitable, Callable

CHUNK = 1 << 16
RESUME_POLL_S = 0.005


def _read_generation(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(64).decode(errors="replace").strip()
    except OSError:
        return ""


class Relay:
    def __init__(self, run_dir: str, pairs: dict[str, str], ctl_name: str, resume_name: str) -> None:
        """``pairs`` maps a host socket name in ``run_dir`` to envd's internal socket path."""
        self.run_dir = run_dir
        self.pairs = pairs
        self.ctl_name = ctl_name
        self.resume_path = os.path.join(run_dir, resume_name)
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self._servers: list[asyncio.AbstractServer] = []
        self._conns: set[asyncio.StreamWriter] = set()
        self._generation = ""

    # --- thread -------------------------------------------------------------------------

    def start(self) -> None:
        threading.Thread(target=self._run, name="corral-relay", daemon=True).start()
        self.ready.wait()
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        """Close every socket and stop the thread's loop (tests; the guest never stops it)."""
        async def shutdown() -> None:
            await self._quiesce()
            me = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not me]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._bind())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self.error = exc
            self.ready.set()
            return
        self.ready.set()
        self.loop.run_forever()

    # --- sockets ------------------------------------------------------------------------

    async def _listen(self, name: str, handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                                         Awaitable[None]]) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(os.path.join(self.run_dir, name))
        sock.listen(512)
        self._servers.append(await asyncio.start_unix_server(handler, sock=sock, limit=CHUNK))

    async def _bind(self) -> None:
        for name, inner in self.pairs.items():
            await self._listen(name, self._make_handler(inner))
        await self._listen(self.ctl_name, self._control)

    def _make_handler(self, inner: str) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter],
                                                     Awaitable[None]]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._conns.add(writer)
            try:
                up_reader, up_writer = await asyncio.open_unix_connection(inner, limit=CHUNK)
            except OSError:
                self._conns.discard(writer)
                writer.close()
                return
            self._conns.add(up_writer)
            try:
                await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
            finally:
                for w in (writer, up_writer):
                    self._conns.discard(w)
                    w.close()
        return handle

    async def _control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = (await reader.readline()).strip()
        except OSError:
            line = b""
        if line != b"quiesce":
            writer.write(b"error unknown command\n")
            await writer.drain()
            writer.close()
            return
        # Resume on the first generation different from the one present now, so a stale file
        # (or one written before this quiesce) cannot rebind the sockets under a checkpoint.
        self._generation = _read_generation(self.resume_path)
        await self._quiesce()
        try:
            writer.write(b"ok\n")
            await writer.drain()
        except OSError:
            pass
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
        asyncio.ensure_future(self._await_resume())

    async def _quiesce(self) -> None:
        for server in self._servers:
            server.close()
        self._servers.clear()
        for w in list(self._conns):
            w.close()
        self._conns.clear()
        await asyncio.sleep(0)

    async def _await_resume(self) -> None:
        while True:
            gen = _read_generation(self.resume_path)
            if gen and gen != self._generation:
                self._generation = gen
                break
            await asyncio.sleep(RESUME_POLL_S)
        await self._bind()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, RuntimeError):
        writer.close()
