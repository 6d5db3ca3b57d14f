"""The relay in front of envd, run on the host: it splices, quiesces (closing every socket it
owns) and binds again when the resume generation changes."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from corral.runtime.gvisor.relay import Relay


def _echo_server(path: str) -> socket.socket:
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(8)

    def loop() -> None:
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            try:
                data = c.recv(100)
                c.sendall(b"echo:" + data)
            except OSError:   # the relay closed its side (quiesce)
                pass
            finally:
                c.close()
    threading.Thread(target=loop, daemon=True).start()
    return srv


def _ask(path: Path, data: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(path))
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(100):
            out += chunk
        return out


def _wait_for(path: Path) -> None:
    for _ in range(2000):
        if path.exists():
            try:
                _ask(path, b"ping")
                return
            except OSError:
                pass
        time.sleep(0.005)
    raise AssertionError(f"{path} never came back")


@pytest.fixture
def relay(tmp_path: Path):  # type: ignore[no-untyped-def]
    run, inner = tmp_path / "run", tmp_path / "inner"
    run.mkdir()
    inner.mkdir()
    srv = _echo_server(str(inner / "envd.sock"))
    r = Relay(str(run), {"envd.sock": str(inner / "envd.sock")}, "ctl.sock", "resume")
    r.start()
    yield r, run
    r.stop()
    srv.close()


def test_splices_to_the_inner_socket(relay) -> None:  # type: ignore[no-untyped-def]
    _, run = relay
    assert _ask(run / "envd.sock", b"hello") == b"echo:hello"


def test_unknown_control_command_is_refused(relay) -> None:  # type: ignore[no-untyped-def]
    _, run = relay
    assert _ask(run / "ctl.sock", b"rm -rf /\n").startswith(b"error")
    assert _ask(run / "envd.sock", b"still") == b"echo:still"


def test_quiesce_closes_every_host_socket_until_resume(relay) -> None:  # type: ignore[no-untyped-def]
    r, run = relay
    with socket.socket(socket.AF_UNIX) as held:  # a connection open across the quiesce
        held.connect(str(run / "envd.sock"))
        assert _ask(run / "ctl.sock", b"quiesce\n") == b"ok\n"
        held.settimeout(10)
        assert held.recv(10) == b""            # the relay closed it
    for name in ("envd.sock", "ctl.sock"):
        with pytest.raises(ConnectionRefusedError):
            _ask(run / name, b"x")
        os.unlink(run / name)                  # what the tier does (the sandbox cannot)
    (run / "resume").write_text("1\n")
    _wait_for(run / "envd.sock")
    assert _ask(run / "envd.sock", b"again") == b"echo:again"
    assert _ask(run / "ctl.sock", b"quiesce\n") == b"ok\n"   # and it can quiesce again


def test_same_generation_does_not_resume(relay) -> None:  # type: ignore[no-untyped-def]
    r, run = relay
    (run / "resume").write_text("7\n")
    assert _ask(run / "ctl.sock", b"quiesce\n") == b"ok\n"
    for name in ("envd.sock", "ctl.sock"):
        os.unlink(run / name)
    # The generation seen at quiesce time is 7 (written before); rewriting 7 must not resume.
    (run / "resume").write_text("7\n")
    time.sleep(0.1)
    assert not (run / "envd.sock").exists()
    (run / "resume").write_text("8\n")
    _wait_for(run / "envd.sock")
