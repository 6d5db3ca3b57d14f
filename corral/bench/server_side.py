"""The server's own time for a warm-pool create and for a resume, from its `Server-Timing` header.

Two of the issue's targets are server-side figures ("create from a warm pool <= 5 ms
server-side", and resume, which a client only sees through its SDK's and its network's
overhead). The SDK does not expose response headers, so these phases send the same REST calls
it sends (`POST /sandboxes`, `POST /sandboxes/{id}/pause`, `POST /sandboxes/{id}/connect`) with
httpx and read the header corral adds (corral/lifecycle/timing.py): the time from the request's
arrival to the response's start, API key check included. The client-side wall time of the same
calls is kept beside it. Only creates the header names as served by the warm pool count as pool
hits; the phase waits for the pool to refill before each create, outside the timed part.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from e2b import Sandbox

from corral.bench.stats import Summary, summarize
from corral.bench.target import Target, run_true

Tick = Callable[[], None]
POOL_REFILL_WAIT_S = 30.0
_ENTRY = re.compile(r'^\s*([A-Za-z0-9_-]+)((?:\s*;\s*[a-z]+=(?:"[^"]*"|[^;,]*))*)\s*$')


class ServerTimingMissing(RuntimeError):
    """The server sent no usable Server-Timing header (not corral, or an older one)."""


def _noop() -> None:
    return None


def parse_server_timing(value: str | None) -> dict[str, tuple[str | None, float | None]]:
    """`name;desc="...";dur=1.2, other;dur=3` -> {name: (desc, dur ms)}; malformed entries are skipped."""
    out: dict[str, tuple[str | None, float | None]] = {}
    for entry in (value or "").split(","):
        m = _ENTRY.match(entry)
        if not m:
            continue
        desc: str | None = None
        dur: float | None = None
        for param in filter(None, (p.strip() for p in m.group(2).split(";"))):
            key, _, raw = param.partition("=")
            raw = raw.strip().strip('"')
            if key == "desc":
                desc = raw
            elif key == "dur":
                try:
                    dur = float(raw)
                except ValueError:
                    dur = None
        out[m.group(1)] = (desc, dur)
    return out


def _server_ms(res: httpx.Response, metric: str) -> tuple[str | None, float]:
    entry = parse_server_timing(res.headers.get("server-timing")).get(metric)
    if entry is None or entry[1] is None:
        raise ServerTimingMissing(f"{res.request.method} {res.request.url.path} answered {res.status_code} "
                                  f"without a Server-Timing {metric!r} entry (got {res.headers.get('server-timing')!r})")
    return entry[0], entry[1]


@dataclass(frozen=True)
class PoolCreate:
    server: Summary | None     # None: no create was a pool hit (no warm pool for the template)
    client: Summary | None     # the same calls' REST round trip, as this client saw it
    hits: int
    misses: int


@dataclass(frozen=True)
class ServerResume:
    server: Summary
    client: Summary
    how: str                   # e.g. "full (freezer)", from the header


def _client(target: Target) -> httpx.Client:
    return httpx.Client(base_url=target.url, headers={"X-API-Key": target.api_key},
                        timeout=target.request_timeout_s)


def _pool_ready(http: httpx.Client, template: str) -> bool | None:
    """Whether the server's pool for `template` has a sandbox ready (None: it keeps no pool)."""
    res = http.get("/metrics")
    if res.status_code != 200:
        return None
    pattern = re.compile(rf'^corral_pool_ready\{{template="{re.escape(template)}"\}} ([0-9.e+]+)$', re.M)
    m = pattern.search(res.text)
    return None if m is None else float(m.group(1)) >= 1


def measure_pool_create(target: Target, iterations: int, tick: Tick = _noop) -> PoolCreate:
    server: list[float] = []
    client: list[float] = []
    misses = 0
    body = {"templateID": target.template, "timeout": 300, "metadata": target.metadata()}
    with _client(target) as http:
        for _ in range(iterations):
            deadline = time.monotonic() + POOL_REFILL_WAIT_S
            ready = _pool_ready(http, target.template)
            if ready is None:
                return PoolCreate(None, None, 0, 0)
            while not ready and time.monotonic() < deadline:
                time.sleep(0.05)
                ready = _pool_ready(http, target.template)
            t0 = time.perf_counter()
            res = http.post("/sandboxes", json=body)
            wall = time.perf_counter() - t0
            if res.status_code != 201:
                raise RuntimeError(f"create answered {res.status_code}: {res.text[:300]}")
            try:
                desc, ms = _server_ms(res, "create")
            finally:
                http.delete(f"/sandboxes/{res.json()['sandboxID']}")
            if desc == "warm pool":
                server.append(ms / 1000.0)
                client.append(wall)
            else:
                misses += 1
            tick()
    return PoolCreate(summarize("create from the warm pool, server-side (Server-Timing)", server) if server else None,
                      summarize("create from the warm pool, REST round trip (client)", client) if client else None,
                      len(server), misses)


def measure_resume(target: Target, mode: str, iterations: int, warmup: int = 1, tick: Tick = _noop) -> ServerResume:
    """Pause, then resume through `POST /connect`; after each resume one `commands.run('true')`
    (not timed) proves the sandbox usable before the next pause."""
    server: list[float] = []
    client: list[float] = []
    how = "?"
    sandbox = target.create()
    try:
        with _client(target) as http:
            sid = sandbox.sandbox_id
            for i in range(warmup + iterations):
                paused = http.post(f"/sandboxes/{sid}/pause", json={"memory": mode == "full"})
                if paused.status_code != 204:
                    raise RuntimeError(f"pause answered {paused.status_code}: {paused.text[:300]}")
                t0 = time.perf_counter()
                res = http.post(f"/sandboxes/{sid}/connect", json={"timeout": 300})
                wall = time.perf_counter() - t0
                if res.status_code != 201:
                    raise RuntimeError(f"resume answered {res.status_code}: {res.text[:300]}")
                how, ms = _server_ms(res, "resume")
                how = how or "?"
                sandbox = Sandbox.connect(sid, timeout=300, **target.opts())   # a running one: no resume
                run_true(sandbox)
                if i >= warmup:
                    server.append(ms / 1000.0)
                    client.append(wall)
                    tick()
    finally:
        sandbox.kill()
    return ServerResume(summarize(f"resume ({mode}), server-side (Server-Timing: {how})", server),
                        summarize(f"resume ({mode}), POST /connect round trip (client)", client), how)
