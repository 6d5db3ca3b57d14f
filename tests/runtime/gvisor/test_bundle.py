"""What a gVisor sandbox gets mounted from the host: code read-only, one run dir, nothing else."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from corral.runtime.base import Limits
from corral.runtime.gvisor import bundle, layout
from corral.runtime.headroom import parse_cpu_list


_LIMITS = Limits(1, 256, 256, 64)


def _render(tmp_path: Path) -> dict:
    return bundle.render("abc", layout.Layout(tmp_path / "w"), "/g/abc", _LIMITS,
                         "corral.envd.server:serve_handoff", errno_via_trace=True)


def test_only_code_and_the_run_dir_come_from_the_host(tmp_path: Path) -> None:
    cfg = _render(tmp_path)
    binds = [m for m in cfg["mounts"] if m["type"] == "bind"]
    writable = [m for m in binds if "ro" not in m["options"]]
    assert [m["destination"] for m in writable] == [layout.GUEST_RUN_DIR]
    assert writable[0]["source"] == str(tmp_path / "w" / "run")
    assert "noexec" in writable[0]["options"] and "nosuid" in writable[0]["options"]
    assert len(binds) == 1
    # envd's code goes in read-only through the launcher, into the root, under /.corral only.
    code = bundle.binds_of(cfg)
    assert code and all(dest.startswith("/run/corral-code/") for _, dest in code)
    assert any(dest == layout.GUEST_PYTHON for _, dest in code)


def test_a_source_checkout_is_bound_as_the_package_only(tmp_path: Path) -> None:
    """The repository around the package holds the default data dir (the database with every
    sandbox's access token): only the package directory itself may go in."""
    import corral

    package = str(Path(corral.__file__).resolve().parent)
    for source, _ in bundle.binds_of(_render(tmp_path)):
        assert not Path(package).is_relative_to(source) or source == package or \
            "site-packages" in source or source == str(Path(sys.base_prefix).resolve()), source


def test_envd_sockets_are_on_a_sandbox_tmpfs(tmp_path: Path) -> None:
    inner = [m for m in _render(tmp_path)["mounts"] if m["destination"] == layout.GUEST_INNER_DIR]
    assert inner and inner[0]["type"] == "tmpfs" and "mode=700" in inner[0]["options"]


def test_guest_environment_holds_no_server_setting(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CORRAL_API_KEY", "secret-value")
    env = _render(tmp_path)["process"]["env"]
    assert not any("secret-value" in e for e in env)
    assert sorted(e.split("=", 1)[0] for e in env) == [
        "HOME", "LANG", "LD_LIBRARY_PATH", "PATH", "PYTHONDONTWRITEBYTECODE"]


def test_bundle_carries_a_cpuset_and_the_user_limits(tmp_path: Path) -> None:
    config = _render(tmp_path)
    cpu = config["linux"]["resources"]["cpu"]
    # gVisor sizes its CPU count from the cpuset, so it holds exactly the sandbox's CPUs.
    limits = _LIMITS
    assert len(parse_cpu_list(cpu["cpus"])) == min(limits.cpu_count, len(os.sched_getaffinity(0)))
    pids, memory = config["process"]["args"][-2:]   # the guest init's argv, after the entry point
    assert 16 <= int(pids) < limits.pids_max
    assert int(memory) < limits.memory_mb * 1024 * 1024


def test_pids_limit_keeps_headroom_for_the_sentry(tmp_path: Path) -> None:
    assert _render(tmp_path)["linux"]["resources"]["pids"]["limit"] == bundle.PIDS_FLOOR + bundle.HOST_TASKS_PER_PROCESS * 64


def test_guest_boots_from_the_mounted_interpreter(tmp_path: Path) -> None:
    args = _render(tmp_path)["process"]["args"]
    assert args[0].startswith(layout.GUEST_PYTHON + "/bin/python3")
    assert args[1] == "-I" and "corral.runtime.gvisor.guest" in args[3]
    assert args[4] == "corral.envd.server:serve_handoff"     # the payload, by name only
