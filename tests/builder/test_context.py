"""The build context is the only host tree COPY reads: escapes are refused, digests track content."""

import os
import stat
from pathlib import Path

import pytest

from corral.builder.context import BuildContext, BuildContextError


@pytest.fixture
def ctx(tmp_path: Path) -> BuildContext:
    root = tmp_path / "ctx"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "sub" / "b.txt").write_text("b")
    (tmp_path / "outside.txt").write_text("secret")
    return BuildContext(root)


@pytest.mark.parametrize("pattern", ["../outside.txt", "sub/../../outside.txt", "/etc/passwd", ".."])
def test_paths_leaving_the_context_are_refused(ctx: BuildContext, pattern: str) -> None:
    with pytest.raises(BuildContextError):
        ctx.resolve(pattern)


def test_symlinks_pointing_out_are_refused(ctx: BuildContext, tmp_path: Path) -> None:
    os.symlink(tmp_path / "outside.txt", ctx.root / "link")
    os.symlink("/etc", ctx.root / "sub" / "etc")
    os.symlink("../..", ctx.root / "dirlink")
    with pytest.raises(BuildContextError, match="outside the build context"):
        ctx.resolve("link")
    # Met inside a copied directory, a link is copied as a link (as E2B does), never followed:
    walked = {rel: st for rel, _, st in ctx.walk(ctx.resolve("sub")[0])}
    assert stat.S_ISLNK(walked["etc"].st_mode) and stat.S_ISREG(walked["b.txt"].st_mode)
    with pytest.raises(BuildContextError, match="outside the build context"):
        ctx.resolve("dirlink/outside.txt")


def test_inside_symlinks_globs_and_dockerignore(ctx: BuildContext) -> None:
    os.symlink("a.txt", ctx.root / "alias")
    assert [s.rel for s in ctx.resolve("*.txt")] == ["a.txt"]
    assert ctx.resolve("alias")[0].path == ctx.root / "a.txt"
    (ctx.root / ".dockerignore").write_text("sub/b.txt\n")
    ctx2 = BuildContext(ctx.root)
    with pytest.raises(BuildContextError, match="dockerignore"):
        ctx2.resolve("sub/b.txt")
    assert [rel for rel, _, _ in ctx2.walk(ctx2.resolve("sub")[0])] == []
    with pytest.raises(BuildContextError, match="does not exist"):
        ctx.resolve("nope")
    with pytest.raises(BuildContextError, match="matches no file"):
        ctx.resolve("*.nope")


def test_digest_follows_content_not_timestamps(ctx: BuildContext) -> None:
    src = ctx.resolve("sub")
    before = ctx.digest(src)
    os.utime(ctx.root / "sub" / "b.txt", (1, 1))
    assert ctx.digest(src) == before
    (ctx.root / "sub" / "b.txt").write_text("changed")
    assert ctx.digest(src) != before
