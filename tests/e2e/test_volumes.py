"""Volumes through the official SDK on the namespace tier: shared by sandboxes at once, surviving
every sandbox that used them, capped in size, kept across a filesystem-mode pause, shared with a
fork, and confined like the rest of the sandbox."""

from __future__ import annotations

import subprocess
import uuid

import httpx
import pytest
from e2b import Sandbox, Volume
from e2b.exceptions import VolumeException, VolumeNotFoundException, VolumePathNotFoundException

from tests.tiers import runsc_missing

pytestmark = pytest.mark.e2e


def _name() -> str:
    return "e2e-" + uuid.uuid4().hex[:12]


def _loops_of(volume_id: str) -> list[str]:
    out = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if volume_id in line]


def test_a_volume_outlives_its_sandboxes_and_is_shared_capped_paused_and_forked(sdk) -> None:  # type: ignore[no-untyped-def]
    headers = {"X-API-Key": sdk.api_key}
    vol = Volume.create(_name())
    sandboxes: list[Sandbox] = []
    try:
        assert vol.token and any(v.volume_id == vol.volume_id for v in Volume.list())
        assert Volume.get_info(vol.volume_id).name == vol.name

        a = Sandbox.create(timeout=300, volume_mounts={"/home/user/data": vol})
        b = Sandbox.create(timeout=300, volume_mounts={"/mnt/shared": vol.name})
        sandboxes += [a, b]
        # both at once: one sees what the other writes, the default user owns the volume
        a.files.write("/home/user/data/note.txt", "written by a")
        assert b.files.read("/mnt/shared/note.txt") == "written by a"
        assert b.commands.run("echo from-b > /mnt/shared/b.txt && stat -c %U:%G /mnt/shared /mnt/shared/b.txt").stdout \
            .split() == ["user:user", "user:user"]
        assert a.files.read("/home/user/data/b.txt") == "from-b\n"
        fstype, options = a.commands.run("findmnt -no FSTYPE,OPTIONS /home/user/data").stdout.split()
        assert fstype == "ext4" and {"rw", "nosuid", "nodev", "idmapped"} <= set(options.split(","))
        info = httpx.get(f"{sdk.url}/sandboxes/{a.sandbox_id}", headers=headers).json()
        assert info["volumeMounts"] == [{"name": vol.name, "path": "/home/user/data"}]

        gone = httpx.delete(f"{sdk.url}/volumes/{vol.volume_id}", headers=headers)
        assert gone.status_code == 409 and a.sandbox_id in gone.json()["message"]

        a.kill()
        b.kill()
        # the done-when item: written by one sandbox, read by another after the first is killed
        c = Sandbox.create(timeout=300, volume_mounts={"/data/v": vol})
        sandboxes.append(c)
        assert c.files.read("/data/v/note.txt") == "written by a"

        # a filesystem-mode pause stops every process; the resume mounts the volume again
        assert httpx.post(f"{sdk.url}/sandboxes/{c.sandbox_id}/pause", json={"memory": False},
                          headers=headers, timeout=60).status_code == 204
        assert httpx.delete(f"{sdk.url}/volumes/{vol.volume_id}", headers=headers).status_code == 409
        c = Sandbox.connect(c.sandbox_id, timeout=300)
        sandboxes[-1] = c
        assert c.files.read("/data/v/note.txt") == "written by a"
        c.files.write("/data/v/after-resume.txt", "still mounted")

        # a fork shares the volume: what the fork writes, its source reads
        [fork] = c.fork(count=1, timeout=120)
        assert isinstance(fork, Sandbox)
        sandboxes.append(fork)
        assert fork.files.read("/data/v/after-resume.txt") == "still mounted"
        fork.files.write("/data/v/from-fork.txt", "shared, not copied")
        assert c.files.read("/data/v/from-fork.txt") == "shared, not copied"
    finally:
        for s in sandboxes:
            s.kill()
    assert Volume.destroy(vol.volume_id) is True
    with pytest.raises(VolumeNotFoundException):
        Volume.get_info(vol.volume_id)
    assert Volume.destroy(vol.volume_id) is False
    assert _loops_of(vol.volume_id) == []


