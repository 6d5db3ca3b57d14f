"""Render the declared sandbox policy into an OCI runtime ``config.json``.

The namespace tier applies :mod:`corral.runtime.namespace.policy` itself (prctl, libseccomp,
mounts). An OCI runtime (gVisor's ``runsc``) is told the very same rules through the bundle's
``config.json``: the capability set, the seccomp allowlist and its argument rules, the masked and
read-only /proc paths, and the limits. Nothing here is tier-specific beyond what the OCI
runtime-spec says; runtime quirks are arguments (see ``errno_via_trace``).

Everything returns plain ``dict``/``list`` data so tests can compare it with the policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from corral.runtime.base import Limits
from corral.runtime.namespace import policy

OCI_VERSION = "1.0.2"
CPU_PERIOD_USEC = 100_000
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def capability_names(names: tuple[str, ...] = policy.SANDBOX_CAPABILITIES) -> list[str]:
    return sorted(f"CAP_{n}" for n in names)


def capabilities() -> dict[str, list[str]]:
    """The policy's set as bounding/effective/permitted; inheritable and ambient stay empty
    (as the namespace tier does), so no capability survives an exec into a non-root program."""
    caps = capability_names()
    return {"bounding": caps, "effective": caps, "permitted": caps,
            "inheritable": [], "ambient": []}


def _rule_args(rule: policy.ArgRule) -> list[dict[str, Any]]:
    # libseccomp/OCI MASKED_EQ: (arg & value) == valueTwo.
    return [{"index": rule.arg, "value": rule.mask, "valueTwo": rule.value,
             "op": "SCMP_CMP_MASKED_EQ"}]


def seccomp(*, errno_via_trace: bool = False) -> dict[str, Any]:
    """The policy's allowlist as an OCI ``linux.seccomp`` object.

    ``errno_via_trace``: some runtimes (runsc 20221219) ignore ``errnoRet`` and answer every
    SCMP_ACT_ERRNO with EPERM. A fixed ENOSYS (clone3, so that glibc falls back to clone) is then
    expressed as SCMP_ACT_TRACE, which without a tracer fails the call with ENOSYS (seccomp(2)).

    The stacked deny rules (TIOCSTI, TIOCLINUX, AF_VSOCK) are returned separately by
    :func:`deny_rules`: OCI has a single filter, and a runtime that does not implement those
    calls at all does not need them.
    """
    syscalls: list[dict[str, Any]] = [
        {"names": policy.allowed_syscall_names(), "action": "SCMP_ACT_ALLOW"},
    ]
    for rule in policy.ALLOW_RULES:
        entry: dict[str, Any] = {"names": [rule.syscall], "args": _rule_args(rule)}
        if rule.action == "allow":
            entry["action"] = "SCMP_ACT_ALLOW"
        else:
            entry.update(action="SCMP_ACT_ERRNO", errnoRet=int(rule.action))
        syscalls.append(entry)
    for name, err in sorted(policy.FIXED_ERRNO.items()):
        if errno_via_trace and err == 38:  # ENOSYS
            syscalls.append({"names": [name], "action": "SCMP_ACT_TRACE"})
        else:
            syscalls.append({"names": [name], "action": "SCMP_ACT_ERRNO", "errnoRet": err})
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": policy.DEFAULT_ERRNO,
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": syscalls,
    }


def deny_rules() -> list[dict[str, Any]]:
    """The policy's argument-specific refusals, as OCI entries (for runtimes that stack them)."""
    return [{"names": [r.syscall], "action": "SCMP_ACT_ERRNO", "errnoRet": int(r.action),
             "args": [{"index": r.arg, "value": r.mask, "valueTwo": r.value,
                       "op": "SCMP_CMP_MASKED_EQ"}]}
            for r in policy.DENY_RULES]


