"""One benchmark run, start to finish: floor, latencies, idle density, cleanup.

The floor is measured first and in the same process, so every ratio in the report compares
numbers taken minutes apart on the same machine under the same load. Progress is reported through
a small callback interface so the CLI can draw a progress bar and tests can stay silent.
"""

from __future__ import annotations

import os

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol
from urllib.parse import urlsplit

from corral.errors import CorralError
from corral.config import DEFAULT_POOL
from corral.bench import density, floor, interpreter, latency, persistence, server_side
from corral.bench.machine import describe_machine
from corral.bench.memory import listener_pid
from corral.bench.report import FLOOR_HTTP_BARE, FLOOR_HTTP_HEALTH, FLOOR_KERNEL, FLOOR_SPAWN, BenchReport
from corral.bench.server import LocalServer
from corral.bench.stats import Summary
from corral.bench.target import Target

Tick = Callable[[], None]
TIER_NAMES = ("namespace", "gvisor")
TIER_IDLE_MAX = 10    # idle sandboxes per extra tier (a gVisor start is a second)


class BenchError(CorralError, RuntimeError):
    """A benchmark phase failed; the message says which and, for our own server, carries its log."""


class Progress(Protocol):
    def phase(self, description: str, total: int) -> Tick:
        """Announce a phase of `total` steps; the returned callable advances it by one."""


class SilentProgress:
    def phase(self, description: str, total: int) -> Tick:
        return lambda: None


@dataclass(frozen=True)
class BenchConfig:
    url: str | None = None          # None: start our own server
    api_key: str | None = None
    template: str = "base"
    iterations: int = 50
    idle: int = 50                  # 0 skips the density phase
    idle_concurrency: int = 4
    settle_s: float = 2.0
    pause_s: float = 0.0            # between lifecycle iterations (lets a warm pool refill)
    interpreter: bool = True        # code-interpreter rows (needs the code-interpreter-v1 template)
    tiers: tuple[str, ...] = ()     # more isolation tiers measured beside the server's default

    def validate(self) -> None:
        if self.iterations < 1:
            raise ValueError("--iterations must be at least 1")
        if self.idle < 0:
            raise ValueError("--idle must be 0 (skip) or more")
        if self.idle_concurrency < 1:
            raise ValueError("idle concurrency must be at least 1")
        if self.pause_s < 0:
            raise ValueError("--pause-ms must be 0 or more")
        for tier in self.tiers:
            if tier not in TIER_NAMES:
                raise ValueError(f"--tier must be one of {', '.join(TIER_NAMES)}, got {tier!r}")
        if self.url is not None and not self.api_key:
            raise ValueError("--url needs --api-key (or $E2B_API_KEY)")
        if self.url is not None and urlsplit(self.url).scheme not in ("http", "https"):
            raise ValueError(f"--url must be an http(s) URL, got {self.url!r}")


def run_benchmark(config: BenchConfig, progress: Progress | None = None) -> BenchReport:
    config.validate()
    progress = progress or SilentProgress()
    if config.url is None:
        pool = os.environ.get("CORRAL_POOL", own_pool(config))
        with LocalServer(extra_env={"CORRAL_POOL": pool}) as server:
            target = Target(server.url, server.api_key, config.template)
            try:
                pool = pool or "off"
                label = f"own server (temp data dir, loopback, warm pool: {pool})"
                if config.pause_s:
                    label += f", {config.pause_s * 1000:.0f} ms between creates"
                return _run(config, target, server.pid, label, progress, True)
            except Exception as exc:
                # The temp dir (and the log in it) is about to go; the log is what explains a failure.
                raise BenchError(f"{exc.__class__.__name__}: {exc}\n--- server log (tail) ---\n"
                                 f"{server.log_tail(3000)}") from exc
            finally:
                _sweep(target)
    url = config.url.rstrip("/")
    port = urlsplit(url).port
    host = urlsplit(url).hostname or ""
    local = host in ("127.0.0.1", "localhost", "::1")
    server_pid = listener_pid(port) if local and port is not None else None
    assert config.api_key is not None
    return _run(config, Target(url, config.api_key, config.template), server_pid, url, progress, local)


