"""The real `base` template, as `make template` built it: users, directories, tools, ownership.

Not rebuilt here (`make test` builds it before pytest); skipped with a reason if it is absent.
"""

import os
import stat

import pytest

from corral.templates import TemplateStore
from corral.templates.recipe import BASE_RECIPE

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def base():
    store = TemplateStore()
    if not store.exists("base"):
        pytest.skip(f"no base template in {store.root}; run `make template`")
    return store.get("base")


def _entries(path, name):
    rows = [line.split(":") for line in path.read_text().splitlines()]
    return {r[0]: r for r in rows}[name]


def test_info_matches_the_current_recipe(base):
    assert base.recipe_hash == BASE_RECIPE.hash, "the base template is stale: run `make template`"
    assert 50_000_000 < base.size_bytes < 400_000_000
    assert base.build_log_path.is_file()


def test_users(base):
    etc = base.rootfs / "etc"
    assert _entries(etc / "passwd", "root")[2:4] == ["0", "0"]
    user = _entries(etc / "passwd", "user")
    assert user[2:4] == ["1000", "1000"]
    assert user[5:7] == ["/home/user", "/bin/bash"]
    assert _entries(etc / "group", "user")[2] == "1000"
    home = os.stat(base.rootfs / "home/user")
    assert (home.st_uid, home.st_gid) == (1000, 1000)


def test_data_and_output_belong_to_user(base):
    for name in ("data", "output"):
        st = os.lstat(base.rootfs / name)
        assert stat.S_ISDIR(st.st_mode)
        assert (st.st_uid, st.st_gid) == (1000, 1000)
        assert os.listdir(base.rootfs / name) == []


@pytest.mark.parametrize("tool", [
    "usr/bin/bash", "usr/bin/python3", "usr/bin/pip3", "usr/bin/curl", "usr/bin/git", "usr/bin/ps",
    "usr/bin/killall", "usr/bin/less", "usr/bin/find", "usr/sbin/ip", "usr/bin/ls", "usr/bin/mount",
])
def test_tools(base, tool):
    path = base.rootfs / tool
    assert path.exists(), tool
    assert os.access(path, os.X_OK)


def test_certificates_and_pip_config(base):
    assert (base.rootfs / "etc/ssl/certs/ca-certificates.crt").stat().st_size > 10_000
    assert "break-system-packages = true" in (base.rootfs / "etc/pip.conf").read_text()


def test_lean(base):
    assert not (base.rootfs / "usr/bin/sudo").exists()
    assert not any((base.rootfs / "usr/share/man").glob("*/*"))
    assert list((base.rootfs / "usr/share/locale").iterdir()) in ([], [base.rootfs / "usr/share/locale/locale.alias"])
    docs = [p.name for p in (base.rootfs / "usr/share/doc/bash").iterdir()]
    assert docs == ["copyright"]


def test_owned_by_ordinary_host_ids_and_no_setuid(base):
    """Files are owned by host uids 0..65535 (the idmapped mount's source range), none setuid."""
    bad_owner, setid = [], []
    for dirpath, dirnames, filenames in os.walk(base.rootfs):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            if st.st_uid > 65535 or st.st_gid > 65535:
                bad_owner.append(os.path.join(dirpath, name))
            if stat.S_ISREG(st.st_mode) and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
                setid.append(os.path.join(dirpath, name))
    assert bad_owner == []
    assert setid == []
    root = os.stat(base.rootfs / "etc/passwd")
    assert (root.st_uid, root.st_gid) == (0, 0)


def test_published_tree_carries_its_build_marker(base):
    from corral.templates.marker import read_marker

    marker = read_marker(base.rootfs)
    assert marker is not None and marker.startswith("base ")
