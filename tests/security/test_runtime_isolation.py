"""Try to cross every boundary of a namespace-tier sandbox from inside; each attempt must fail.

Each test drives a real sandbox (root needed) through the command agent that runs as its pid 1.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from corral.runtime.namespace import policy
from tests.runtime.namespace.sandboxes import SandboxFactory, sandbox_factory

pytestmark = pytest.mark.root

SYSCALL_PROBE = r'''
import ctypes, errno, json
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(nr, *args):
    args = [ctypes.c_ulong(a) for a in args]
    rc = libc.syscall(ctypes.c_long(nr), *args)
    return "ok" if rc >= 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))
# x86_64 numbers
probes = {
    "mount": (165, 0, 0, 0, 0, 0), "umount2": (166, 0, 0), "unshare_user": (272, 0x10000000),
    "unshare_ns": (272, 0x20000), "setns": (308, 0, 0), "ptrace_traceme": (101, 0, 0, 0, 0),
    "ptrace_attach_1": (101, 16, 1, 0, 0), "bpf": (321, 0, 0, 0), "perf_event_open": (298, 0, 0, 0, 0, 0),
    "keyctl": (250, 0, 0, 0, 0, 0), "add_key": (248, 0, 0, 0, 0, 0), "kexec_load": (246, 0, 0, 0, 0),
    "init_module": (175, 0, 0, 0), "finit_module": (313, 0, 0, 0), "delete_module": (176, 0, 0),
    "reboot": (169, 0, 0, 0, 0), "pivot_root": (155, 0, 0), "open_tree": (428, 0, 0, 0),
    "fsopen": (430, 0, 0), "move_mount": (429, 0, 0, 0, 0, 0), "swapon": (167, 0, 0),
    "syslog": (103, 0, 0, 0), "userfaultfd": (323, 0), "io_uring_setup": (425, 1, 0),
    "process_vm_readv": (310, 1, 0, 0, 0, 0, 0), "clone_newuser": (56, 0x10000000 | 17, 0, 0, 0, 0),
    "clone_newns": (56, 0x20000 | 17, 0, 0, 0, 0), "clone3": (435, 0, 0),
    "acct": (163, 0), "settimeofday": (164, 0, 0), "sethostname": (170, 0, 0),
    "iopl": (172, 3), "personality_bad": (135, 0x0040000), "tiocsti": (16, 0, 0x5412, 0),
    "tiocsti_highbits": (16, 0, (1 << 32) | 0x5412, 0), "vsock": (41, 40, 1, 0),
    "getpid": (39,),
}
print(json.dumps({k: call(*v) for k, v in probes.items()}))
'''


@pytest.fixture
async def sandboxes(tmp_path: Path) -> AsyncIterator[SandboxFactory]:
    async with sandbox_factory(tmp_path) as factory:
        yield factory


async def test_dangerous_syscalls_are_refused(sandboxes: SandboxFactory) -> None:
    import json

    box = await sandboxes.create()
    for uid in (0, 1000):
        out = await box.py(SYSCALL_PROBE, uid=uid)
        assert out["rc"] == 0, out
        res = json.loads(out["stdout"])
        assert res.pop("getpid") == "ok"
        assert res.pop("clone3") == "ENOSYS"
        assert {k: v for k, v in res.items() if v != "EPERM"} == {}, (uid, res)


async def test_capabilities_nnp_seccomp_match_policy(sandboxes: SandboxFactory) -> None:
    box = await sandboxes.create()
    status = (await box.run(["cat", "/proc/self/status"]))["stdout"]
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    expected = policy.capability_mask()
    assert expected == 0xA80425FB  # Docker's default set
    assert int(fields["CapBnd"], 16) == expected
    assert int(fields["CapEff"], 16) == expected
    assert int(fields["CapInh"], 16) == 0 and int(fields["CapAmb"], 16) == 0
    assert fields["NoNewPrivs"].strip() == "1"
    assert fields["Seccomp"].strip() == "2"
    user = (await box.run(["cat", "/proc/self/status"], uid=1000))["stdout"]
    assert "CapEff:\t0000000000000000" in user and "NoNewPrivs:\t1" in user
    # the sandbox's root cannot make a new user namespace to regain capabilities
    out = await box.run(["unshare", "-U", "-r", "true"])
    assert out["rc"] != 0


async def test_host_files_are_invisible(sandboxes: SandboxFactory, tmp_path: Path) -> None:
    marker = Path("/tmp") / f"corral-host-marker-{uuid.uuid4().hex}"
    marker.write_text("host secret")
    try:
        box = await sandboxes.create()
        out = await box.sh(f"cat {marker}; ls {sandboxes.base} {box.spec.workdir} /work /srv")
        assert "host secret" not in out["stdout"]
        assert out["stderr"].count("No such file") >= 4, out
        shadow = await box.run(["cat", "/etc/shadow"])
        assert shadow["stdout"] != Path("/etc/shadow").read_text()
        # /proc/1/root and friends lead to the sandbox's own root only
        out = await box.sh(f"ls /proc/1/root{marker}; cat /proc/1/root/etc/hostname")
        assert out["stdout"] == box.id + "\n"
        mounts = (await box.run(["cat", "/proc/self/mountinfo"]))["stdout"]
        assert str(sandboxes.base) not in mounts and "corral-scratch" not in mounts
    finally:
        marker.unlink()


async def test_masked_and_readonly_proc(sandboxes: SandboxFactory) -> None:
    box = await sandboxes.create()
    for path in policy.MASKED_PATHS:
        if not Path(path).exists():
            continue
        out = await box.sh(f"if [ -d {path} ]; then ls -A {path}; else cat {path}; fi")
        assert out["stdout"] == "", (path, out)
    out = await box.sh("echo 1 > /proc/sys/kernel/core_pattern; echo b > /proc/sysrq-trigger; "
                       "echo 0 > /proc/sys/net/ipv4/ip_forward")
    assert out["stderr"].count("Read-only file system") >= 2
    assert (await box.run(["cat", "/proc/sys/kernel/core_pattern"]))["stdout"] == \
        Path("/proc/sys/kernel/core_pattern").read_text()


async def test_host_processes_are_invisible(sandboxes: SandboxFactory) -> None:
    box = await sandboxes.create()
    out = await box.run(["ps", "-eo", "pid,comm"])
    pids = [int(line.split()[0]) for line in out["stdout"].splitlines()[1:]]
    assert 1 in pids and max(pids) < 100 and len(pids) <= 4
    # signalling a host pid is impossible: the host's pids do not exist here
    out = await box.sh(f"kill -0 {os.getpid()} || echo gone")
    assert "gone" in out["stdout"]


async def test_host_loopback_is_unreachable(sandboxes: SandboxFactory) -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    hits: list[bool] = []

    def accept() -> None:
        srv.settimeout(3)
        try:
            conn, _ = srv.accept()
            hits.append(True)
            conn.close()
        except OSError:
            pass

    t = threading.Thread(target=accept)
    t.start()
    try:
        box = await sandboxes.create()
        code = ("import socket,sys\ns=socket.socket();s.settimeout(2)\n"
                f"try:\n s.connect(('127.0.0.1',{port}));print('CONNECTED')\n"
                "except OSError as e: print(type(e).__name__)")
        out = await box.py(code)
        assert out["stdout"].strip() == "ConnectionRefusedError"
        links = (await box.run(["ip", "-o", "link"]))["stdout"].splitlines()
        assert len(links) == 1 and ": lo:" in links[0]
        # the sandbox's own loopback works and unprivileged low ports bind
        out = await box.py("import socket\ns=socket.socket();s.bind(('127.0.0.1',80));s.listen();"
                           "c=socket.create_connection(('127.0.0.1',80));print('ok')", uid=1000)
        assert out["stdout"].strip() == "ok", out
    finally:
        t.join()
        srv.close()
    assert hits == []


async def test_uids_map_to_the_sandbox_range(sandboxes: SandboxFactory) -> None:
    box = await sandboxes.create()
    base = box.spec.uid_base
    out = await box.sh("sleep 30 >/dev/null 2>&1 &")
    assert (await box.run(["touch", "/root/by-root"], uid=0))["rc"] == 0
    assert (await box.run(["touch", "/tmp/by-user"], uid=1000))["rc"] == 0
    # host view of sandbox processes: every uid is in the range, never host root
    for pid in box.tier.cgroups.pids(box.id):
        status = Path(f"/proc/{pid}/status").read_text()
        uids = [int(x) for x in next(line for line in status.splitlines()
                                     if line.startswith("Uid:")).split()[1:]]
        assert all(base <= u < base + 65536 for u in uids), (pid, uids)
    # files land as uid_base + uid on the host (seen through the init's root)
    root = Path(f"/proc/{box.handle.init_pid}/root")
    assert (root / "root/by-root").stat().st_uid == base
    assert (root / "tmp/by-user").stat().st_uid == base + 1000
    assert (root / "tmp/by-user").stat().st_gid == base + 1000
    # and template files stored as host root show as the sandbox's root
    assert (root / "usr/bin/python3").stat().st_uid == base
    assert out["rc"] == 0


async def test_sandbox_root_cannot_modify_template(sandboxes: SandboxFactory) -> None:
    box = await sandboxes.create()
    out = await box.sh("rm -f /usr/bin/perl /usr/bin/env; echo pwned > /etc/motd; cat /etc/motd")
    assert out["stdout"] == "pwned\n"
    assert (sandboxes.rootfs / "usr/bin/env").exists()
    assert "pwned" not in (sandboxes.rootfs / "etc/motd").read_text(errors="replace") \
        if (sandboxes.rootfs / "etc/motd").exists() else True
    other = await sandboxes.create()
    assert (await other.run(["test", "-e", "/usr/bin/env"]))["rc"] == 0


async def test_sandboxes_cannot_see_each_other(sandboxes: SandboxFactory) -> None:
    a = await sandboxes.create()
    b = await sandboxes.create()
    await a.sh("echo secret-a > /tmp/a-file; sleep 60 >/dev/null 2>&1 &")
    out = await b.sh("cat /tmp/a-file; ps -eo comm")
    assert "secret-a" not in out["stdout"] and "sleep" not in out["stdout"]
    assert "No such file" in out["stderr"]
    assert a.id not in (await b.run(["hostname"]))["stdout"]


async def test_devices_and_ptys(sandboxes: SandboxFactory) -> None:
    box = await sandboxes.create()
    out = await box.sh("ls /dev; head -c 4 /dev/urandom | wc -c")
    names = set(out["stdout"].split())
    assert {"null", "zero", "full", "random", "urandom", "tty", "pts", "ptmx", "shm"} <= names
    assert not names & {"sda", "vda", "mem", "kmsg", "loop0", "loop-control"}
    out = await box.sh("mknod /tmp/mem c 1 1; echo rc=$?")
    assert "rc=1" in out["stdout"]
    pty = await box.py("import os, pty\nm, s = pty.openpty()\nprint(os.ttyname(s))", uid=1000)
    assert pty["stdout"].startswith("/dev/pts/"), pty


async def test_syscalls_ordinary_programs_need_are_allowed(sandboxes: SandboxFactory) -> None:
    """The allowlist must not break real software: OpenSSL and Node.js abort at start without
    getrandom, and Python's os.getrandom raises."""
    box = await sandboxes.create()
    code = (
        "import os, ssl, hashlib, socket, select, time\n"
        "assert len(os.getrandom(16)) == 16\n"
        "assert len(ssl.RAND_bytes(16)) == 16\n"
        "a, b = socket.socketpair(); a.send(b'x'); assert b.recv(1) == b'x'\n"
        "ep = select.epoll(); ep.close()\n"
        "os.statvfs('/'); os.sched_getaffinity(0); time.clock_gettime(time.CLOCK_MONOTONIC)\n"
        "print('ok')\n"
    )
    for uid in (0, 1000):
        out = await box.py(code, uid=uid)
        assert out["rc"] == 0 and out["stdout"].strip() == "ok", (uid, out)
