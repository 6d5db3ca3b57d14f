"""The whole benchmark with tiny N against real servers: checks the shape of the result, never speed."""

import glob
import json
import os
import tempfile

import pytest
import typer
from typer.testing import CliRunner

from corral.bench import BenchConfig, render_markdown, run_benchmark
from corral.bench.target import Target
from corral.cli.bench import bench

pytestmark = [pytest.mark.e2e, pytest.mark.root]


def test_bench_against_a_running_server_measures_everything_and_leaves_nothing(server) -> None:  # type: ignore[no-untyped-def]
    target = Target(server.url, server.api_key)
    before = set(target.list_ids())
    phases: list[tuple[str, int]] = []
    ticks: list[str] = []

    class Recorder:
        def phase(self, description: str, total: int):  # type: ignore[no-untyped-def]
            phases.append((description, total))
            return lambda: ticks.append(description)

    report = run_benchmark(BenchConfig(url=server.url, api_key=server.api_key, iterations=2, idle=2, settle_s=0),
                           Recorder())

    assert set(report.floors) == {"spawn", "http_bare", "http_health", "kernel_direct"}
    assert set(report.results) == {"create", "create_to_first_command", "first_command", "command", "kill",
                                   "pause_full", "resume_full", "pause_filesystem", "resume_filesystem",
                                   "resume_full_call", "resume_filesystem_call", "resume_full_server",
                                   "resume_filesystem_server", "resume_full_rest", "resume_filesystem_rest",
                                   "snapshot", "fork_10", "run_code", "first_run_code", "pool_create_server",
                                   "pool_create_client"}
    assert report.pool_hits >= 1   # the session server keeps a warm pool of base
    assert "freezer" in report.results["resume_full_server"].name
    assert "layer" in report.results["resume_filesystem_server"].name
    # the server's own time is within the client's round trip of the same calls
    for mode in ("full", "filesystem"):
        assert report.results[f"resume_{mode}_server"].max_ms <= report.results[f"resume_{mode}_rest"].max_ms
    assert report.results["first_run_code"].n == 3  # at least 3 samples, whatever N
    assert all(s.n == 2 for k, s in [*report.floors.items(), *report.results.items()]
               if k != "first_run_code" and not k.startswith("pool_"))
    assert report.results["pool_create_server"].n == report.pool_hits and report.pool_hits + report.pool_misses == 2
    # run_code is compared with the direct kernel round trip, not the process + HTTP floor
    assert report.ratio(report.results["run_code"]) == pytest.approx(
        report.results["run_code"].p50_ms / report.floors["kernel_direct"].p50_ms)
    assert report.floor_ms is not None and report.floor_ms > 0
    create = report.results["create"]
    assert report.results["create_to_first_command"].min_ms >= create.min_ms
    idle = report.idle
    assert idle is not None and idle.sandboxes == 2 and idle.alive_at_measurement == 2
    assert idle.killed == 2 and idle.kill_failures == [] and idle.leftover_cgroups == []
    # a local server: its sandboxes' cgroups and its process tree are visible, so every figure is there
    assert idle.cgroup_mb_per_sandbox is not None and idle.cgroup_mb_per_sandbox > 0
    assert idle.uss_mb_per_sandbox is not None and idle.uss_mb_per_sandbox > 0
    assert idle.server_overhead_mb_per_sandbox is not None
    assert idle.sandbox_processes is not None and idle.sandbox_processes >= 2
    # every phase reported progress up to its total
    for description, total in phases:
        assert ticks.count(description) == total, description
    assert set(target.list_ids()) == before
    data = json.loads(report.to_json())
    # every target has a measurement: latency (2), interpreter (3), pool create and resume
    # server-side (3), fork (1), resume client-side (2), idle (2)
    assert [c["met"] is not None for c in data["checks"]] == [True] * 13
    pool = next(c for c in data["checks"] if c["name"] == "create from a warm pool")
    assert pool["figure"].startswith("create from the warm pool, server-side")
    assert "| idle density | value |" in render_markdown(report, "corral bench")


def test_cli_bench_with_its_own_server_prints_json_and_cleans_up() -> None:
    if os.geteuid() != 0:
        pytest.skip("the benchmark's own server needs root")
    pattern = os.path.join(tempfile.gettempdir(), "corral-bench-*")
    dirs_before = set(glob.glob(pattern))
    app = typer.Typer()
    app.command()(bench)
    result = CliRunner().invoke(app, ["--json", "-n", "2", "--idle", "1"])
    assert result.exception is None, result.output
    data = json.loads(result.stdout)
    assert data["target"].startswith("own server")
    assert data["results"]["command"]["n"] == 2
    assert data["idle"]["killed"] == 1 and data["idle"]["leftover_cgroups"] == []
    # its own server keeps a warm pool of base: the pool-hit create is measured server-side
    assert data["results"]["pool_create_server"]["n"] >= 1
    pool = next(c for c in data["checks"] if c["name"] == "create from a warm pool")
    assert pool["met"] is not None and "Server-Timing" in pool["figure"]
    assert set(glob.glob(pattern)) == dirs_before  # temp data dir removed with the server


def test_idle_figures_of_another_host_are_omitted_not_invented(server) -> None:  # type: ignore[no-untyped-def]
    from corral.bench.density import measure_idle

    result = measure_idle(Target(server.url, server.api_key), 1, same_host=False, settle_s=0)
    assert result.mem_available_delta_mb_per_sandbox is None and result.kernel_mb_per_sandbox is None
    assert result.killed == 1 and any("not on this host" in n for n in result.notes)


def test_tier_rows_measure_gvisor_beside_the_default_tier(server) -> None:  # type: ignore[no-untyped-def]
    from corral.bench.report import BenchReport
    from corral.bench.machine import describe_machine
    from corral.bench.runner import SilentProgress, _tier_rows
    from tests.tiers import runsc_missing

    if runsc_missing():
        pytest.skip(runsc_missing() or "")
    target = Target(server.url, server.api_key, isolation="gvisor")
    before = set(target.list_ids())
    report = BenchReport(target="t", machine=describe_machine(), iterations=1, idle_requested=0)
    # (no run_code row: the interpreter rows are the same code with a metadata key, and cost a
    # code-interpreter sandbox more)
    _tier_rows(BenchConfig(iterations=1, tiers=("gvisor",), interpreter=False, idle=1, settle_s=0), target, report,
               SilentProgress())
    # (this server has no gVisor warm pool: the create rows are the cold ones)
    assert set(report.results) == {f"gvisor:{k}" for k in ("create_cold", "create_to_first_command_cold",
                                                           "command", "pause_full", "resume_full",
                                                           "resume_full_call", "resume_full_server")}
    assert all(s.name.endswith(" [gvisor]") for s in report.results.values())
    names = [c.name for c in report.checks() if c.met is not None]
    assert "create -> first command [gvisor]" in names
    assert "resume (full, memory checkpoint) -> first command [gvisor]" in names
    idle = report.tier_idle["gvisor"]     # one idle gVisor sandbox, measured and killed
    assert idle.sandboxes == 1 and idle.killed == 1 and idle.leftover_cgroups == []
    assert idle.cgroup_mb_per_sandbox is not None and idle.cgroup_mb_per_sandbox > 0
    # (its verdict needs the server's pid, which this report of a fixture's server lacks)
    assert "idle sandbox host memory (accounted) [gvisor]" in [c.name for c in report.checks()]
    assert set(target.list_ids()) == before