def test_a_full_volume_is_enospc_in_it_and_nowhere_else(sdk) -> None:  # type: ignore[no-untyped-def]
    headers = {"X-API-Key": sdk.api_key}
    res = httpx.post(f"{sdk.url}/volumes", json={"name": _name(), "corral": {"sizeMB": 16}}, headers=headers)
    assert res.status_code == 201
    vid, name = res.json()["volumeID"], res.json()["name"]
    sbx = Sandbox.create(timeout=120, volume_mounts={"/home/user/small": name})
    try:
        fill = sbx.commands.run("dd if=/dev/zero of=/home/user/small/fill bs=1M count=40 2>&1; echo rc=$?")
        assert "No space left on device" in fill.stdout and "rc=1" in fill.stdout
        size_mb = int(sbx.commands.run("df -m --output=size /home/user/small | tail -1").stdout)
        assert 8 <= size_mb <= 16    # the quota, less ext4's journal and metadata
        # the sandbox's own disk still takes writes
        assert sbx.commands.run("echo ok > /home/user/outside.txt && cat /home/user/outside.txt").stdout == "ok\n"
    finally:
        sbx.kill()
    assert httpx.delete(f"{sdk.url}/volumes/{vid}", headers=headers).status_code == 204


def test_paths_inside_a_volume_resolve_inside_each_sandbox(sdk) -> None:  # type: ignore[no-untyped-def]
    """Symlinks a sandbox plants in a volume resolve in the root of whichever sandbox follows
    them, never on the host; a mount path through a symlink (from a snapshot's layer) is refused
    instead of covering what the link points at."""
    headers = {"X-API-Key": sdk.api_key}
    vol = Volume.create(_name())
    sandboxes: list[Sandbox] = []
    try:
        a = Sandbox.create(timeout=300, volume_mounts={"/home/user/v": vol})
        sandboxes.append(a)
        a.commands.run("ln -s /etc/hostname /home/user/v/abs && ln -s ../../../../../../etc/hostname /home/user/v/rel")
        b = Sandbox.create(timeout=300, volume_mounts={"/mnt/v": vol})
        sandboxes.append(b)
        for link in ("abs", "rel"):
            assert b.files.read(f"/mnt/v/{link}").strip() == b.sandbox_id     # b's own /etc/hostname
            assert b.commands.run(f"cat /mnt/v/{link}").stdout.strip() == b.sandbox_id
        # a link in a snapshot's layer on the way to a mount path: the create fails, /etc is intact
        a.commands.run("ln -s /etc /home/user/etc-link", user="root")
        snap = httpx.post(f"{sdk.url}/sandboxes/{a.sandbox_id}/snapshots", json={"memory": False},
                          headers=headers, timeout=120).json()["snapshotID"]
        bad = httpx.post(f"{sdk.url}/sandboxes", headers=headers, timeout=120, json={
            "templateID": snap, "volumeMounts": [{"name": vol.name, "path": "/home/user/etc-link/cron.d"}]})
        assert bad.status_code >= 400 and "symlink" in bad.json()["message"], bad.text
        ok = httpx.post(f"{sdk.url}/sandboxes", headers=headers, timeout=120, json={
            "templateID": snap, "volumeMounts": [{"name": vol.name, "path": "/home/user/v"}]})
        assert ok.status_code == 201, ok.text
        c = Sandbox.connect(ok.json()["sandboxID"])
        sandboxes.append(c)
        assert c.commands.run("ls /etc/cron.d >/dev/null 2>&1; readlink /home/user/etc-link").stdout.strip() == "/etc"
        assert c.files.read("/home/user/v/abs").strip() == c.sandbox_id
        httpx.delete(f"{sdk.url}/templates/{snap}", headers=headers)
    finally:
        for s in sandboxes:
            s.kill()
        Volume.destroy(vol.volume_id)


