"""Root inside a sandbox is not root on the host: through the SDK, try the kernel interfaces a
container escape starts with (mounts, new user namespaces, ptrace, bpf, perf, keyrings,
modules, kexec, reboot) and check the capability sets against Docker's default.
"""

from __future__ import annotations

import json

import pytest
from e2b import Sandbox

from tests.security.conftest import run, run_py

pytestmark = [pytest.mark.e2e, pytest.mark.root]

# Docker's default capability set (moby's `DefaultCapabilities`), written out independently of
# corral's policy module so that a drift in either is caught:
# CHOWN 0, DAC_OVERRIDE 1, FOWNER 3, FSETID 4, KILL 5, SETGID 6, SETUID 7, SETPCAP 8,
# NET_BIND_SERVICE 10, NET_RAW 13, SYS_CHROOT 18, MKNOD 27, AUDIT_WRITE 29, SETFCAP 31.
DOCKER_DEFAULT_CAPS = sum(1 << b for b in (0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31))
assert DOCKER_DEFAULT_CAPS == 0xA80425FB


def _caps(sbx: Sandbox, user: str) -> dict[str, int]:
    out = run(sbx, "grep ^Cap /proc/self/status", user=user)
    assert out.exit_code == 0
    return {line.split(":")[0]: int(line.split()[1], 16) for line in out.stdout.splitlines()}


def _expected_caps(sdk) -> int:  # type: ignore[no-untyped-def]
    # runsc also drops NET_RAW (raw sockets) unless told --net-raw: one capability fewer.
    return DOCKER_DEFAULT_CAPS & ~(1 << 13) if sdk.isolation == "gvisor" else DOCKER_DEFAULT_CAPS


def test_root_capabilities_equal_dockers_default(sbx: Sandbox, sdk) -> None:  # type: ignore[no-untyped-def]
    caps = _caps(sbx, "root")
    assert caps["CapBnd"] == _expected_caps(sdk)
    assert caps["CapEff"] == _expected_caps(sdk)
    assert caps["CapPrm"] == _expected_caps(sdk)
    assert caps.get("CapAmb", 0) == 0   # gVisor's /proc has no CapAmb line (ambient is unsupported)


def test_user_has_no_capabilities(sbx: Sandbox) -> None:
    caps = _caps(sbx, "user")
    assert caps["CapEff"] == 0
    assert caps["CapPrm"] == 0
    assert caps.get("CapAmb", 0) == 0
    assert caps["CapInh"] == 0
    assert caps["CapBnd"] & ~DOCKER_DEFAULT_CAPS == 0


def test_no_new_privileges_via_setuid_binaries(sbx: Sandbox) -> None:
    # Even if a setuid-root binary exists in the image, running it must not give the user root.
    run(sbx, "cp /usr/bin/id /tmp/suid-id && chmod 4755 /tmp/suid-id", user="root")
    out = run(sbx, "/tmp/suid-id -u; su -c id root </dev/null; sudo -n id", user="user")
    assert "0\n" not in out.stdout.splitlines(keepends=True)[:1]
    assert "uid=0" not in out.stdout


@pytest.mark.parametrize("user", ["root", "user"])
def test_mount_tmpfs_fails(sbx: Sandbox, user: str) -> None:
    run(sbx, "mkdir -p /tmp/mnt-probe", user="root")
    out = run(sbx, "mount -t tmpfs none /tmp/mnt-probe", user=user)
    assert out.exit_code != 0
    assert "tmpfs /tmp/mnt-probe" not in run(sbx, "cat /proc/self/mounts").stdout
    # A bind mount of / over something, and a remount of / read-write-anything, fail the same way.
    assert run(sbx, "mount --bind / /tmp/mnt-probe", user=user).exit_code != 0
    assert run(sbx, "mount -o remount,rw /proc/sys", user=user).exit_code != 0


@pytest.mark.parametrize("user", ["root", "user"])
def test_unshare_new_namespaces_fails(sbx: Sandbox, user: str) -> None:
    for flags in ("-U", "-m", "-n", "-p -f", "-U -r", "-Urm"):
        out = run(sbx, f"unshare {flags} true", user=user)
        assert out.exit_code != 0, f"unshare {flags} succeeded as {user}"


