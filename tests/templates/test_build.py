"""The builder around mmdebstrap: atomicity, skipping, failure reporting, cancellation.

These tests put a small stand-in executable where mmdebstrap would be, so that a failing,
hanging or incomplete build can be produced on demand; the real mmdebstrap build is exercised
by `make template` and checked by test_base_rootfs.py.
"""

import asyncio
import os
import stat
import sys
import textwrap

import pytest

from corral.templates import TemplateError, TemplateStore
from corral.templates.build import BuildFailed, build_template, phase_of
from corral.templates.recipe import BASE_RECIPE

from .helpers import store_entries

pytestmark = pytest.mark.root  # build_template refuses to run without root

FAKE = textwrap.dedent("""\
    #!{python}
    import os, pathlib, subprocess, sys, time
    mode = os.environ.get("FAKE_MODE", "ok")
    target = pathlib.Path(sys.argv[sys.argv.index("--") + 2])
    state = pathlib.Path(os.environ["FAKE_STATE"])
    (state / "argv").write_text("\\n".join(sys.argv))
    (state / "pid").write_text(str(os.getpid()))
    print("I: automatically chosen mode: root", flush=True)
    print("I: running apt-get update...", flush=True)
    target.mkdir()
    (target / "half-written").write_text("x")
    if mode == "fail":
        print("E: Unable to locate package no-such-package", flush=True)
        sys.exit(1)
    if mode == "hang":
        child = subprocess.Popen(["sleep", "1000"])
        (state / "child").write_text(str(child.pid))
        print("I: downloading packages with apt...", flush=True)
        time.sleep(1000)
    print("I: downloading packages with apt...", flush=True)
    if mode != "incomplete":
        for rel in {required!r}:
            p = target / rel
            if rel in ("home/user", "data", "output"):
                p.mkdir(parents=True, exist_ok=True)
            else:
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text("stand-in")
    print("I: running --customize-hook in shell: sh -c ...", flush=True)
    print("I: success in 0.1 seconds", flush=True)
""")


@pytest.fixture
def fake(tmp_path, monkeypatch):
    exe = tmp_path / "fake-mmdebstrap"
    exe.write_text(FAKE.format(python=sys.executable, required=BASE_RECIPE.required))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("FAKE_STATE", str(state))
    return exe, state


@pytest.fixture
def store(tmp_path):
    return TemplateStore(tmp_path / "templates")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie still answers kill(0); it is gone for our purposes only if reaped or a zombie
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "Z"


def test_phase_lines_map_to_readable_phases():
    assert phase_of("I: running apt-get update...") == "Reading package lists"
    assert phase_of("I: installing remaining packages inside the chroot...") == "Installing packages"
    assert phase_of("Get:1 http://deb.debian.org ...") is None


async def test_successful_build_publishes_and_records(store, fake, tmp_path):
    exe, state = fake
    phases = []
    result = await build_template(store, mmdebstrap=str(exe), apt_dir=tmp_path / "no-apt",
                                  on_phase=phases.append)
    assert not result.skipped
    info = store.get("base")
    assert info == result.info
    assert info.recipe_hash == BASE_RECIPE.hash
    assert (info.rootfs / "usr/bin/python3").read_text() == "stand-in"
    assert info.size_bytes > 0
    assert "I: running apt-get update" in info.build_log_path.read_text()
    assert phases[0] == "Preparing" and phases[-1] == "Publishing"
    assert "Downloading packages" in phases
    assert store_entries(store.root) == ["base"]
    assert (store.root / "base").stat().st_mode & 0o777 == 0o755
    argv = (state / "argv").read_text().splitlines()
    assert argv[-1].endswith("/rootfs") and "/.build-base-" in argv[-1]   # built next to its place


async def test_present_build_with_same_recipe_is_skipped_and_force_rebuilds(store, fake, tmp_path):
    exe, state = fake
    kw = dict(mmdebstrap=str(exe), apt_dir=tmp_path / "no-apt")
    first = await build_template(store, **kw)
    (state / "pid").unlink()
    again = await build_template(store, **kw)
    assert again.skipped and again.info == first.info
    assert not (state / "pid").exists()                 # mmdebstrap did not run
    forced = await build_template(store, force=True, **kw)
    assert not forced.skipped and (state / "pid").exists()
    assert store_entries(store.root) == ["base"]


async def test_failed_build_leaves_nothing_and_keeps_the_log_tail(store, fake, tmp_path, monkeypatch):
    exe, _ = fake
    monkeypatch.setenv("FAKE_MODE", "fail")
    with pytest.raises(BuildFailed, match="exit status 1") as info:
        await build_template(store, mmdebstrap=str(exe), apt_dir=tmp_path / "no-apt")
    assert "E: Unable to locate package no-such-package" in info.value.log_tail
    assert store_entries(store.root) == []


async def test_failed_rebuild_keeps_the_previous_template(store, fake, tmp_path, monkeypatch):
    exe, _ = fake
    kw = dict(mmdebstrap=str(exe), apt_dir=tmp_path / "no-apt")
    good = await build_template(store, **kw)
    monkeypatch.setenv("FAKE_MODE", "fail")
    with pytest.raises(BuildFailed):
        await build_template(store, force=True, **kw)
    assert store.get("base") == good.info
    assert (good.info.rootfs / "usr/bin/python3").exists()
    assert store_entries(store.root) == ["base"]


async def test_a_build_missing_required_files_is_not_published(store, fake, tmp_path, monkeypatch):
    exe, _ = fake
    monkeypatch.setenv("FAKE_MODE", "incomplete")
    with pytest.raises(BuildFailed, match="lacks usr/bin/bash"):
        await build_template(store, mmdebstrap=str(exe), apt_dir=tmp_path / "no-apt")
    assert store_entries(store.root) == []


async def test_cancelled_build_stops_every_process_and_removes_the_stage(store, fake, tmp_path, monkeypatch):
    exe, state = fake
    monkeypatch.setenv("FAKE_MODE", "hang")
    downloading = asyncio.Event()

    def on_phase(label):
        if label == "Downloading packages":
            downloading.set()

    task = asyncio.create_task(build_template(store, mmdebstrap=str(exe), apt_dir=tmp_path / "no-apt",
                                              on_phase=on_phase))
    await downloading.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _gone(int((state / "pid").read_text()))
    assert _gone(int((state / "child").read_text()))
    assert store_entries(store.root) == []


async def test_missing_mmdebstrap_is_a_clear_error(store):
    with pytest.raises(TemplateError, match="not found; install it"):
        await build_template(store, mmdebstrap="/nonexistent/mmdebstrap")
