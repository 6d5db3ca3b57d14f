import os
import subprocess

import pytest

from corral.templates.trees import _unescape, disk_usage, in_use, mounts_under, remove_tree


def test_unescape_mountinfo_fields():
    assert _unescape(r"/a\040b\011c\134d") == "/a b\tc\\d"
    assert _unescape("/plain") == "/plain"
    assert _unescape("/end\\04") == "/end\\04"


def test_disk_usage_counts_hard_links_once(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 100_000)
    one = disk_usage(tmp_path)
    os.link(tmp_path / "a", tmp_path / "b")
    assert disk_usage(tmp_path) == one
    (tmp_path / "c").write_bytes(b"y" * 100_000)
    assert disk_usage(tmp_path) > one


def test_remove_tree_deletes_a_symlink_not_its_target(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep").write_text("x")
    os.symlink(target, tmp_path / "link")
    remove_tree(tmp_path / "link")
    assert not os.path.lexists(tmp_path / "link")
    assert (target / "keep").exists()
    remove_tree(tmp_path / "missing")  # missing is fine


@pytest.fixture
def bind(tmp_path):
    mounted = []

    def _bind(src, dst):
        subprocess.run(["mount", "--bind", str(src), str(dst)], check=True)
        mounted.append(dst)

    yield _bind
    for dst in reversed(mounted):
        subprocess.run(["umount", "-l", str(dst)], stderr=subprocess.DEVNULL)


@pytest.mark.root
def test_remove_tree_never_deletes_through_a_leftover_mount(tmp_path, bind):
    # A killed build leaves host directories mounted in the tree (mmdebstrap binds /dev, /proc, /sys).
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "device-node-stand-in").write_text("must survive")
    (precious / "pts").mkdir()
    nested = tmp_path / "nested"
    nested.mkdir()
    (nested / "also").write_text("must survive")
    tree = tmp_path / "tree"
    (tree / "dev").mkdir(parents=True)
    bind(precious, tree / "dev")
    bind(nested, tree / "dev" / "pts")          # a mount on top of a mount, like /dev/pts
    assert len(mounts_under(tree)) == 2
    remove_tree(tree)
    assert not tree.exists()
    assert (precious / "device-node-stand-in").read_text() == "must survive"
    assert (nested / "also").read_text() == "must survive"
    assert mounts_under(tmp_path) == []


@pytest.mark.root
def test_in_use_sees_a_bind_mount_of_the_tree_or_a_part_of_it(tmp_path, bind):
    tree = tmp_path / "tree"
    (tree / "usr").mkdir(parents=True)
    elsewhere = tmp_path / "mnt"
    elsewhere.mkdir()
    assert not in_use(tree)
    bind(tree / "usr", elsewhere)
    assert in_use(tree)
    # still found after the tree is renamed (as when a template is moved to the trash)
    renamed = tmp_path / "renamed"
    os.rename(tree, renamed)
    assert in_use(renamed)
    subprocess.run(["umount", str(elsewhere)], check=True)
    assert not in_use(renamed)


@pytest.mark.root
def test_in_use_sees_mounts_in_other_mount_namespaces(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    (tmp_path / "mnt").mkdir()
    script = f"mount --bind {tree} {tmp_path / 'mnt'} && echo ready && read _"
    proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        assert mounts_under(tmp_path / "mnt") == []       # not visible in our namespace ...
        assert in_use(tree)                                # ... but found in the other one
    finally:
        proc.stdin.close()
        proc.wait()
    assert not in_use(tree)
