"""Host-side writes into a layer tree resolve symlinks inside the tree, never on the host."""

import os
from pathlib import Path

import pytest

from corral.builder import copying, rootpath
from corral.builder.context import BuildContext


def test_absolute_and_dotdot_symlinks_stay_in_the_tree(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    os.symlink("/etc", tree / "app")            # planted by an earlier RUN step
    os.symlink("../../../../..", tree / "up")
    assert rootpath.resolve(str(tree), "/app/x") == str(tree / "etc" / "x")
    assert rootpath.resolve(str(tree), "/up/etc/x") == str(tree / "etc" / "x")
    assert rootpath.resolve(str(tree), "/../../etc/x") == str(tree / "etc" / "x")
    os.symlink("loop", tree / "loop")
    with pytest.raises(rootpath.RootPathError, match="too many levels"):
        rootpath.resolve(str(tree), "/loop/x")


def test_copy_through_a_planted_symlink_writes_inside_the_tree(tmp_path: Path) -> None:
    ctx_dir = tmp_path / "ctx"
    ctx_dir.mkdir()
    (ctx_dir / "f").write_text("payload")
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    host_target = tmp_path / "host-file"
    os.symlink(str(host_target), tree / "etc" / "f")      # absolute host path, as a hostile step would
    os.symlink("/etc", tree / "app")
    ctx = BuildContext(ctx_dir)
    copying.copy_into(ctx, ctx.resolve("f"), str(tree), "/app/f")
    assert not host_target.exists()
    assert (tree / "etc" / "f").read_text() == "payload" and not (tree / "etc" / "f").is_symlink()


def test_copy_never_writes_through_a_hard_link(tmp_path: Path) -> None:
    ctx_dir = tmp_path / "ctx"
    ctx_dir.mkdir()
    (ctx_dir / "f").write_text("new")
    parent = tmp_path / "parent"
    parent.mkdir()
    (parent / "f").write_text("old")
    tree = tmp_path / "tree"
    tree.mkdir()
    os.link(parent / "f", tree / "f")                      # as cp -al shares it
    ctx = BuildContext(ctx_dir)
    copying.copy_into(ctx, ctx.resolve("f"), str(tree), "/f")
    assert (parent / "f").read_text() == "old" and (tree / "f").read_text() == "new"
