import json

import pytest
from rich.console import Console

from corral.bench.density import IdleResult
from corral.bench.machine import describe_machine
from corral.bench.report import FLOOR_HTTP_BARE, FLOOR_HTTP_HEALTH, FLOOR_SPAWN, BenchReport, render_console, render_markdown
from corral.bench.stats import summarize


def _report(create_ms: float, command_ms: float, idle_mb: float | None) -> BenchReport:
    r = BenchReport(target="test", machine=describe_machine(), iterations=2, idle_requested=2)
    r.floors[FLOOR_SPAWN] = summarize("floor: spawn", [0.001, 0.001])
    r.floors[FLOOR_HTTP_BARE] = summarize("floor: bare", [0.0005, 0.0005])
    r.floors[FLOOR_HTTP_HEALTH] = summarize("floor: health", [0.0007, 0.0007])
    r.results["create_to_first_command"] = summarize("create -> first", [create_ms / 1000] * 2)
    r.results["command"] = summarize("run", [command_ms / 1000] * 2)
    if idle_mb is not None:
        r.idle = IdleResult(sandboxes=2, create_wall_s=0.5, mem_available_delta_mb_per_sandbox=idle_mb,
                            alive_at_measurement=2, cgroup_mb_per_sandbox=idle_mb - 1.0,
                            server_overhead_mb_per_sandbox=0.5, kernel_mb_per_sandbox=0.5)
    return r


def test_floor_is_spawn_plus_bare_http_and_ratios_use_it() -> None:
    r = _report(30.0, 6.0, 5.0)
    assert r.floor_ms == pytest.approx(1.5)
    assert r.ratio(r.results["command"]) == pytest.approx(4.0)


def test_checks_pass_at_the_limit_and_fail_above_it() -> None:
    met = {c.name: c.met for c in _report(50.0, 10.0, 10.0).checks()}
    # the server-side targets are always listed, "not measured" until a run measures them
    assert met == {"create -> first command": True, "commands.run('true')": True,
                   "create from a warm pool": None, "resume (filesystem)": None, "resume (full, freezer)": None,
                   "idle sandbox host memory (accounted)": True, "idle sandbox host memory (MemAvailable)": True}
    missed = {c.name: c.met for c in _report(50.1, 10.1, 10.1).checks()}
    assert set(missed.values()) == {False, None}


def test_resume_and_pool_targets_are_judged_on_the_server_side_figure_and_say_so() -> None:
    r = _report(50.0, 10.0, 10.0)
    r.results["pool_create_server"] = summarize("create from the warm pool, server-side (Server-Timing)", [0.004] * 2)
    r.results["resume_full_server"] = summarize("resume (full), server-side (Server-Timing: full (freezer))", [0.003] * 2)
    r.results["resume_full"] = summarize("resume (full) -> first commands.run('true')", [0.040] * 2)
    r.results["resume_filesystem_server"] = summarize("resume (filesystem), server-side", [0.151] * 2)
    checks = {c.name: c for c in r.checks()}
    assert checks["create from a warm pool"].met is True and "Server-Timing" in checks["create from a warm pool"].figure
    assert checks["resume (full, freezer)"].met is True and checks["resume (full, freezer)"].measured == pytest.approx(3.0)
    assert checks["resume (filesystem)"].met is False
    # the client-side figure stays in the table, named as a reference, with its own verdict
    reference = checks["resume (full, freezer) -> first command, client (reference)"]
    assert reference.met is False and reference.figure.startswith("resume (full) -> first")
    md = render_markdown(r, "corral bench")
    assert "| create from a warm pool | p50 <= 5 ms | 4.00 ms | met | create from the warm pool, server-side" in md


def test_idle_memory_is_missed_when_sandboxes_died_before_measurement() -> None:
    r = _report(1.0, 1.0, 2.0)
    assert r.idle is not None
    r.idle.alive_at_measurement = 1
    idle = [c for c in r.checks() if c.name.startswith("idle sandbox host memory")]
    assert len(idle) == 2 and all(c.met is False and "all alive" in c.target for c in idle)


def test_unmeasured_targets_are_not_reported_as_met() -> None:
    r = _report(1.0, 1.0, None)
    idle = [c for c in r.checks() if c.name.startswith("idle sandbox host memory")]
    assert len(idle) == 2 and all(c.met is None and c.verdict() == "not measured" for c in idle)


def test_without_a_floor_there_is_no_ratio() -> None:
    r = _report(1.0, 1.0, None)
    del r.floors[FLOOR_HTTP_BARE]
    assert r.floor_ms is None and r.ratio(r.results["command"]) is None


def test_json_round_trips_with_every_section() -> None:
    data = json.loads(_report(70.0, 12.0, 8.0).to_json())
    assert set(data) >= {"target", "machine", "floor_ms", "floors", "results", "idle", "checks"}
    assert data["results"]["command"]["ratio_to_floor"] == pytest.approx(8.0)
    assert data["machine"]["nproc"] >= 1
    assert [c["met"] for c in data["checks"]] == [False, False, None, None, None, True, True]
    assert data["idle"]["accounted_mb_per_sandbox"] == pytest.approx(8.0)


def test_markdown_has_command_machine_and_tables() -> None:
    md = render_markdown(_report(70.0, 12.0, 8.0), "corral bench -n 2")
    assert "`corral bench -n 2`" in md and "nproc" in md and "kernel" in md
    assert "| measurement | p50 ms | p95 ms | mean ms | n | p50 / floor |" in md
    assert "| create -> first command | p50 <= 50 ms | 70.00 ms | MISSED |" in md
    assert "| idle density | value |" in md


def test_console_rendering_shows_misses() -> None:
    console = Console(record=True, width=200)
    render_console(_report(70.0, 12.0, 8.0), console)
    text = console.export_text()
    assert "MISSED" in text and "idle density" in text and "p50 / floor" in text


def test_accounted_memory_adds_cgroup_and_shares_but_never_subtracts_noise() -> None:
    idle = IdleResult(sandboxes=1, create_wall_s=0.1, mem_available_delta_mb_per_sandbox=1.0,
                      cgroup_mb_per_sandbox=6.0, server_overhead_mb_per_sandbox=-3.0, kernel_mb_per_sandbox=0.5)
    assert idle.accounted_mb_per_sandbox == pytest.approx(6.5)
    idle.cgroup_mb_per_sandbox = None
    assert idle.accounted_mb_per_sandbox is None