def resources(limits: Limits, *, pids_floor: int = 0, cpus: str = "", mems: str = "") -> dict[str, Any]:
    """cgroup limits. Memory and memory+swap are equal, so swapping cannot dodge the limit.
    ``pids_floor``: runtimes whose own threads count against pids.max need headroom.
    ``cpus``/``mems``: the sandbox's cpuset (gVisor sizes its CPU count from it)."""
    memory = limits.memory_mb * 1024 * 1024
    cpu: dict[str, Any] = {"quota": CPU_PERIOD_USEC * limits.cpu_count, "period": CPU_PERIOD_USEC}
    if cpus:
        cpu["cpus"] = cpus
        if mems:
            cpu["mems"] = mems
    return {
        "memory": {"limit": memory, "swap": memory},
        "pids": {"limit": max(limits.pids_max, pids_floor)},
        "cpu": cpu,
    }


@dataclass(frozen=True)
class Mount:
    destination: str
    type: str
    source: str
    options: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"destination": self.destination, "type": self.type,
                               "source": self.source}
        if self.options:
            out["options"] = list(self.options)
        return out


def read_only_bind(source: str, destination: str) -> Mount:
    return Mount(destination, "bind", source, ("rbind", "ro", "nosuid", "nodev"))


def base_mounts(memory_mb: int) -> list[Mount]:
    """/proc, /dev, /dev/pts, /dev/shm and /tmp as the namespace tier sets them up."""
    return [
        Mount("/proc", "proc", "proc", ("nosuid", "noexec", "nodev")),
        Mount("/dev", "tmpfs", "tmpfs", ("nosuid", "strictatime", "mode=755", "size=65536k")),
        Mount("/dev/pts", "devpts", "devpts",
              ("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
               f"gid={policy.TTY_GID}")),
        Mount("/dev/shm", "tmpfs", "shm",
              ("nosuid", "nodev", "mode=1777", f"size={max(memory_mb // 2, 16)}m")),
        Mount("/tmp", "tmpfs", "tmpfs", ("nosuid", "nodev", "mode=1777")),
    ]


@dataclass
class Bundle:
    """Inputs of one sandbox's ``config.json``."""

    sandbox_id: str
    root_path: str
    args: list[str]
    limits: Limits
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = "/"
    mounts: list[Mount] = field(default_factory=list)
    cgroups_path: str = ""
    netns_path: str | None = None     # None: a fresh, empty network namespace
    root_readonly: bool = False
    errno_via_trace: bool = False
    pids_floor: int = 0
    cpus: str = ""
    mems: str = ""
    annotations: dict[str, str] = field(default_factory=dict)

    def render(self) -> dict[str, Any]:
        env = {"PATH": DEFAULT_PATH, "HOME": "/root", "LANG": "C.UTF-8", **self.env}
        network: dict[str, str] = {"type": "network"}
        if self.netns_path:
            network["path"] = self.netns_path
        linux: dict[str, Any] = {
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount")] + [network],
            "resources": resources(self.limits, pids_floor=self.pids_floor, cpus=self.cpus, mems=self.mems),
            "maskedPaths": list(policy.MASKED_PATHS),
            "readonlyPaths": list(policy.READONLY_PATHS),
            "seccomp": seccomp(errno_via_trace=self.errno_via_trace),
            "sysctl": {("net." + k.split("/", 1)[1]).replace("/", "."): v
                       for k, v in policy.NETNS_SYSCTLS.items() if k.startswith("net/")},
        }
        if self.cgroups_path:
            linux["cgroupsPath"] = self.cgroups_path
        config: dict[str, Any] = {
            "ociVersion": OCI_VERSION,
            "process": {
                "terminal": False,
                "user": {"uid": 0, "gid": 0},
                "args": list(self.args),
                "env": [f"{k}={v}" for k, v in env.items()],
                "cwd": self.cwd,
                "capabilities": capabilities(),
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1 << 20, "soft": 1 << 20}],
                "noNewPrivileges": True,
            },
            "root": {"path": self.root_path, "readonly": self.root_readonly},
            "hostname": self.sandbox_id,
            "mounts": [m.to_json() for m in base_mounts(self.limits.memory_mb) + self.mounts],
            "linux": linux,
        }
        if self.annotations:
            config["annotations"] = dict(self.annotations)
        return config
