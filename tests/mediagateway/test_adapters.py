"""The SONA adapter store: versioned, never overwritten, user ids cannot leave the root."""

from __future__ import annotations

import pytest

from corral.mediagateway import ConfigError, DirectoryAdapterStore


def test_versions_are_kept(tmp_path):
    store = DirectoryAdapterStore(tmp_path)
    assert store.latest("u01") is None
    store.put("u01", 1, b"one", {"version": 1})
    store.put("u01", 2, b"two", {"version": 2})
    assert store.versions("u01") == [1, 2]
    assert store.latest("u01") == (2, b"two")
    assert (tmp_path / "u01" / "v000001.json").is_file()


def test_an_existing_version_is_never_replaced(tmp_path):
    store = DirectoryAdapterStore(tmp_path)
    store.put("u01", 1, b"one", {})
    with pytest.raises(ConfigError, match="already exists"):
        store.put("u01", 1, b"other", {})
    assert store.latest("u01") == (1, b"one")
    assert sorted(p.name for p in (tmp_path / "u01").iterdir()) == ["v000001.json", "v000001.pt"]


@pytest.mark.parametrize("user", ["../etc", "a/b", "..", ".hidden", "", "x" * 65, "u 1", "/abs"])
def test_user_ids_cannot_become_paths(tmp_path, user):
    store = DirectoryAdapterStore(tmp_path / "root")
    with pytest.raises(ConfigError):
        store.put(user, 1, b"x", {})
    assert not (tmp_path / "etc").exists() and list(tmp_path.iterdir()) in ([], [tmp_path / "root"])
