"""The gVisor tier for real: runsc sandboxes with the real envd inside (root and runsc needed)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess

from corral.runtime.base import Limits
from corral.runtime.gvisor import GVisorTier
from corral.runtime.namespace import policy
from tests.runtime.gvisor.sandboxes import BoxFactory, leaks

PROBE = r"""
import ctypes, errno, os, socket
libc = ctypes.CDLL(None, use_errno=True)
def err(rc):
    return "ok" if rc == 0 else errno.errorcode[ctypes.get_errno()]
print("ptrace", err(libc.ptrace(0, 0, 0, 0)))
print("unshare", err(libc.unshare(0x10000000)))
print("mount", err(libc.mount(b"none", b"/mnt", b"tmpfs", 0, None)))
s = socket.socket(); s.settimeout(2)
try:
    s.connect(("10.0.0.1", 80)); print("net ok")
except OSError as e:
    print("net", errno.errorcode.get(e.errno, e))
print("ifaces", sorted(n for _, n in socket.if_nameindex()))
"""


async def test_envd_runs_inside_gvisor_with_the_policy(boxes: BoxFactory) -> None:
    box = await boxes.create()
    r = await box.sh("uname -r; hostname; id -un; cat /proc/self/status | grep -E '^(CapEff|NoNewPrivs|Seccomp):'")
    lines = r.output.split("\n")
    assert r.exit_code == 0, r.output
    assert lines[0] == "4.4.0"                     # gVisor's Sentry answers, not the host kernel
    assert lines[1] == box.id
    assert lines[2] == "root"
    # The policy's set, less NET_RAW: runsc drops raw sockets unless told --net-raw.
    caps = policy.capability_mask() & ~(1 << policy.CAPABILITY_NUMBERS["NET_RAW"])
    assert f"CapEff:\t{caps:016x}" in r.output
    assert "Seccomp:\t2" in r.output                    # the policy's filter, applied by the Sentry
    r = await box.sh(f"python3 - <<'EOF'\n{PROBE}\nEOF", user="root")
    assert "ptrace EPERM" in r.output and "unshare EPERM" in r.output and "mount EPERM" in r.output
    assert ("net ENETUNREACH" in r.output or "net EHOSTUNREACH" in r.output), r.output
    assert "ifaces ['lo']" in r.output, r.output
    r = await box.sh("id -un", user="user")
    assert r.output.strip() == "user"


async def test_host_files_are_out_of_reach(boxes: BoxFactory) -> None:
    box = await boxes.create()
    workdir = str(box.spec.workdir)
    r = await box.sh(f"test -e {workdir} || echo 'No such file'; touch /run/corral-code/python/x 2>&1; "
                     "python3 -c 'import os; print(os.listdir(\"/run/corral\"))'; "
                     "cat /proc/1/environ | tr '\\0' '\\n'; "
                     "test -e /run/corral-code/src/pyproject.toml || echo no-checkout", user="root")
    assert "No such file" in r.output                     # the host's workdir does not exist inside
    assert "Read-only file system" in r.output            # envd's code is mounted read-only
    assert "envd.sock" in r.output and "ctl.sock" in r.output
    assert "tok-" not in r.output and "CORRAL" not in r.output   # no token, no server setting
    assert "no-checkout" in r.output    # only the corral package, not the repository around it
    assert box.token and box.token not in r.output


async def test_writes_land_in_the_layer_not_the_template(boxes: BoxFactory) -> None:
    box = await boxes.create(Limits(1, 512, 64, 256))
    r = await box.sh("echo changed > /etc/motd && rm -f /usr/bin/perl; cat /etc/motd; "
                     "dd if=/dev/zero of=/fill bs=1M count=200 2>&1", user="root")
    assert "changed" in r.output
    assert "No space left on device" in r.output          # the layer is its own 64 MB filesystem
    assert "changed" not in (boxes.rootfs / "etc/motd").read_text(errors="replace")
    assert (boxes.rootfs / "usr/bin/perl").exists() or not (boxes.rootfs / "usr/bin").exists()
    # /run/corral is the one host directory the sandbox writes (its host sockets): root inside
    # cannot fill the host's disk through it, past the quota: it is a 64 KiB tmpfs of its own
    r = await box.sh("dd if=/dev/zero of=/run/corral/fill bs=64k count=64 2>&1; "
                     "for i in $(seq 40); do : > /run/corral/f$i || break; done 2>&1", user="root")
    assert r.output.count("No space left on device") == 2, r.output
    run = box.spec.workdir / "run"
    assert sum(f.stat().st_size for f in run.iterdir() if f.is_file()) <= 64 * 1024
    assert (await box.sh("echo still-served")).output.strip() == "still-served"


async def test_coreutils_stat_ls_and_cp_work(boxes: BoxFactory) -> None:
    """runsc 20221219 refused the statx flag coreutils passes (stat, ls -l, cp -a failed)."""
    box = await boxes.create()
    r = await box.sh("set -e; mkdir -p /tmp/a && echo hi > /tmp/a/f && chmod 640 /tmp/a/f && "
                     "chown user /tmp/a/f && ln -s f /tmp/a/link && cp -a /tmp/a /tmp/b && "
                     "stat -c '%n %s %a %U' /tmp/b/f && readlink /tmp/b/link && ls -l /tmp/b/f /etc/passwd")
    assert r.exit_code == 0, r.output
    assert "/tmp/b/f 3 640 user" in r.output and "\nf\n" in r.output, r.output
    words = " ".join(r.output.split())
    assert "-rw-r----- 1 user root 3" in words and "/etc/passwd" in words, r.output


async def test_a_spare_launcher_starts_the_next_sandbox_and_ends_with_the_tier(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The tier keeps one launcher started ahead of time (its interpreter's start-up is off the
    create and resume path): a create consumes it and a new one replaces it; closing the tier
    ends the waiting one, which has read no spec, and leaves no launcher process."""
    from tests.runtime.gvisor.sandboxes import box_factory

    def waiting() -> list[str]:
        ps = subprocess.run(["ps", "-ww", "-eo", "pid,ppid,args"], capture_output=True, text=True).stdout
        return [ln for ln in ps.splitlines() if "gvisor.launcher import main" in ln and " --wait" in ln
                and int(ln.split()[1]) == os.getpid()]

    async with box_factory(tmp_path) as factory:
        tier = factory.tier
        for _ in range(200):
            if tier._spare is not None:
                break
            await asyncio.sleep(0.01)
        first = tier._spare
        assert first is not None and len(waiting()) == 1
        box = await factory.create()
        assert first.returncode is not None                    # it became this sandbox's runsc, and exited
        assert (await box.sh("echo served")).output.strip() == "served"   # its hand-off reached envd
        for _ in range(200):
            if tier._spare is not None:
                break
            await asyncio.sleep(0.01)
        assert tier._spare is not None and tier._spare is not first
    assert waiting() == []


