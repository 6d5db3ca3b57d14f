import os
import subprocess
import sys

import pytest

from corral.templates import TemplateError, TemplateNameError, TemplateNotFound, TemplateStore
from corral.templates.store import ROOT_ENV, DEFAULT_ROOT

from .helpers import make_template, store_entries


@pytest.fixture
def store(tmp_path):
    return TemplateStore(tmp_path / "templates")


def test_root_comes_from_argument_then_env_then_default(tmp_path, monkeypatch):
    monkeypatch.delenv(ROOT_ENV, raising=False)
    assert TemplateStore().root == DEFAULT_ROOT
    monkeypatch.setenv(ROOT_ENV, str(tmp_path / "env"))
    assert TemplateStore().root == tmp_path / "env"
    assert TemplateStore(tmp_path / "arg").root == tmp_path / "arg"


def test_missing_store_lists_empty_without_creating_it(store):
    assert store.list() == []
    assert not store.root.exists()
    assert not store.exists("base")


def test_list_get_exists_remove(store):
    info = make_template(store, "base", {"usr/bin/tool": "#!/bin/sh\n"})
    make_template(store, "other")
    assert [t.name for t in store.list()] == ["base", "other"]
    got = store.get("base")
    assert got == info and got.rootfs == store.root / "base" / "rootfs"
    assert (got.rootfs / "usr/bin/tool").read_text() == "#!/bin/sh\n"
    assert store.exists("base")

    store.remove("base")
    assert not store.exists("base")
    with pytest.raises(TemplateNotFound, match="'base' not found"):
        store.get("base")
    # nothing of it is left anywhere in the store, trash included
    assert store_entries(store.root) == ["other"]


def test_remove_unknown_is_not_found(store):
    with pytest.raises(TemplateNotFound):
        store.remove("nope")


@pytest.mark.parametrize("name", ["../etc", "..", "/etc/passwd", "a/../../b", ".trash", ".build-x-1-y"])
def test_names_never_leave_the_store(store, name):
    for call in (store.get, store.remove, store.path_for):
        with pytest.raises(TemplateNameError):
            call(name)
    assert store.exists(name) is False


def test_a_symlink_in_the_store_is_not_a_template(store, tmp_path):
    # A complete template outside the store, linked in: it must be neither read nor deleted.
    outside = tmp_path / "outside"
    make_template(TemplateStore(outside), "evil")
    store.root.mkdir(parents=True)
    os.symlink(outside / "evil", store.root / "evil")
    assert store.list() == []
    assert not store.exists("evil")
    with pytest.raises(TemplateNotFound):
        store.remove("evil")
    assert (outside / "evil" / "rootfs" / "etc" / "hostname").exists()


def test_a_symlinked_rootfs_is_not_a_template(store, tmp_path):
    make_template(store, "base")
    rootfs = store.root / "base" / "rootfs"
    os.rename(rootfs, tmp_path / "moved")
    os.symlink("/", rootfs)
    assert not store.exists("base")


def test_corrupt_entries_are_skipped_by_list_and_reported_by_get(store):
    make_template(store, "good")
    bad = make_template(store, "bad")
    (bad.path / "template.json").write_text("{not json")
    assert [t.name for t in store.list()] == ["good"]
    with pytest.raises(TemplateError, match="template.json"):
        store.get("bad")


def test_a_template_json_naming_another_template_is_corrupt(store):
    make_template(store, "one")
    two = make_template(store, "two")
    (two.path / "template.json").write_text((store.root / "one" / "template.json").read_text())
    with pytest.raises(TemplateError, match="names template 'one'"):
        store.get("two")


def test_failing_build_leaves_no_directory(store):
    with pytest.raises(RuntimeError, match="boom"):
        with store.stage("base") as stage:
            stage.rootfs.mkdir()
            (stage.rootfs / "half").write_text("x")
            raise RuntimeError("boom")
    assert store_entries(store.root) == []


def test_uncommitted_stage_is_removed(store):
    with store.stage("base") as stage:
        stage.rootfs.mkdir()
        path = stage.path
    assert not path.exists()
    assert not store.exists("base")


def test_stage_is_private_until_published(store):
    with store.stage("base") as stage:
        assert stage.path.parent == store.root and stage.path.name.startswith(".build-base-")
        assert stage.path.stat().st_mode & 0o777 == 0o700
        assert store.list() == []


def test_commit_without_rootfs_is_refused(store):
    from corral.templates.info import TemplateInfo

    with pytest.raises(TemplateError, match="nothing to publish"):
        with store.stage("base") as stage:
            stage.commit(TemplateInfo("base", "t", "h", 0, "0.6.4", path=stage.path))
    assert store_entries(store.root) == []


def test_rebuild_replaces_the_template_and_deletes_the_old_tree(store):
    make_template(store, "base", {"version": "1"}, recipe_hash="sha256:one")
    old_inode = os.stat(store.root / "base" / "rootfs" / "version").st_ino
    new = make_template(store, "base", {"version": "2"}, recipe_hash="sha256:two")
    assert (new.rootfs / "version").read_text() == "2"
    assert store.get("base").recipe_hash == "sha256:two"
    assert store_entries(store.root) == ["base"]
    assert os.stat(new.rootfs / "version").st_ino != old_inode