def _run(config: BenchConfig, target: Target, server_pid: int | None, label: str, progress: Progress,
         same_host: bool) -> BenchReport:
    n = config.iterations
    report = BenchReport(target=label, machine=describe_machine(), iterations=n, idle_requested=config.idle)
    report.server_pid, report.same_host = server_pid, same_host

    report.floors[FLOOR_SPAWN] = floor.measure_spawn(n, tick=progress.phase("floor: fork+exec /bin/true", n))
    with floor.BareHttpServer() as bare:
        report.floors[FLOOR_HTTP_BARE] = floor.measure_http(
            "floor: HTTP GET, bare asyncio+h11", bare.url, n, tick=progress.phase("floor: bare HTTP", n))
    report.floors[FLOOR_HTTP_HEALTH] = floor.measure_http(
        "floor: HTTP GET corral /health", target.url + "/health", n, tick=progress.phase("floor: corral /health", n))

    life = latency.measure_lifecycle(target, n, tick=progress.phase("create -> first command -> kill", n),
                                     pause_s=config.pause_s)
    report.results["create"] = life.create
    report.results["create_to_first_command"] = life.create_to_first_command
    report.results["first_command"] = life.first_command
    report.results["command"] = latency.measure_command(target, n, tick=progress.phase("commands.run('true')", n))
    report.results["kill"] = life.kill
    pooled = server_side.measure_pool_create(target, n, tick=progress.phase("warm-pool create, server-side", n))
    if pooled.server is not None and pooled.client is not None:
        report.results["pool_create_server"] = pooled.server
        report.results["pool_create_client"] = pooled.client
    report.pool_hits, report.pool_misses = pooled.hits, pooled.misses
    for mode in ("full", "filesystem"):
        paused = persistence.measure_pause_resume(target, mode, n, tick=progress.phase(f"pause/resume ({mode})", n))
        report.results[f"pause_{mode}"] = paused.pause
        report.results[f"resume_{mode}_call"] = paused.resume_call
        report.results[f"resume_{mode}"] = paused.resume_to_command
        server = server_side.measure_resume(target, mode, n, tick=progress.phase(f"resume ({mode}), server-side", n))
        report.results[f"resume_{mode}_server"] = server.server
        report.results[f"resume_{mode}_rest"] = server.client
    few = max(1, min(n, 5))
    report.results["snapshot"] = persistence.measure_snapshot(target, few, tick=progress.phase("snapshot", few))
    report.results["fork_10"] = persistence.measure_fork(target, 10, few, tick=progress.phase("fork of 10", few))

    if config.interpreter:
        report.floors[FLOOR_KERNEL] = interpreter.measure_direct_kernel(
            n, tick=progress.phase("floor: direct jupyter_client 1+1", n))
        report.results["run_code"] = interpreter.measure_run_code(target, n, tick=progress.phase("run_code('1+1')", n))
        first_n = max(3, n // 5)
        report.results["first_run_code"] = interpreter.measure_first_run_code(
            target, first_n, pause_s=max(config.pause_s, 1.0), tick=progress.phase("create -> first run_code", first_n))

    for tier in config.tiers:
        _tier_rows(config, replace(target, isolation=tier), report, progress)

    if config.idle:
        report.idle = density.measure_idle(
            target, config.idle, server_pid=server_pid, same_host=same_host, concurrency=config.idle_concurrency,
            settle_s=config.settle_s,
            tick=progress.phase(f"start {config.idle} idle sandboxes", config.idle),
            kill_tick=progress.phase(f"kill {config.idle} idle sandboxes", config.idle),
        )
    return report


def own_pool(config: BenchConfig) -> str:
    """Our own server's warm pools: the default ones plus, per extra tier, one sandbox of the
    benchmark's template on that tier (`base@gvisor=1`), which is what a deployment that serves
    gVisor creates runs with: a cold gVisor start is a second (measured too, as "cold")."""
    extra = [f"{config.template}@{tier}=1" for tier in config.tiers]
    return ",".join(p for p in (DEFAULT_POOL, *extra) if p)


COLD_MEMORY_MB = 500   # a request no pooled sandbox (template limits, 512 MB) fits: a cold start


def _tier_rows(config: BenchConfig, target: Target, report: BenchReport, progress: Progress) -> None:
    """The rows that tell tiers apart, for sandboxes that ask for ``target.isolation``, keyed
    ``<tier>:<row>`` and named "... [<tier>]", beside the default tier's rows of the same run.

    create -> first command is measured twice: from the tier's warm pool (`<template>@<tier>`;
    each create waits, untimed, until the pool has refilled, as an agent that creates sandboxes
    less often than once per cold start sees it), and cold (a 500 MB sandbox, which no pooled
    sandbox fits, so every create boots a new Sentry)."""
    tier, n = target.isolation, config.iterations

    def put(key: str, summary: Summary) -> None:
        report.results[f"{tier}:{key}"] = replace(summary, name=f"{summary.name} [{tier}]")

    pool = f"{target.template}@{tier}"
    if target.pool_target(pool) and target.wait_pool(pool, 120):
        life = latency.measure_lifecycle(target, n, tick=progress.phase(f"[{tier}] create (pool) -> first command", n),
                                         pause_s=config.pause_s, before=lambda: target.wait_pool(pool, 120))
        put("create", replace(life.create, name=f"{life.create.name} from the warm pool"))
        put("create_to_first_command", replace(life.create_to_first_command,
                                               name=f"{life.create_to_first_command.name}, warm pool"))
    cold = latency.measure_lifecycle(replace(target, memory_mb=COLD_MEMORY_MB), n,
                                     tick=progress.phase(f"[{tier}] cold create -> first command", n),
                                     pause_s=config.pause_s)
    put("create_cold", replace(cold.create, name=f"{cold.create.name}, cold"))
    put("create_to_first_command_cold", replace(cold.create_to_first_command,
                                                name=f"{cold.create_to_first_command.name}, cold"))
    put("command", latency.measure_command(target, n, tick=progress.phase(f"[{tier}] commands.run('true')", n)))
    paused = persistence.measure_pause_resume(target, "full", n, tick=progress.phase(f"[{tier}] pause/resume", n))
    put("pause_full", paused.pause)
    put("resume_full_call", paused.resume_call)
    put("resume_full", paused.resume_to_command)
    put("resume_full_server", server_side.measure_resume(
        target, "full", n, tick=progress.phase(f"[{tier}] resume, server-side", n)).server)
    if config.interpreter:
        put("run_code", interpreter.measure_run_code(target, n, tick=progress.phase(f"[{tier}] run_code('1+1')", n)))
    if config.idle:
        count = min(config.idle, TIER_IDLE_MAX)
        report.tier_idle[tier] = density.measure_idle(
            replace(target, memory_mb=COLD_MEMORY_MB), count, server_pid=report.server_pid,
            same_host=report.same_host, concurrency=min(config.idle_concurrency, 2), settle_s=config.settle_s,
            tick=progress.phase(f"[{tier}] start {count} idle sandboxes", count),
            kill_tick=progress.phase(f"[{tier}] kill {count} idle sandboxes", count))


def _sweep(target: Target) -> None:
    """On our own server every sandbox is ours: kill whatever an interrupted phase left behind,
    so stopping the server never leaves a live sandbox under a data dir about to be deleted."""
    try:
        ids = target.list_ids()
    except Exception:  # noqa: BLE001 - the server may be the thing that failed
        return
    for sid in ids:
        try:
            target.kill(sid)
        except Exception:  # noqa: BLE001 - LocalServer.stop() reports what survives
            pass
