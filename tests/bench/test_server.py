from pathlib import Path

import pytest

from corral.bench.server import LocalServer, ServerError, free_port, new_api_key


def test_api_keys_are_fresh_and_well_formed() -> None:
    a, b = new_api_key(), new_api_key()
    assert a != b and a.startswith("e2b_") and len(a) == 44


def test_free_port_is_bindable() -> None:
    import socket

    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_stop_keeps_a_data_dir_that_still_holds_sandboxes(tmp_path: Path) -> None:
    srv = LocalServer()
    srv.root = tmp_path / "bench"
    (srv.root / "data" / "sandboxes" / "abc123").mkdir(parents=True)
    with pytest.raises(ServerError, match="abc123"):
        srv.stop()
    assert (srv.root / "data" / "sandboxes" / "abc123").is_dir()  # kept for inspection, not deleted


def test_stop_removes_a_clean_data_dir(tmp_path: Path) -> None:
    srv = LocalServer()
    root = tmp_path / "bench"
    (root / "data" / "sandboxes").mkdir(parents=True)
    srv.root = root
    srv.stop()
    assert not root.exists() and srv.root is None


def test_a_server_that_cannot_start_reports_its_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    if os.geteuid() != 0:
        pytest.skip("starting the server needs root")
    monkeypatch.setenv("CORRAL_TIER", "no-such-tier")
    srv = LocalServer(startup_timeout_s=60)
    with pytest.raises(ServerError, match="no-such-tier|unknown isolation tier|exited"):
        srv.start()
    assert srv.root is None  # temp dir removed even on failure
