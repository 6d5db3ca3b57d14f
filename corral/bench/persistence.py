"""Pause, resume, snapshot and fork through the official SDK, client side.

Resume is timed to the first command that succeeds afterwards (`Sandbox.connect` then
`commands.run('true')`), because a resumed sandbox that cannot run anything yet is of no use; in
filesystem mode that includes booting a fresh envd from the kept layer. Fork of N is timed from
the call to the return of the last fork's sandbox (each already answers). The floor for these is
the same run's fork+exec and create figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from e2b import Sandbox

from corral.bench.stats import Summary, summarize
from corral.bench.target import Target, run_true

Tick = Callable[[], None]


def _noop() -> None:
    return None


@dataclass(frozen=True)
class PauseLatency:
    pause: Summary
    resume_to_command: Summary
    resume_call: Summary       # Sandbox.connect() alone: the resume as the SDK's caller waits for it


def measure_pause_resume(target: Target, mode: str, iterations: int, warmup: int = 1,
                         tick: Tick = _noop) -> PauseLatency:
    pause_s: list[float] = []
    resume_s: list[float] = []
    call_s: list[float] = []
    sandbox = target.create()
    try:
        for i in range(warmup + iterations):
            t0 = time.perf_counter()
            sandbox.pause(mode=mode)   # type: ignore[arg-type]
            t1 = time.perf_counter()
            sandbox = Sandbox.connect(sandbox.sandbox_id, timeout=300, **target.opts())
            t_connected = time.perf_counter()
            run_true(sandbox)
            t2 = time.perf_counter()
            if i >= warmup:
                pause_s.append(t1 - t0)
                resume_s.append(t2 - t1)
                call_s.append(t_connected - t1)
                tick()
    finally:
        sandbox.kill()
    return PauseLatency(summarize(f"pause(mode={mode})", pause_s),
                        summarize(f"resume ({mode}) -> first commands.run('true')", resume_s),
                        summarize(f"resume ({mode}): Sandbox.connect() call", call_s))


def measure_snapshot(target: Target, iterations: int, tick: Tick = _noop) -> Summary:
    samples: list[float] = []
    sandbox = target.create()
    try:
        sandbox.commands.run("head -c 8388608 /dev/urandom > /tmp/bench-blob")
        for _ in range(iterations):
            t0 = time.perf_counter()
            snap = sandbox.create_snapshot(mode="filesystem")
            samples.append(time.perf_counter() - t0)
            Sandbox.delete_snapshot(snap.snapshot_id, **target.opts())
            tick()
    finally:
        sandbox.kill()
    return summarize("create_snapshot(mode=filesystem), 8 MB written", samples)


def measure_fork(target: Target, count: int, iterations: int, tick: Tick = _noop) -> Summary:
    samples: list[float] = []
    sandbox = target.create()
    try:
        for _ in range(iterations):
            t0 = time.perf_counter()
            forks = sandbox.fork(count=count, timeout=120)
            samples.append(time.perf_counter() - t0)
            for f in forks:
                if isinstance(f, Sandbox):
                    f.kill()
            failed = [f for f in forks if not isinstance(f, Sandbox)]
            if failed:
                raise RuntimeError(f"{len(failed)} of {count} forks failed: {failed[0]}")
            tick()
    finally:
        sandbox.kill()
    return summarize(f"fork(count={count})", samples)