async def test_destroy_leaves_nothing(boxes: BoxFactory) -> None:
    box = await boxes.create()
    assert box.id in await boxes.tier.leftovers()
    assert boxes.tier.is_alive(box.id)
    await boxes.destroy(box)
    assert leaks(boxes.tier, box.spec) == []
    assert box.id not in await boxes.tier.leftovers()
    await boxes.destroy(box)   # twice is fine


async def test_a_killed_sandbox_is_cleaned_up(boxes: BoxFactory) -> None:
    box = await boxes.create()
    os.kill(box.handle.init_pid, signal.SIGKILL)    # the Sentry dies; gofer and stubs linger
    assert box.id in await boxes.tier.leftovers()
    await boxes.destroy(box)
    assert leaks(boxes.tier, box.spec) == []


async def test_a_new_tier_adopts_running_sandboxes(boxes: BoxFactory) -> None:
    box = await boxes.create()
    other = GVisorTier(state_dir=boxes.tier.state_dir, cgroup_group=boxes.tier.cgroup_group)
    handle = await other.adopt(box.id, box.spec.workdir)
    assert handle is not None and handle.init_pid == box.handle.init_pid
    assert box.id in await other.leftovers()
    assert await other.adopt("gvtnosuchsandbox", box.spec.workdir) is None
    await other.close()
    assert (await box.sh("echo alive")).output.strip() == "alive"


async def test_freeze_and_thaw(boxes: BoxFactory) -> None:
    box = await boxes.create()
    await boxes.tier.freeze(box.id)
    assert (await boxes.tier.runsc.state(box.id) or {}).get("status") == "paused"
    await boxes.tier.thaw(box.id)
    assert (await boxes.tier.runsc.state(box.id) or {}).get("status") == "running"
    assert (await box.sh("echo thawed")).output.strip() == "thawed"


