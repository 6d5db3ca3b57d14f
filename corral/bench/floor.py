"""The floor: the cheapest versions of what a sandbox operation is made of, measured in the same run.

A sandbox command is, at bottom, an HTTP round trip on loopback plus a fork+exec. Timing those two
on the same machine, seconds before the sandbox numbers, turns "12 ms" into "3x the floor", a
figure that survives noisy neighbours and a different CPU. Two HTTP floors are taken: corral's own
`/health` (what our server stack costs with no sandbox work at all) and a bare asyncio + h11
server (what any Python HTTP/1.1 server costs), so a slow `/health` points at the server stack and
not at the kernel.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import Callable

import h11
import httpx

from corral.bench.stats import Summary, summarize

Tick = Callable[[], None]


def _noop() -> None:
    return None


def measure_spawn(iterations: int, warmup: int = 3, tick: Tick = _noop, program: str = "/bin/true") -> Summary:
    """fork+exec+wait of a program that does nothing: the cost of starting any command at all."""
    for _ in range(warmup):
        subprocess.run([program], check=True)
    samples: list[float] = []
    for _ in range(iterations):
        start = time.perf_counter()
        subprocess.run([program], check=True)
        samples.append(time.perf_counter() - start)
        tick()
    return summarize("floor: fork+exec /bin/true", samples)


def measure_http(name: str, url: str, iterations: int, warmup: int = 5, tick: Tick = _noop) -> Summary:
    """GET round trips over one kept-alive connection, like the SDK's pooled transport makes."""
    samples: list[float] = []
    with httpx.Client(timeout=10.0) as client:
        for _ in range(warmup):
            client.get(url).raise_for_status()
        for _ in range(iterations):
            start = time.perf_counter()
            response = client.get(url)
            samples.append(time.perf_counter() - start)
            response.raise_for_status()
            tick()
    return summarize(name, samples)


class BareHttpServer:
    """A minimal HTTP/1.1 server (asyncio + h11) on a free loopback port, in its own thread.

    It answers every request with `200 ok` and nothing else, so its round trip is what the network
    stack, the event loop and HTTP parsing cost, with no framework on top.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def __enter__(self) -> "BareHttpServer":
        self._thread = threading.Thread(target=self._run, name="corral-bench-h11", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=10)
        if self._error is not None:
            raise RuntimeError(f"bare HTTP server failed to start: {self._error}")
        if not self.port:
            raise RuntimeError("bare HTTP server did not start within 10 s")
        return self

    def __exit__(self, *exc: object) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._server = loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()
            loop.run_forever()
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            self._ready.set()
        finally:
            if self._server is not None:
                self._server.close()
                loop.run_until_complete(self._server.wait_closed())
            for task in asyncio.all_tasks(loop):
                task.cancel()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    @staticmethod
    async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(65536)
                    conn.receive_data(data)
                    if not data:
                        return
                    continue
                if isinstance(event, h11.ConnectionClosed):
                    return
                if isinstance(event, h11.EndOfMessage):
                    body = b"ok"
                    out = conn.send(h11.Response(status_code=200, headers=[("content-length", str(len(body))), ("content-type", "text/plain")]))
                    out += conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())
                    writer.write(out)
                    await writer.drain()
                    if conn.our_state is h11.MUST_CLOSE:
                        return
                    conn.start_next_cycle()
        except (h11.RemoteProtocolError, ConnectionError):
            return
        finally:
            writer.close()
