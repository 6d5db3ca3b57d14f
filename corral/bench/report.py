"""A benchmark result and its three renderings: a terminal table, JSON, and a Markdown section.

Every latency row carries its ratio to the floor measured in the same run, the sum of one
fork+exec of /bin/true and one bare loopback HTTP round trip: the least any remote command could
cost on this machine. Ratios move far less between machines and noisy runs than milliseconds do.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from rich.console import Console
from rich.table import Table

from corral.bench.density import IdleResult
from corral.bench.machine import Machine
from corral.bench.stats import Summary

# Targets from the product brief for a 2-core machine.
TARGET_CREATE_TO_FIRST_P50_MS = 50.0
TARGET_COMMAND_P50_MS = 10.0
TARGET_IDLE_MB = 10.0
TARGET_RUN_CODE_P50_MS = 5.0
TARGET_RUN_CODE_RATIO = 3.0
TARGET_FIRST_RUN_CODE_MS = 200.0
TARGET_RESUME_FILESYSTEM_P50_MS = 150.0
TARGET_RESUME_FULL_P50_MS = 10.0
TARGET_FORK_10_MS = 1000.0
TARGET_POOL_CREATE_SERVER_MS = 5.0
# The gVisor tier's (issue 11), for its rows keyed "gvisor:...".
TARGET_GVISOR_CREATE_TO_FIRST_P50_MS = 250.0
TARGET_GVISOR_RESUME_FULL_P50_MS = 300.0
TARGET_GVISOR_IDLE_MB = 40.0

FLOOR_SPAWN = "spawn"
FLOOR_HTTP_HEALTH = "http_health"
FLOOR_HTTP_BARE = "http_bare"
FLOOR_KERNEL = "kernel_direct"   # run_code's own floor: the same cell on a kernel driven directly


@dataclass(frozen=True)
class Check:
    name: str
    target: str
    measured: float | None
    unit: str
    met: bool | None   # None: not measured in this run
    figure: str = ""   # which measurement the verdict is on (the latency table's row)

    def verdict(self) -> str:
        return {True: "met", False: "MISSED", None: "not measured"}[self.met]


@dataclass
class BenchReport:
    target: str
    machine: Machine
    iterations: int
    idle_requested: int
    floors: dict[str, Summary] = field(default_factory=dict)
    results: dict[str, Summary] = field(default_factory=dict)
    idle: IdleResult | None = None
    pool_hits: int = 0        # of the warm-pool create phase's creates, those the pool served
    pool_misses: int = 0
    tier_idle: dict[str, IdleResult] = field(default_factory=dict)   # idle fleets of extra tiers
    server_pid: int | None = field(default=None, repr=False, compare=False)
    same_host: bool = field(default=True, repr=False, compare=False)

    @property
    def floor_ms(self) -> float | None:
        spawn = self.floors.get(FLOOR_SPAWN)
        http = self.floors.get(FLOOR_HTTP_BARE)
        if spawn is None or http is None:
            return None
        return spawn.p50_ms + http.p50_ms

    def ratio(self, summary: Summary) -> float | None:
        """p50 over the floor; run_code rows are compared with the direct kernel round trip."""
        kernel = self.floors.get(FLOOR_KERNEL)
        if summary.name.startswith("run_code") and kernel is not None:
            return summary.p50_ms / kernel.p50_ms if kernel.p50_ms else None
        floor = self.floor_ms
        return summary.p50_ms / floor if floor else None

    def checks(self) -> list[Check]:
        def p50(key: str) -> float | None:
            s = self.results.get(key)
            return s.p50_ms if s else None

        def check(name: str, limit: float, value: float | None, unit: str, label: str, figure: str = "") -> Check:
            return Check(name, f"{label} <= {limit:g} {unit}", value, unit, None if value is None else value <= limit,
                         figure)

        def row(key: str, fallback: str) -> str:
            s = self.results.get(key)
            return s.name if s else fallback

        idle_checks = [
            check("idle sandbox host memory (accounted)", TARGET_IDLE_MB,
                  self.idle.accounted_mb_per_sandbox if self.idle else None, "MB",
                  "cgroup + server growth + kernel growth per sandbox"),
            check("idle sandbox host memory (MemAvailable)", TARGET_IDLE_MB,
                  self.idle.mem_available_delta_mb_per_sandbox if self.idle else None, "MB",
                  "MemAvailable drop per sandbox"),
        ]
        if self.idle is not None and self.idle.alive_at_measurement != self.idle.sandboxes:
            # sandboxes that died before the measurement make any per-sandbox figure a lie
            idle_checks = [Check(c.name, c.target + " (all alive)", c.measured, c.unit, False) for c in idle_checks]
        interp: list[Check] = []
        if "run_code" in self.results:
            kernel = self.floors.get(FLOOR_KERNEL)
            interp = [
                check("run_code('1+1')", TARGET_RUN_CODE_P50_MS, p50("run_code"), "ms", "p50"),
                check("run_code('1+1') vs direct kernel", TARGET_RUN_CODE_RATIO,
                      p50("run_code") / kernel.p50_ms if kernel and p50("run_code") else None, "x",
                      "p50 ratio to direct jupyter_client"),
                check("create -> first run_code", TARGET_FIRST_RUN_CODE_MS, p50("first_run_code"), "ms", "p50"),
            ]
        # The figures: a resume is the server resuming the sandbox, a warm-pool create the
        # server's time for a pool hit (both from Server-Timing); the client-side rows (SDK call,
        # then the first command) stay beside them, judged against the same limit for reference.
        persist = [
            check(name, limit, p50(key), "ms", "p50", row(key, figure))
            for key, name, limit, figure in (
                ("pool_create_server", "create from a warm pool", TARGET_POOL_CREATE_SERVER_MS,
                 "server-side: Server-Timing of POST /sandboxes, pool hits"),
                ("resume_filesystem_server", "resume (filesystem)", TARGET_RESUME_FILESYSTEM_P50_MS,
                 "server-side: Server-Timing of POST /connect"),
                ("resume_full_server", "resume (full, freezer)", TARGET_RESUME_FULL_P50_MS,
                 "server-side: Server-Timing of POST /connect"),
                ("fork_10", "fork of 10", TARGET_FORK_10_MS, "client: SDK fork(count=10)"),
                ("resume_filesystem", "resume (filesystem) -> first command, client (reference)",
                 TARGET_RESUME_FILESYSTEM_P50_MS, "client: SDK connect + commands.run"),
                ("resume_full", "resume (full, freezer) -> first command, client (reference)",
                 TARGET_RESUME_FULL_P50_MS, "client: SDK connect + commands.run"),
            )
            if key in self.results or key in ("pool_create_server", "resume_filesystem_server", "resume_full_server")
        ]
        # create -> first command on gVisor: from its warm pool when the server has one (and cold
        # beside it), else cold only
        pooled = "gvisor:create_to_first_command" in self.results
        gv_rows = [("gvisor:create_to_first_command", "create -> first command [gvisor]", " (warm pool)"),
                   ("gvisor:create_to_first_command_cold",
                    "create -> first command [gvisor, cold]" if pooled else "create -> first command [gvisor]",
                    " (cold)"),
                   ("gvisor:resume_full_server", "resume (full, memory checkpoint) [gvisor]", " (server-side)"),
                   ("gvisor:resume_full", "resume (full, memory checkpoint) -> first command [gvisor]", "")]
        gvisor = [
            check(name, TARGET_GVISOR_RESUME_FULL_P50_MS if "resume_full" in key
                  else TARGET_GVISOR_CREATE_TO_FIRST_P50_MS, p50(key), "ms", "p50" + suffix,
                  row(key, "client: SDK"))
            for key, name, suffix in gv_rows if key in self.results
        ]
        gv_idle = self.tier_idle.get("gvisor")
        if gv_idle is not None:
            gvisor.append(check("idle sandbox host memory (accounted) [gvisor]", TARGET_GVISOR_IDLE_MB,
                                gv_idle.accounted_mb_per_sandbox, "MB",
                                "cgroup + server growth + kernel growth per sandbox", "idle density [gvisor]"))
        return [
            check("create -> first command", TARGET_CREATE_TO_FIRST_P50_MS, p50("create_to_first_command"), "ms", "p50",
                  row("create_to_first_command", "client: SDK")),
            check("commands.run('true')", TARGET_COMMAND_P50_MS, p50("command"), "ms", "p50", row("command", "client: SDK")),
            *interp,
            *persist,
            *gvisor,
            *idle_checks,
        ]

    def to_dict(self) -> dict[str, object]:
        return {
            "target": self.target,
            "machine": self.machine.to_dict(),
            "iterations": self.iterations,
            "idle_requested": self.idle_requested,
            "floor_ms": self.floor_ms,
            "floors": {k: v.to_dict() for k, v in self.floors.items()},
            "results": {k: {**v.to_dict(), "ratio_to_floor": self.ratio(v)} for k, v in self.results.items()},
            "idle": self.idle.to_dict() if self.idle else None,
            "tier_idle": {k: v.to_dict() for k, v in self.tier_idle.items()},
            "checks": [asdict(c) for c in self.checks()],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _rows(report: BenchReport) -> list[tuple[str, str, str, str, str, str]]:
    rows = []
    for summary in [*report.floors.values(), *report.results.values()]:
        ratio = report.ratio(summary)
        rows.append((summary.name, _fmt(summary.p50_ms), _fmt(summary.p95_ms), _fmt(summary.mean_ms),
                     str(summary.n), "-" if ratio is None else f"{ratio:.1f}x"))
    return rows


def _idle_rows(idle: IdleResult) -> list[tuple[str, str]]:
    return [
        ("idle sandboxes (alive when measured)", f"{idle.sandboxes} ({'-' if idle.alive_at_measurement is None else idle.alive_at_measurement})"),
        ("fleet start wall time", f"{idle.create_wall_s:.1f} s"),
        ("accounted per sandbox (cgroup + server + kernel growth)", f"{_fmt(idle.accounted_mb_per_sandbox)} MB"),
        ("MemAvailable drop per sandbox", f"{_fmt(idle.mem_available_delta_mb_per_sandbox)} MB"),
        ("cgroup memory per sandbox (with page cache)", f"{_fmt(idle.cgroup_mb_per_sandbox)} MB"),
        ("cgroup memory per sandbox (without cache)", f"{_fmt(idle.cgroup_no_cache_mb_per_sandbox)} MB"),
        ("USS of sandbox processes per sandbox", f"{_fmt(idle.uss_mb_per_sandbox)} MB"),
        ("server-side growth per sandbox (outside sandboxes)", f"{_fmt(idle.server_overhead_mb_per_sandbox)} MB"),
        ("kernel memory growth per sandbox (slab, page tables, stacks)", f"{_fmt(idle.kernel_mb_per_sandbox)} MB"),
        ("processes across all idle sandboxes", "-" if idle.sandbox_processes is None else str(idle.sandbox_processes)),
        ("killed at the end", f"{idle.killed} of {idle.sandboxes}"),
        ("kill failures / leftover cgroups", f"{len(idle.kill_failures)} / {len(idle.leftover_cgroups)}"),
        ("MemAvailable after kill vs before start", f"{_fmt(idle.mem_recovered_mb, 1)} MB"),
        ("server process tree USS after kill vs before start", f"{_fmt(idle.server_retained_mb, 1)} MB"),
    ]


def render_console(report: BenchReport, console: Console) -> None:
    floor = report.floor_ms
    table = Table(title=f"corral bench: {report.target}",
                  caption=f"floor = fork+exec p50 + bare HTTP p50 = {_fmt(floor)} ms; {report.machine.one_line()}")
    for col in ("measurement", "p50 ms", "p95 ms", "mean ms", "n", "p50 / floor"):
        table.add_column(col, justify="left" if col == "measurement" else "right")
    for row in _rows(report):
        table.add_row(*row)
    console.print(table)
    if report.idle is not None:
        idle = Table(title="idle density")
        idle.add_column("measurement")
        idle.add_column("value", justify="right")
        for name, value in _idle_rows(report.idle):
            idle.add_row(name, value)
        console.print(idle)
        for note in report.idle.notes:
            console.print(f"  note: {note}")
        for failure in report.idle.kill_failures[:10]:
            console.print(f"  [red]kill failure[/red]: {failure}")
    for tier, result in report.tier_idle.items():
        idle = Table(title=f"idle density [{tier}]")
        idle.add_column("measurement")
        idle.add_column("value", justify="right")
        for name, value in _idle_rows(result):
            idle.add_row(name, value)
        console.print(idle)
    targets = Table(title="targets")
    for col in ("check", "target", "measured", "verdict", "judged on"):
        targets.add_column(col)
    for c in report.checks():
        style = {True: "green", False: "red", None: "yellow"}[c.met]
        targets.add_row(c.name, c.target, f"{_fmt(c.measured)} {c.unit}", f"[{style}]{c.verdict()}[/{style}]", c.figure)
    console.print(targets)
    if report.pool_hits or report.pool_misses:
        console.print(f"  warm-pool create phase: {report.pool_hits} pool hits, {report.pool_misses} misses (not counted)")


def render_markdown(report: BenchReport, command: str) -> str:
    """A self-contained section for docs/BENCHMARKS.md: command, machine, tables, verdicts."""
    m = report.machine
    lines = [
        f"## {m.date_utc}: {report.target}",
        "",
        f"- command: `{command}`",
        f"- machine: nproc {m.nproc}, memory {m.mem_total_gib:.1f} GiB, kernel {m.kernel}, "
        f"cgroups {m.cgroups}, Python {m.python}, e2b SDK {m.e2b_sdk}",
        f"- floor (fork+exec p50 + bare HTTP p50): {_fmt(report.floor_ms)} ms",
        "",
        "| measurement | p50 ms | p95 ms | mean ms | n | p50 / floor |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {' | '.join(row)} |" for row in _rows(report)]
    if report.idle is not None:
        lines += ["", "| idle density | value |", "|---|---:|"]
        lines += [f"| {name} | {value} |" for name, value in _idle_rows(report.idle)]
        lines += ["", *[f"- note: {note}" for note in report.idle.notes]]
    for tier, result in report.tier_idle.items():
        lines += ["", f"| idle density [{tier}] | value |", "|---|---:|"]
        lines += [f"| {name} | {value} |" for name, value in _idle_rows(result)]
    lines += ["", "| target | goal | measured | verdict | judged on |", "|---|---|---:|---|---|"]
    lines += [f"| {c.name} | {c.target} | {_fmt(c.measured)} {c.unit} | {c.verdict()} | {c.figure} |"
              for c in report.checks()]
    if report.pool_hits or report.pool_misses:
        lines += ["", f"- warm-pool create phase: {report.pool_hits} pool hits, {report.pool_misses} misses "
                      "(misses are not counted in the server-side row)"]
    return "\n".join(lines) + "\n"