def test_stale_build_of_a_dead_process_is_purged(store):
    dead = subprocess.Popen(["true"])
    dead.wait()
    store.root.mkdir(parents=True)
    stale = store.root / f".build-base-{dead.pid}-abcd1234"
    (stale / "rootfs").mkdir(parents=True)
    live = store.root / f".build-other-{os.getpid()}-abcd1234"
    live.mkdir()
    with store.stage("x"):
        pass
    assert not stale.exists()
    assert live.exists()


def test_aliases(store):
    make_template(store, "base")
    make_template(store, "ci")
    store.set_alias("code-interpreter-v1", "ci")
    assert store.get("code-interpreter-v1").name == "ci"
    assert store.exists("code-interpreter-v1")
    # moving an alias takes it away from its previous template
    store.set_alias("code-interpreter-v1", "base")
    assert store.get("code-interpreter-v1").name == "base"
    assert store.get("ci").aliases == ()
    with pytest.raises(TemplateError, match="is a template name"):
        store.set_alias("ci", "base")
    with pytest.raises(TemplateError, match="own name"):
        store.set_alias("base", "base")
    with pytest.raises(TemplateNameError):
        store.set_alias("../x", "base")
    with pytest.raises(TemplateNotFound):
        store.set_alias("x", "missing")
    store.remove_alias("code-interpreter-v1")
    assert not store.exists("code-interpreter-v1")
    with pytest.raises(TemplateNotFound):
        store.remove_alias("code-interpreter-v1")
    # the rootfs is untouched by alias changes
    assert (store.get("base").rootfs / "etc/hostname").read_text() == "sandbox\n"


def test_lock_is_reentrant_here_and_exclusive_for_other_processes(store):
    probe = (
        "import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
        "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept BlockingIOError:\n    sys.exit(3)\n"
    )
    with store.lock():
        with store.lock():
            pass
        held = subprocess.run([sys.executable, "-c", probe, str(store.root)])
        assert held.returncode == 3
    free = subprocess.run([sys.executable, "-c", probe, str(store.root)])
    assert free.returncode == 0


@pytest.mark.root
def test_a_retired_template_stays_while_mounted_and_goes_after(store, tmp_path):
    # Marked builds, as real ones are: without a marker the store must assume any older overlay
    # namespace (such as another test's live sandbox) may use the tree, and would rightly keep it.
    make_template(store, "base", {"version": "1", "etc/corral-template": "test-build-1\n"})
    mnt = tmp_path / "sandbox-root"
    mnt.mkdir()
    subprocess.run(["mount", "--bind", "-o", "ro", str(store.root / "base" / "rootfs"), str(mnt)], check=True)
    try:
        make_template(store, "base", {"version": "2", "etc/corral-template": "test-build-2\n"})  # rebuild while a sandbox runs
        assert (mnt / "version").read_text() == "1"              # the sandbox still sees its files
        assert store.get("base").rootfs.joinpath("version").read_text() == "2"
        store.remove("base")
        busy = store.purge_trash()
        assert len(busy) == 1 and (busy[0] / "rootfs" / "version").read_text() == "1"
        assert not store.exists("base")
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
    assert store.purge_trash() == []
    assert store_entries(store.root) == []


_SANDBOX_LIKE = """
import os, subprocess, sys
lower, upper, work, merged = sys.argv[1:5]
subprocess.run(["mount", "--make-rprivate", "/"], check=True)
subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                f"lowerdir={lower},upperdir={upper},workdir={work}", merged], check=True)
os.chroot(merged)
os.chdir("/")
print("ready", flush=True)
sys.stdin.readline()
"""


def _sandbox_like(tmp_path, lower, tag):
    """A process in its own mount namespace whose root is an overlay over `lower`, like a sandbox."""
    dirs = [tmp_path / f"{tag}-{d}" for d in ("upper", "work", "merged")]
    for d in dirs:
        d.mkdir()
    proc = subprocess.Popen(["unshare", "-m", sys.executable, "-c", _SANDBOX_LIKE, str(lower), *map(str, dirs)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.root
def test_a_sandbox_on_an_overlay_keeps_its_retired_template_and_only_that_one(store, tmp_path):
    make_template(store, "base", {"version": "1"})
    make_template(store, "other")
    user = _sandbox_like(tmp_path, store.get("base").rootfs, "a")
    bystander = _sandbox_like(tmp_path, store.get("other").rootfs, "b")
    try:
        store.remove("base")
        busy = store.purge_trash()
        assert len(busy) == 1 and (busy[0] / "rootfs" / "version").read_text() == "1"
        make_template(store, "other", {"v": "2"})        # retire `other`: its user is still running
        assert len(store.purge_trash()) == 2
    finally:
        for proc in (user, bystander):
            proc.stdin.close()
            proc.wait()
    assert store.purge_trash() == []
    assert store_entries(store.root) == ["other"]


@pytest.mark.root
def test_a_retired_template_unused_by_running_sandboxes_is_deleted_at_once(store, tmp_path):
    make_template(store, "busy-one")
    make_template(store, "base")
    sandbox = _sandbox_like(tmp_path, store.get("busy-one").rootfs, "a")
    try:
        store.remove("base")                     # an older sandbox runs, but on another template
        assert store_entries(store.root) == ["busy-one"]
    finally:
        sandbox.stdin.close()
        sandbox.wait()
