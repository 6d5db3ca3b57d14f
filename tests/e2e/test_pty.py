"""`sandbox.pty` through the official SDK: an interactive shell on a pseudo-terminal.

The sync SDK hands PTY output to the `on_pty` callback of `handle.wait()` (the JS SDK calls it
`onData`). Each test ends its shell by typing `exit`, so `wait()` returns without any timing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2b import CommandExitException, PtySize, Sandbox
from tests.tiers import tiered_sdk, tiered_server

pytestmark = pytest.mark.e2e

# The SDK's boundary tests run on every isolation tier this machine has (tests/tiers.py).
sdk = tiered_sdk
server = tiered_server


@pytest.fixture(scope="module")
def sbx(sdk) -> Iterator[Sandbox]:  # type: ignore[no-untyped-def]
    sandbox = Sandbox.create(timeout=300)
    yield sandbox
    sandbox.kill()


def _collect(handle) -> tuple[str, int | None]:  # type: ignore[no-untyped-def]
    chunks: list[bytes] = []
    code: int | None
    try:
        code = handle.wait(on_pty=chunks.append).exit_code
    except CommandExitException as exc:
        code = exc.exit_code
    return b"".join(chunks).decode("utf-8", "replace"), code


def test_pty_runs_an_interactive_shell(sbx: Sandbox) -> None:
    handle = sbx.pty.create(PtySize(rows=24, cols=80), timeout=60)
    assert handle.pid > 0
    # The arithmetic is done by the shell, so the echo of what we typed cannot fake the answer.
    sbx.pty.send_stdin(handle.pid, b"echo pty-$((6*7))-ok; tty; exit\n")
    output, code = _collect(handle)
    assert "pty-42-ok" in output
    assert "/dev/pts/" in output
    assert code == 0


def test_pty_has_a_terminal_environment(sbx: Sandbox) -> None:
    handle = sbx.pty.create(PtySize(rows=24, cols=80), timeout=60)
    sbx.pty.send_stdin(handle.pid, b'echo "term=$TERM user=$(whoami)"; exit\n')
    output, _ = _collect(handle)
    assert "term=xterm-256color user=user" in output


def test_pty_resize_is_seen_by_the_shell(sbx: Sandbox) -> None:
    handle = sbx.pty.create(PtySize(rows=24, cols=80), timeout=60)
    sbx.pty.resize(handle.pid, PtySize(rows=31, cols=101))
    sbx.pty.send_stdin(handle.pid, b'echo "size=$(stty size)"; exit\n')
    output, _ = _collect(handle)
    assert "size=31 101" in output


def test_pty_kill(sbx: Sandbox) -> None:
    handle = sbx.pty.create(PtySize(rows=24, cols=80), timeout=0)
    assert handle.pid in {p.pid for p in sbx.commands.list()}
    assert sbx.pty.kill(handle.pid) is True
    _, code = _collect(handle)
    assert code != 0
    assert handle.pid not in {p.pid for p in sbx.commands.list()}
    assert sbx.pty.kill(handle.pid) is False


def test_pty_as_root(sbx: Sandbox) -> None:
    handle = sbx.pty.create(PtySize(rows=24, cols=80), user="root", timeout=60)
    sbx.pty.send_stdin(handle.pid, b"echo uid=$(id -u); exit\n")
    output, _ = _collect(handle)
    assert "uid=0" in output
