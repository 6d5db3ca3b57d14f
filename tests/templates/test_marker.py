"""The build marker is read from trees a sandbox controls: it must never follow what it finds there."""

import os

from corral.templates.marker import read_marker, write_marker


def test_write_then_read(tmp_path):
    assert write_marker(tmp_path, "base 0123abcd")
    assert read_marker(tmp_path) == "base 0123abcd"
    assert write_marker(tmp_path, "base ffff")           # replaced, not appended
    assert read_marker(tmp_path) == "base ffff"


def test_write_creates_etc_but_never_follows_a_symlinked_etc(tmp_path):
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    assert write_marker(rootfs, "x 1") and (rootfs / "etc" / "corral-template").is_file()
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, hostile / "etc")
    assert write_marker(hostile, "x 1") is False
    assert list(outside.iterdir()) == []


def test_read_refuses_symlinks_fifos_and_huge_files(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("base 1")
    a = tmp_path / "a"
    (a / "etc").mkdir(parents=True)
    os.symlink(secret, a / "etc" / "corral-template")
    assert read_marker(a) is None
    b = tmp_path / "b"
    b.mkdir()
    os.symlink(tmp_path / "a" / "etc", b / "etc")
    assert read_marker(b) is None
    c = tmp_path / "c"
    (c / "etc").mkdir(parents=True)
    os.mkfifo(c / "etc" / "corral-template")
    assert read_marker(c) is None                         # and does not block
    d = tmp_path / "d"
    (d / "etc").mkdir(parents=True)
    (d / "etc" / "corral-template").write_text("x" * 10_000)
    assert read_marker(d) is None
    assert read_marker(tmp_path / "missing") is None
