"""The official e2b SDK against the daemon, using the SDK's own debug mode (no control plane).

With E2B_DEBUG=true the SDK talks to envd at http://localhost:49983 directly, so this checks
wire compatibility of every envd call the SDK makes without any fake server in between.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator

import pytest

from tests.envd.helpers import Daemon, start_daemon, stop_daemon

pytestmark = [pytest.mark.root, pytest.mark.e2e]
PORT = 49983


@pytest.fixture
def debug_daemon(monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", PORT)) == 0:
            pytest.skip(f"port {PORT} is in use on loopback")
    d = start_daemon(token=None, tcp_port=PORT)
    monkeypatch.setenv("E2B_DEBUG", "true")
    yield d
    stop_daemon(d)


def test_sdk_commands_files_watch_pty(debug_daemon: Daemon) -> None:
    from e2b import CommandExitException, PtySize, Sandbox, TimeoutException

    home = debug_daemon.sandbox.user_home
    sbx = Sandbox.create()
    r = sbx.commands.run("echo hi; id -u; pwd", envs={"X": "y"})
    assert r.stdout.split() == ["hi", "1000", str(home)] and r.exit_code == 0
    assert sbx.commands.run("id -u", user="root").stdout == "0\n"
    with pytest.raises(CommandExitException) as e:
        sbx.commands.run("exit 3")
    assert e.value.exit_code == 3
    with pytest.raises(TimeoutException):
        sbx.commands.run("sleep 30", timeout=1)

    info = sbx.files.write(f"{home}/sdk/x.txt", "content")
    assert info.path == f"{home}/sdk/x.txt"
    assert sbx.files.read(f"{home}/sdk/x.txt") == "content"
    assert os.stat(f"{home}/sdk/x.txt").st_uid == 1000
    assert [(e.name, e.type.value) for e in sbx.files.list(f"{home}/sdk")] == [("x.txt", "file")]
    assert sbx.files.exists(f"{home}/sdk/x.txt") and not sbx.files.exists(f"{home}/nope")
    assert sbx.files.get_info(f"{home}/sdk/x.txt").size == 7
    assert sbx.files.make_dir(f"{home}/sdk/d") is True and sbx.files.make_dir(f"{home}/sdk/d") is False
    assert sbx.files.rename(f"{home}/sdk/x.txt", f"{home}/sdk/y.txt").path == f"{home}/sdk/y.txt"
    sbx.files.remove(f"{home}/sdk")
    assert not os.path.exists(f"{home}/sdk")

    h = sbx.commands.run("sleep 100", background=True)
    assert h.pid in [p.pid for p in sbx.commands.list()]
    assert sbx.commands.kill(h.pid) is True and sbx.commands.kill(999999) is False
    h = sbx.commands.run("cat", background=True, stdin=True)
    sbx.commands.send_stdin(h.pid, "abc\n")
    sbx.commands.close_stdin(h.pid)
    assert h.wait().stdout == "abc\n"

    w = sbx.files.watch_dir(str(home), recursive=True)
    (home / "watched.txt").write_text("x")
    names: list[str] = []
    for _ in range(100):
        names += [e.name for e in w.get_new_events()]
        if "watched.txt" in names:
            break
        time.sleep(0.02)
    w.stop()
    assert "watched.txt" in names

    chunks: list[bytes] = []
    pty = sbx.pty.create(PtySize(rows=24, cols=80))
    sbx.pty.send_stdin(pty.pid, b"echo pty-$((40+2)); exit\n")
    assert pty.wait(on_pty=chunks.append).exit_code == 0
    assert b"pty-42" in b"".join(chunks)
    assert sbx.is_running()
