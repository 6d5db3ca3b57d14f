"""Latency through the official SDK: what a user waits for, measured on the client side.

`create -> first command` is timed from the call to `Sandbox.create` to the return of the first
`commands.run('true')`, because a sandbox that exists but cannot run anything yet is of no use;
it is the figure E2B (440 ms) and CubeSandbox (48 ms) publish. The first iteration of each
measurement is a warm-up and is not counted: it pays for imports, connection set-up and the first
read of the template from disk, which every later sandbox finds in the page cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from corral.bench.stats import Summary, summarize
from corral.bench.target import Target, run_true

Tick = Callable[[], None]


def _noop() -> None:
    return None


@dataclass(frozen=True)
class LifecycleLatency:
    create: Summary
    create_to_first_command: Summary
    first_command: Summary     # the first run in a fresh sandbox: connection set-up, cold envd
    kill: Summary


def measure_lifecycle(target: Target, iterations: int, warmup: int = 1, tick: Tick = _noop,
                      pause_s: float = 0.0, before: Callable[[], object] | None = None) -> LifecycleLatency:
    """Create, run `true`, kill; one sandbox at a time so the numbers are not queueing delays.

    `pause_s` waits between iterations (outside the timed part), the way agents create sandboxes
    now and then rather than back to back; it gives a server's warm pool time to refill.
    `before` runs before each create, untimed (waiting until a warm pool is ready)."""
    create_s: list[float] = []
    first_s: list[float] = []
    only_first_s: list[float] = []
    kill_s: list[float] = []
    for i in range(warmup + iterations):
        if pause_s and i:
            time.sleep(pause_s)
        if before is not None:
            before()
        t0 = time.perf_counter()
        sandbox = target.create()
        try:
            t1 = time.perf_counter()
            run_true(sandbox)
            t2 = time.perf_counter()
        finally:
            t3 = time.perf_counter()
            killed = sandbox.kill()
            t4 = time.perf_counter()
        if not killed:
            raise RuntimeError(f"kill of sandbox {sandbox.sandbox_id} reported it was already gone")
        if i >= warmup:
            create_s.append(t1 - t0)
            first_s.append(t2 - t0)
            only_first_s.append(t2 - t1)
            kill_s.append(t4 - t3)
            tick()
    return LifecycleLatency(
        create=summarize("Sandbox.create()", create_s),
        create_to_first_command=summarize("create -> first commands.run('true')", first_s),
        first_command=summarize("first commands.run('true') after create", only_first_s),
        kill=summarize("sandbox.kill()", kill_s),
    )


def measure_command(target: Target, iterations: int, warmup: int = 3, tick: Tick = _noop) -> Summary:
    """commands.run('true') round trips on one sandbox: the per-command cost of the whole path
    (SDK, server proxy, envd, fork+exec inside the sandbox, exit status streamed back)."""
    samples: list[float] = []
    sandbox = target.create()
    try:
        for _ in range(warmup):
            run_true(sandbox)
        for _ in range(iterations):
            start = time.perf_counter()
            run_true(sandbox)
            samples.append(time.perf_counter() - start)
            tick()
    finally:
        sandbox.kill()
    return summarize("commands.run('true')", samples)
