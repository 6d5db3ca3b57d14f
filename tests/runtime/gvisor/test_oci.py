"""The OCI rendering says exactly what the shared policy says (no second copy to drift)."""

from __future__ import annotations

from corral.runtime import oci
from corral.runtime.base import Limits
from corral.runtime.namespace import policy
from corral.runtime.namespace import syscalls as sc


def _bundle(**kw) -> dict:  # type: ignore[no-untyped-def]
    args = dict(sandbox_id="abc", root_path="/r", args=["/init"], limits=Limits(2, 512, 1024, 256))
    args.update(kw)
    return oci.Bundle(**args).render()  # type: ignore[arg-type]


def test_capabilities_are_the_policy_set_and_nothing_inherits() -> None:
    caps = _bundle()["process"]["capabilities"]
    want = sorted(f"CAP_{c}" for c in policy.SANDBOX_CAPABILITIES)
    assert caps["bounding"] == caps["effective"] == caps["permitted"] == want
    assert caps["inheritable"] == [] and caps["ambient"] == []
    assert "CAP_SYS_ADMIN" not in want and "CAP_SYS_PTRACE" not in want


def test_seccomp_allowlist_matches_policy() -> None:
    sec = _bundle()["linux"]["seccomp"]
    assert sec["defaultAction"] == "SCMP_ACT_ERRNO"
    allowed = [e for e in sec["syscalls"] if e["action"] == "SCMP_ACT_ALLOW" and "args" not in e]
    assert len(allowed) == 1 and allowed[0]["names"] == policy.allowed_syscall_names()
    for name in policy.DENIED_ON_PURPOSE:
        assert all(name not in e["names"] for e in sec["syscalls"])
    assert all("ptrace" not in e["names"] for e in sec["syscalls"])


def test_clone_is_allowed_only_without_namespace_flags() -> None:
    sec = _bundle()["linux"]["seccomp"]
    clone = [e for e in sec["syscalls"] if e["names"] == ["clone"]]
    assert clone == [{"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": sc.ALL_NAMESPACE_FLAGS, "valueTwo": 0,
                                "op": "SCMP_CMP_MASKED_EQ"}]}]


def test_clone3_enosys_rendered_for_runtimes_without_errnoret() -> None:
    plain = _bundle()["linux"]["seccomp"]["syscalls"]
    assert {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38} in plain
    traced = _bundle(errno_via_trace=True)["linux"]["seccomp"]["syscalls"]
    assert {"names": ["clone3"], "action": "SCMP_ACT_TRACE"} in traced


def test_paths_limits_and_namespaces() -> None:
    cfg = _bundle(cgroups_path="/g/abc", pids_floor=1024)
    linux = cfg["linux"]
    assert linux["maskedPaths"] == list(policy.MASKED_PATHS)
    assert linux["readonlyPaths"] == list(policy.READONLY_PATHS)
    assert linux["resources"]["memory"] == {"limit": 512 << 20, "swap": 512 << 20}
    assert linux["resources"]["pids"] == {"limit": 1024}
    assert linux["resources"]["cpu"] == {"quota": 200_000, "period": 100_000}
    assert linux["cgroupsPath"] == "/g/abc"
    assert {"type": "network"} in linux["namespaces"]
    assert {n["type"] for n in linux["namespaces"]} == {"pid", "ipc", "uts", "mount", "network"}
    assert "user" not in {n["type"] for n in linux["namespaces"]}
    assert cfg["process"]["noNewPrivileges"] is True
    assert cfg["hostname"] == "abc"


def test_netns_path_joins_a_prepared_namespace() -> None:
    ns = _bundle(netns_path="/run/netns/x")["linux"]["namespaces"]
    assert {"type": "network", "path": "/run/netns/x"} in ns


def test_environment_is_only_what_is_given() -> None:
    env = _bundle(env={"A": "1"})["process"]["env"]
    assert sorted(e.split("=", 1)[0] for e in env) == ["A", "HOME", "LANG", "PATH"]


def test_deny_rules_render_masked() -> None:
    rules = oci.deny_rules()
    assert {r["names"][0] for r in rules} == {r.syscall for r in policy.DENY_RULES}
    assert all(r["args"][0]["op"] == "SCMP_CMP_MASKED_EQ" for r in rules)


def test_runsc_release_features() -> None:
    from corral.runtime.gvisor.runsc import RunscInfo

    old, new = RunscInfo("r", "0.0~20221219.0", "ptrace"), RunscInfo("r", "0.0~20240729.0", "systrap")
    assert old.release == "20221219" and not old.checkpoints_tcp and not old.full_stat_flags
    assert new.checkpoints_tcp and new.full_stat_flags
    assert RunscInfo("r", "release-20250101.0", "systrap").release == "0"
    assert old.checkpoint_flags == () and new.checkpoint_flags == ("--compression=none",)


def test_the_tier_finds_the_pinned_runsc_before_path_and_after_corral_runsc(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os

    import pytest

    from corral.runtime.gvisor import runsc

    if not os.access(runsc.CORRAL_RUNSC_PATH, os.X_OK):
        pytest.skip("the pinned runsc is not installed (scripts/install-runsc.sh)")
    monkeypatch.delenv("CORRAL_RUNSC", raising=False)
    assert runsc.find_runsc() == runsc.CORRAL_RUNSC_PATH
    # What scripts/install-runsc.sh pins (its version check and this one must agree).
    assert runsc.probe(runsc.CORRAL_RUNSC_PATH).version == "0.0~20240729.0"
    own = tmp_path / "my-runsc"
    own.write_text("#!/bin/sh\n")
    own.chmod(0o755)
    monkeypatch.setenv("CORRAL_RUNSC", str(own))
    assert runsc.find_runsc() == str(own)
    monkeypatch.setenv("CORRAL_RUNSC_PLATFORM", "no-such-platform")
    with pytest.raises(runsc.TierError, match="CORRAL_RUNSC_PLATFORM"):
        runsc.probe(runsc.CORRAL_RUNSC_PATH)