# Each probe is a raw syscall with arguments that would succeed (or at least pass argument
# checks) if the call were allowed, so the error must come from the sandbox's policy.
SYSCALL_PROBES = r'''
import ctypes, errno, json, os, signal, struct, time
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

def sc(nr, *args):
    conv = [ctypes.c_void_p(a) if isinstance(a, int) or a is None else a for a in args]
    rc = libc.syscall(ctypes.c_long(nr), *conv)
    return "ok" if rc >= 0 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))

out = {}
# unshare(CLONE_NEWUSER), unshare(CLONE_NEWNS)
out["unshare_user"] = sc(272, 0x10000000)
out["unshare_mnt"] = sc(272, 0x00020000)
# mount("none", "/tmp", "tmpfs", 0, NULL)
out["mount"] = sc(165, ctypes.c_char_p(b"none"), ctypes.c_char_p(b"/tmp"), ctypes.c_char_p(b"tmpfs"), 0, 0)
# ptrace(PTRACE_ATTACH, child) on our own child: allowed by plain Linux rules for root
child = os.fork()
if child == 0:
    time.sleep(30)
    os._exit(0)
out["ptrace_attach"] = sc(101, 16, child, 0, 0)
out["ptrace_traceme"] = sc(101, 0, 0, 0, 0)
os.kill(child, signal.SIGKILL)
os.waitpid(child, 0)
# bpf(BPF_MAP_CREATE, {ARRAY, key 4, value 4, 1 entry})
attr = ctypes.create_string_buffer(struct.pack("IIII", 2, 4, 4, 1) + b"\0" * 112)
out["bpf"] = sc(321, 0, ctypes.addressof(attr), 128)
# perf_event_open({SOFTWARE, CPU_CLOCK}, self, any cpu)
pattr = ctypes.create_string_buffer(struct.pack("IIQ", 1, 128, 0) + b"\0" * 112)
out["perf_event_open"] = sc(298, ctypes.addressof(pattr), 0, -1 & 0xFFFFFFFFFFFFFFFF, -1 & 0xFFFFFFFFFFFFFFFF, 0)
# add_key("user", "corral", "x", 1, KEY_SPEC_PROCESS_KEYRING) and keyctl(JOIN_SESSION_KEYRING)
out["add_key"] = sc(248, ctypes.c_char_p(b"user"), ctypes.c_char_p(b"corral"), ctypes.c_char_p(b"x"), 1,
                    -2 & 0xFFFFFFFFFFFFFFFF)
out["keyctl"] = sc(250, 1, 0)
# finit_module(fd of some file), delete_module("loop")
fd = os.open("/bin/true", os.O_RDONLY)
out["finit_module"] = sc(313, fd, ctypes.c_char_p(b""), 0)
os.close(fd)
out["delete_module"] = sc(176, ctypes.c_char_p(b"loop"), 0)
# kexec_load(0, 0 segments, NULL, KEXEC_ARCH_DEFAULT)
out["kexec_load"] = sc(246, 0, 0, 0, 0)
# reboot(MAGIC1, MAGIC2, LINUX_REBOOT_CMD_CAD_OFF): harmless even if it were allowed
out["reboot"] = sc(169, 0xfee1dead, 672274793, 0, 0)
# setns into our own pid 1's mount namespace
try:
    nsfd = os.open("/proc/1/ns/mnt", os.O_RDONLY)
    out["setns"] = sc(308, nsfd, 0)
except OSError as e:
    out["setns"] = errno.errorcode.get(e.errno, str(e.errno))
# syslog(READ_ALL) and swapon
buf = ctypes.create_string_buffer(4096)
out["syslog"] = sc(103, 3, ctypes.addressof(buf), 4096)
out["swapon"] = sc(167, ctypes.c_char_p(b"/tmp/nope"), 0)
print(json.dumps(out))
'''

DENIED = {"EPERM", "EACCES", "ENOSYS"}


@pytest.mark.parametrize("user", ["root", "user"])
def test_dangerous_syscalls_fail(sbx: Sandbox, user: str, sdk) -> None:  # type: ignore[no-untyped-def]
    out = run_py(sbx, SYSCALL_PROBES, user=user)
    assert out.exit_code == 0, out.stderr
    results = json.loads(out.stdout)
    if sdk.isolation == "gvisor" and results.get("setns") == "ENOENT":
        results.pop("setns")   # gVisor has no /proc/<pid>/ns files to setns into at all
    allowed = {name: r for name, r in results.items() if r not in DENIED}
    assert allowed == {}, f"syscalls not denied for {user}: {allowed}"


@pytest.mark.parametrize("path,value", [
    ("/proc/sys/vm/drop_caches", "1"),
    ("/proc/sys/kernel/panic", "0"),
    ("/proc/sysrq-trigger", "h"),
    ("/sys/kernel/mm/transparent_hugepage/enabled", "never"),
])
def test_kernel_tunables_are_read_only(sbx: Sandbox, path: str, value: str) -> None:
    out = run(sbx, f"echo {value} > {path}", user="root")
    assert out.exit_code != 0


def test_no_raw_block_or_kernel_memory_devices(sbx: Sandbox) -> None:
    out = run(sbx, "ls /dev", user="root").stdout.split()
    for dev in ("mem", "kmem", "port", "vda", "sda", "loop-control", "kvm", "fuse"):
        assert dev not in out
    assert run(sbx, "mknod /tmp/vda b 254 0 && head -c 512 /tmp/vda", user="root").exit_code != 0
