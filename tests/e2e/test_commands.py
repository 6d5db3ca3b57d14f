"""`sandbox.commands` through the official SDK: output, exit codes, env, cwd, users, timeouts,
streaming, background processes, signals and stdin.

One sandbox serves the whole module: every test uses its own file names and process markers,
so the tests do not see each other's state.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from e2b import CommandExitException, Sandbox
from e2b.exceptions import TimeoutException
from tests.tiers import tiered_sdk, tiered_server

pytestmark = pytest.mark.e2e

# The SDK's boundary tests run on every isolation tier this machine has (tests/tiers.py).
sdk = tiered_sdk
server = tiered_server


@pytest.fixture(scope="module")
def sbx(sdk) -> Iterator[Sandbox]:  # type: ignore[no-untyped-def]
    sandbox = Sandbox.create(envs={"CORRAL_SANDBOX_LEVEL": "from-create"}, timeout=600)
    yield sandbox
    sandbox.kill()


def _eventually(predicate, limit_s: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_stdout_and_stderr_are_separate(sbx: Sandbox) -> None:
    result = sbx.commands.run("echo to-out; echo to-err >&2")
    assert result.exit_code == 0
    assert result.stdout == "to-out\n"
    assert result.stderr == "to-err\n"
    assert not result.error


def test_output_is_bytes_exact_for_utf8_and_large_output(sbx: Sandbox) -> None:
    result = sbx.commands.run("printf 'caf\\xc3\\xa9 \\xe2\\x9c\\x93\\n'; head -c 300000 /dev/zero | tr '\\0' x")
    first, rest = result.stdout.split("\n", 1)
    assert first == "café ✓"
    assert rest == "x" * 300000


@pytest.mark.parametrize("code", [1, 3, 127, 255])
def test_nonzero_exit_raises_command_exit_exception(sbx: Sandbox, code: int) -> None:
    with pytest.raises(CommandExitException) as info:
        sbx.commands.run(f"echo partial; echo failing >&2; exit {code}")
    assert info.value.exit_code == code
    assert info.value.stdout == "partial\n"
    assert info.value.stderr == "failing\n"


def test_unknown_command_is_exit_127(sbx: Sandbox) -> None:
    with pytest.raises(CommandExitException) as info:
        sbx.commands.run("definitely-not-a-command-corral")
    assert info.value.exit_code == 127
    assert "not found" in info.value.stderr


def test_per_command_envs_and_sandbox_envs(sbx: Sandbox) -> None:
    result = sbx.commands.run('printf "%s|%s|%s" "$ONE" "$TWO" "$CORRAL_SANDBOX_LEVEL"',
                              envs={"ONE": "1", "TWO": "two words; $(not expanded)"})
    assert result.stdout == "1|two words; $(not expanded)|from-create"
    overridden = sbx.commands.run('printf %s "$CORRAL_SANDBOX_LEVEL"', envs={"CORRAL_SANDBOX_LEVEL": "per-command"})
    assert overridden.stdout == "per-command"
    # Per-command envs do not leak into the next command.
    assert sbx.commands.run('printf %s "${ONE:-unset}"').stdout == "unset"


def test_cwd(sbx: Sandbox) -> None:
    assert sbx.commands.run("pwd").stdout == "/home/user\n"
    assert sbx.commands.run("pwd", cwd="/tmp").stdout == "/tmp\n"
    sbx.commands.run("mkdir -p /home/user/cwd-test/inner")
    assert sbx.commands.run("pwd", cwd="/home/user/cwd-test/inner").stdout == "/home/user/cwd-test/inner\n"


def test_default_user_is_user_with_uid_1000(sbx: Sandbox) -> None:
    result = sbx.commands.run('printf "%s %s %s %s" "$(whoami)" "$(id -u)" "$(id -g)" "$HOME"')
    assert result.stdout == "user 1000 1000 /home/user"


def test_user_root(sbx: Sandbox) -> None:
    result = sbx.commands.run('printf "%s %s %s" "$(whoami)" "$(id -u)" "$HOME"', user="root")
    assert result.stdout == "root 0 /root"
    # What root creates is root's; the default user cannot overwrite it.
    sbx.commands.run("echo secret > /root/only-root && chmod 600 /root/only-root", user="root")
    with pytest.raises(CommandExitException):
        sbx.commands.run("cat /root/only-root")
    assert sbx.commands.run("cat /root/only-root", user="root").stdout == "secret\n"


def test_command_timeout_kills_the_process(sbx: Sandbox) -> None:
    marker = f"corral-timeout-{uuid.uuid4().hex[:8]}"
    with pytest.raises(TimeoutException):
        sbx.commands.run(f"exec -a {marker} sleep 120", timeout=2)

    def gone() -> bool:
        return marker not in sbx.commands.run("ps -eo args").stdout

    assert _eventually(gone), "the command outlived its timeout inside the sandbox"


def test_streaming_callbacks_deliver_output_before_exit(sbx: Sandbox) -> None:
    """The command only finishes after it sees a file the stdout callback creates, so this
    passes only if output is streamed while the command runs, not buffered to its end."""
    flag = f"/tmp/stream-go-{uuid.uuid4().hex[:8]}"
    out: list[str] = []
    err: list[str] = []

    def on_stdout(chunk: str) -> None:
        out.append(chunk)
        if "waiting" in "".join(out) and not sbx.files.exists(flag):
            sbx.files.write(flag, "go")

    result = sbx.commands.run(
        f"echo e1 >&2; echo waiting; while [ ! -e {flag} ]; do sleep 0.05; done; echo done; echo e2 >&2",
        on_stdout=on_stdout, on_stderr=err.append, timeout=30,
    )
    assert "".join(out) == "waiting\ndone\n"
    assert "".join(err) == "e1\ne2\n"
    assert result.stdout == "waiting\ndone\n"


def test_background_process_listed_then_killed(sbx: Sandbox) -> None:
    marker = f"corral-bg-{uuid.uuid4().hex[:8]}"
    handle = sbx.commands.run(f"exec -a {marker} sleep 600", background=True, timeout=0)
    assert handle.pid > 0
    listed = {p.pid: p for p in sbx.commands.list()}
    assert handle.pid in listed
    assert marker in sbx.commands.run("ps -eo args").stdout

    assert sbx.commands.kill(handle.pid) is True
    with pytest.raises(CommandExitException) as info:
        handle.wait()
    assert info.value.exit_code != 0
    assert handle.pid not in {p.pid for p in sbx.commands.list()}
    assert marker not in sbx.commands.run("ps -eo args").stdout
    assert sbx.commands.kill(handle.pid) is False


def test_background_handle_kill(sbx: Sandbox) -> None:
    handle = sbx.commands.run("sleep 600", background=True, timeout=0)
    assert handle.kill() is True
    with pytest.raises(CommandExitException):
        handle.wait()


def test_connect_to_a_running_background_process(sbx: Sandbox) -> None:
    flag = f"/tmp/connect-go-{uuid.uuid4().hex[:8]}"
    handle = sbx.commands.run(f"while [ ! -e {flag} ]; do sleep 0.05; done; echo finished",
                              background=True, timeout=60)
    handle.disconnect()
    again = sbx.commands.connect(handle.pid, timeout=60)
    sbx.files.write(flag, "go")
    result = again.wait()
    assert result.exit_code == 0
    assert "finished\n" in result.stdout


def test_stdin_send_and_close(sbx: Sandbox) -> None:
    handle = sbx.commands.run("cat; echo '<eof>'", background=True, stdin=True, timeout=60)
    sbx.commands.send_stdin(handle.pid, "line one\n")
    sbx.commands.send_stdin(handle.pid, "line two\n")
    sbx.commands.close_stdin(handle.pid)
    result = handle.wait()
    assert result.stdout == "line one\nline two\n<eof>\n"


def test_stdin_is_closed_when_not_requested(sbx: Sandbox) -> None:
    # Without stdin=True a command reading stdin must see EOF at once, never hang.
    result = sbx.commands.run("cat; echo read-nothing", timeout=30)
    assert result.stdout == "read-nothing\n"


def test_signal_to_unknown_pid_is_false(sbx: Sandbox) -> None:
    assert sbx.commands.kill(999_999) is False
