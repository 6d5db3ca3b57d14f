"""The /execute response machinery without kernels: keepalives, line framing, disconnects."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from corral.interpreter import app as app_module
from corral.interpreter.app import ExecutionStream


class FakeExecution:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.abandoned = 0

    def abandon(self) -> None:
        self.abandoned += 1


async def _drive(execution: FakeExecution, disconnect: asyncio.Event) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await ExecutionStream(execution)({"type": "http"}, receive, send)  # type: ignore[arg-type]
    return sent


def _lines(sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert body.endswith(b"\n") and b"\n\n" not in body
    return [json.loads(line) for line in body.split(b"\n")[:-1]]


async def test_keepalive_while_silent_then_events_and_end(monkeypatch) -> None:
    monkeypatch.setattr(app_module, "KEEPALIVE_SECONDS", 0.01)
    ex = FakeExecution()
    never = asyncio.Event()
    task = asyncio.ensure_future(_drive(ex, never))
    # Let the stream wait with an empty queue: it can only produce keepalives meanwhile.
    while True:
        await asyncio.sleep(0.02)
        if not task.done():
            break
    ex.queue.put_nowait({"type": "stdout", "text": "a\n\n", "timestamp": "t"})
    ex.queue.put_nowait(None)
    sent = await task
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    assert (b"content-type", b"application/json") in sent[0]["headers"]
    lines = _lines(sent)
    assert {"type": "keepalive"} in lines
    assert lines[-2] == {"type": "stdout", "text": "a\n\n", "timestamp": "t"}
    assert lines[-1] == {"type": "end_of_execution"}
    assert sent[-1]["more_body"] is False
    assert ex.abandoned == 0


async def test_disconnect_abandons_the_execution() -> None:
    ex = FakeExecution()
    gone = asyncio.Event()
    ex.queue.put_nowait({"type": "stdout", "text": "x", "timestamp": "t"})
    gone.set()
    sent = await _drive(ex, gone)
    assert ex.abandoned == 1
    assert {"type": "end_of_execution"} not in _lines(sent) if len(sent) > 1 else True


async def test_send_failure_abandons_the_execution() -> None:
    ex = FakeExecution()
    ex.queue.put_nowait({"type": "stdout", "text": "x", "timestamp": "t"})

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()
        return {}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            raise OSError("connection reset")

    try:
        await ExecutionStream(ex)({"type": "http"}, receive, send)  # type: ignore[arg-type]
    except OSError:
        pass
    assert ex.abandoned == 1
