"""The few envd calls the server makes itself (warming a pooled sandbox, a template's start and
ready commands), spoken over the sandbox's unix socket with the same Connect framing the SDK uses.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import dataclass

import httpx

STREAM_CT = "application/connect+json"


def _envelope(msg: dict) -> bytes:
    body = json.dumps(msg).encode()
    return b"\0" + struct.pack(">I", len(body)) + body


def _frames(data: bytes) -> list[tuple[int, dict]]:
    out, pos = [], 0
    while pos + 5 <= len(data):
        flags, size = data[pos], struct.unpack(">I", data[pos + 1:pos + 5])[0]
        out.append((flags, json.loads(data[pos + 5:pos + 5 + size] or b"{}")))
        pos += 5 + size
    return out


@dataclass
class Finished:
    exit_code: int
    output: str


def _start_body(cmd: str, envs: dict[str, str] | None, cwd: str | None, tag: str | None) -> dict:
    process: dict = {"cmd": "/bin/bash", "args": ["-l", "-c", cmd]}
    if envs:
        process["envs"] = envs
    if cwd:
        process["cwd"] = cwd
    body: dict = {"process": process, "stdin": False}
    if tag:
        body["tag"] = tag
    return body


def _headers(token: str | None, user: str | None, timeout_ms: int | None = None) -> dict[str, str]:
    h = {"Content-Type": STREAM_CT, "Connect-Protocol-Version": "1", "X-Access-Token": token or ""}
    if user:
        h["Authorization"] = "Basic " + base64.b64encode(f"{user}:".encode()).decode()
    if timeout_ms:
        h["Connect-Timeout-Ms"] = str(timeout_ms)
    return h


async def run(client: httpx.AsyncClient, token: str | None, cmd: str, *, user: str | None = None,
              timeout_s: float = 60.0) -> Finished:
    """Run `cmd` in a login shell and wait for it."""
    resp = await client.post("/process.Process/Start", content=_envelope(_start_body(cmd, None, None, None)),
                             headers=_headers(token, user, int(timeout_s * 1000)), timeout=timeout_s + 10)
    resp.raise_for_status()
    code, out = -1, []
    for _flags, msg in _frames(resp.content):
        event = msg.get("event", {})
        data = event.get("data", {})
        for key in ("stdout", "stderr"):
            if key in data:
                out.append(base64.b64decode(data[key]).decode(errors="replace"))
        if "end" in event:
            code = int(event["end"].get("exitCode", event["end"].get("exit_code", 0)) or 0)
    return Finished(code, "".join(out))


async def start_background(client: httpx.AsyncClient, token: str | None, cmd: str, *, user: str | None = None,
                           tag: str | None = None) -> None:
    """Start `cmd` and return once envd reports it started; it keeps running (closing the stream
    does not stop a process in envd)."""
    async with client.stream("POST", "/process.Process/Start",
                             content=_envelope(_start_body(cmd, None, None, tag)),
                             headers=_headers(token, user), timeout=30) as resp:
        resp.raise_for_status()
        buf = b""
        async for chunk in resp.aiter_raw():
            buf += chunk
            if any("start" in m.get("event", {}) for _f, m in _frames(buf)):
                return


async def hand_over(client: httpx.AsyncClient, pool_token: str | None, token: str, env: dict[str, str]) -> None:
    """Give a pooled sandbox its client: envd's server-only init swaps in the new access token
    and the client's environment."""
    r = await client.post("/.corral/init", json={"accessToken": token, "envVars": env},
                          headers={"X-Access-Token": pool_token or ""}, timeout=10)
    r.raise_for_status()