COUNTER = r"""
import os, socket
n = 0
s = socket.socket(socket.AF_UNIX); s.bind("/tmp/counter.sock"); s.listen(4)
while True:
    c, _ = s.accept(); n += 1; c.sendall(str(n).encode()); c.close()
"""
ASK = ("python3 -c \"import socket; s=socket.socket(socket.AF_UNIX); "
       "s.connect('/tmp/counter.sock'); print(s.recv(20).decode())\"")


async def _start_counter(box) -> None:  # type: ignore[no-untyped-def]
    r = await box.sh(f"cat > /tmp/counter.py <<'EOF'\n{COUNTER}\nEOF\n"
                     "nohup python3 /tmp/counter.py >/dev/null 2>&1 &\n"
                     "for i in $(seq 100); do [ -S /tmp/counter.sock ] && break; sleep 0.1; done; "
                     f"{ASK}; {ASK}; echo kept > /home/user/note", user="user")
    assert r.output.split() == ["1", "2"], r.output


async def test_checkpoint_pause_releases_the_sandbox_and_restore_resumes_it(boxes: BoxFactory) -> None:
    box = await boxes.create()
    await _start_counter(box)
    info = await boxes.tier.checkpoint(box.id, box.spec.workdir)
    assert info.image_bytes > 0 and not info.with_disk
    assert not boxes.tier.is_alive(box.id)
    assert not boxes.tier.cgroups.exists(box.id)          # no process, so no memory held
    assert boxes.tier.has_checkpoint(box.spec.workdir)
    assert await boxes.tier.adopt(box.id, box.spec.workdir) is None
    box.handle = await boxes.tier.restore(box.id, box.spec.workdir)
    r = await box.sh(f"{ASK}; cat /home/user/note", user="user")
    assert r.output.split() == ["3", "kept"], r.output    # the process and its memory came back


async def test_fork_from_a_running_sandbox(boxes: BoxFactory) -> None:
    box = await boxes.create()
    await _start_counter(box)
    image = box.spec.workdir.parent / "fork-image"
    info = await boxes.tier.checkpoint(box.id, box.spec.workdir, image, leave_running=True,
                                       with_disk=True)
    assert info.with_disk and (image / "disk.img").exists()
    # The fork starts with the source's memory, envd's access token included.
    spec = boxes.spec(access_token=box.token)
    handle = await boxes.tier.restore(spec.sandbox_id, spec.workdir, image, spec=spec)
    from tests.runtime.gvisor.sandboxes import Box
    fork = Box(boxes.tier, handle, spec)
    boxes.made.append(fork)
    # Both continue from 2, independently; the fork has the source's files too.
    assert (await box.sh(ASK, user="user")).output.strip() == "3"
    r = await fork.sh(f"{ASK}; {ASK}; cat /home/user/note; hostname", user="user")
    assert r.output.split() == ["3", "4", "kept", spec.sandbox_id], r.output   # its own hostname
    assert (await box.sh("hostname")).output.strip() == box.id
    assert (await box.sh(ASK, user="user")).output.strip() == "4"
    await boxes.destroy(fork)
    assert leaks(boxes.tier, spec) == []
    assert image.exists()  # the image belongs to the caller


async def _execute(box, code: str) -> str:  # type: ignore[no-untyped-def]
    async with box.client() as c:
        r = await c.post("/execute", json={"code": code, "language": "python"},
                         headers={"E2b-Sandbox-Port": "49999"}, timeout=180)
        assert r.status_code == 200, r.text
        return r.text


async def test_a_python_kernel_variable_survives_checkpoint_and_restore(boxes: BoxFactory) -> None:
    import pytest

    rootfs = boxes.rootfs.parent.parent / "code-interpreter-v1" / "rootfs"
    if not (rootfs / "usr/bin/python3").exists():
        pytest.skip("the code-interpreter-v1 template is not built")
    if not boxes.tier.runsc.info.checkpoints_tcp:
        pytest.skip(f"runsc {boxes.tier.runsc.info.version} cannot checkpoint TCP endpoints with "
                    "waiters (the kernel's ZMQ sockets); bookworm-backports' runsc can")
    boxes.rootfs = rootfs
    box = await boxes.create(Limits(1, 1024, 1024, 256), start_kernels=["python"])
    assert "42" in await _execute(box, "kept = 41 + 1\nkept")
    await boxes.tier.checkpoint(box.id, box.spec.workdir)
    box.handle = await boxes.tier.restore(box.id, box.spec.workdir)
    out = await _execute(box, "kept * 2")
    assert "84" in out, out