@pytest.mark.skipif(runsc_missing() is not None, reason=runsc_missing() or "")
def test_one_volume_is_shared_between_a_namespace_and_a_gvisor_sandbox(sdk) -> None:  # type: ignore[no-untyped-def]
    vol = Volume.create(_name())
    sandboxes: list[Sandbox] = []
    try:
        ns = Sandbox.create(timeout=300, volume_mounts={"/home/user/v": vol})
        sandboxes.append(ns)
        gv = Sandbox.create(timeout=300, volume_mounts={"/mnt/v": vol}, metadata={"corral.isolation": "gvisor"})
        sandboxes.append(gv)
        info = httpx.get(f"{sdk.url}/sandboxes/{gv.sandbox_id}", headers={"X-API-Key": sdk.api_key}).json()
        assert info["isolation"] == "gvisor" and info["volumeMounts"] == [{"name": vol.name, "path": "/mnt/v"}]
        ns.files.write("/home/user/v/from-ns.txt", "namespace tier")
        assert gv.files.read("/mnt/v/from-ns.txt") == "namespace tier"
        assert gv.commands.run("echo gvisor tier > /mnt/v/from-gv.txt && id -un").stdout.strip() == "user"
        assert ns.files.read("/home/user/v/from-gv.txt") == "gvisor tier\n"
        assert ns.commands.run("stat -c %U /home/user/v/from-gv.txt").stdout.strip() == "user"
        gv.kill()
        assert ns.files.read("/home/user/v/from-gv.txt") == "gvisor tier\n"   # outlives the gVisor sandbox
    finally:
        for s in sandboxes:
            s.kill()
        Volume.destroy(vol.volume_id)
    assert _loops_of(vol.volume_id) == []


def test_volume_file_operations_through_the_sdk_stay_inside_the_volume(sdk, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("E2B_VOLUME_API_URL", sdk.url)     # where the SDK sends volume content calls
    vol = Volume.create(_name())
    sbx: Sandbox | None = None
    try:
        with pytest.raises(VolumePathNotFoundException):
            vol.write_file("/notes/a.txt", "no parent yet")
        assert vol.make_dir("/notes").type.value == "directory"
        written = vol.write_file("/notes/a.txt", "hello", mode=0o600)
        assert (written.size, written.mode, written.uid) == (5, 0o600, 0)
        with pytest.raises(VolumeException):
            vol.write_file("/notes/a.txt", "again")         # exists: only with force
        vol.write_file("/notes/a.txt", "hello volume", force=True, uid=1000, gid=1000)
        assert vol.read_file("/notes/a.txt") == "hello volume"
        assert b"".join(vol.read_file("/notes/a.txt", format="stream")) == b"hello volume"
        assert [e.name for e in vol.list("/")] == ["lost+found", "notes"]
        assert "a.txt" in [e.name for e in vol.list("/", depth=2)]
        assert vol.make_dir("/deep/er/est", force=True).path == "/deep/er/est"
        assert vol.update_metadata("/notes/a.txt", mode=0o640).mode == 0o640
        assert vol.exists("/notes/a.txt") and not vol.exists("/nope")

        # a sandbox mounting it sees the same files at once, and plants links and a FIFO
        sbx = Sandbox.create(timeout=120, volume_mounts={"/mnt/v": vol})
        assert sbx.commands.run("cat /mnt/v/notes/a.txt; echo; stat -c %U /mnt/v/notes/a.txt").stdout == "hello volume\nuser\n"
        sbx.commands.run("ln -s /etc/passwd /mnt/v/abs && ln -s ../../../../../etc/hostname /mnt/v/rel "
                         "&& mkfifo /mnt/v/fifo")
        link = vol.get_info("/abs")
        assert link.type.value == "symlink" and link.target == "/etc/passwd"
        host_passwd = open("/etc/passwd").read()
        for path in ("/abs", "/rel", "/fifo", "/../../../etc/passwd"):
            try:
                got = vol.read_file(path)
            except VolumePathNotFoundException:
                continue
            assert got != host_passwd and "root:x:0:0" not in got, path
        # the wrong token opens nothing
        with pytest.raises(Exception):   # noqa: B017 - the SDK maps 401 to AuthenticationException
            Volume(vol.volume_id, vol.name, token="not-the-token").read_file("/notes/a.txt")
        vol.remove("/notes")
        assert not vol.exists("/notes/a.txt")
        assert sbx.commands.run("ls /mnt/v").stdout.split() == ["abs", "deep", "fifo", "lost+found", "rel"]
    finally:
        if sbx is not None:
            sbx.kill()
        Volume.destroy(vol.volume_id)
    assert _loops_of(vol.volume_id) == []
