"""/etc/passwd and /etc/group parsing without NSS, and path resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.guest import users
from corral.wire.framing import ConnectError


@pytest.fixture
def etc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "passwd").write_text(
        "# comment\nroot:x:0:0:root:/root:/bin/bash\nuser:x:1000:1000::/home/user:/bin/bash\n"
        "broken:x:abc:1::/:/bin/sh\nshort:x:5\n")
    (tmp_path / "group").write_text("root:x:0:\nuser:x:1000:\ndocker:x:999:user,bob\nwheel:x:10:bob\n")
    monkeypatch.setattr(users, "ETC_ROOT", str(tmp_path))
    return tmp_path


def test_lookup(etc: Path) -> None:
    u = users.lookup_user("user")
    assert (u.uid, u.gid, u.home, u.shell) == (1000, 1000, "/home/user", "/bin/bash")
    assert u.groups == (1000, 999)
    assert users.lookup_user("root").groups == (0,)
    assert users.name_of_uid(1000) == "user" and users.name_of_uid(4242) == "4242"
    assert users.name_of_gid(999) == "docker" and users.name_of_gid(7) == "7"


@pytest.mark.parametrize("name", ["nobody", "", "broken", "short", "user:x", "root\n"])
def test_unknown_or_malformed_users_are_unauthenticated(etc: Path, name: str) -> None:
    with pytest.raises(ConnectError) as e:
        users.lookup_user(name)
    assert e.value.code == "unauthenticated" and "invalid username" in e.value.message


def test_missing_files_mean_no_users(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users, "ETC_ROOT", str(tmp_path / "none"))
    with pytest.raises(ConnectError):
        users.lookup_user("root")


def test_resolve_path(etc: Path) -> None:
    u = users.lookup_user("user")
    assert users.resolve_path("a/../b.txt", u) == "/home/user/b.txt"
    assert users.resolve_path("~/x", u) == "/home/user/x" and users.resolve_path("~", u) == "/home/user"
    assert users.resolve_path("/etc/../tmp/", u) == "/tmp"
    assert users.resolve_path("rel", u, "/work") == "/work/rel"
    for bad in ("", "a\x00b"):
        with pytest.raises(ConnectError):
            users.resolve_path(bad, u)
