from __future__ import annotations

import os
import signal
import subprocess

from corral.guest.exitstatus import describe


def _status(args: list[str]) -> int:
    proc = subprocess.Popen(args)
    status = os.waitpid(proc.pid, 0)[1]
    proc.returncode = status  # keep Popen from waiting on the (already reaped) pid later
    return status


def test_exit_codes_and_signals_read_like_go() -> None:
    assert describe(_status(["true"])) == (0, True, "exit status 0")
    assert describe(_status(["sh", "-c", "exit 42"])) == (42, True, "exit status 42")
    assert describe(_status(["sh", "-c", "kill -TERM $$"])) == (-1, False, "signal: terminated")
    assert describe(_status(["sh", "-c", "kill -KILL $$"])) == (-1, False, "signal: killed")
    assert describe(-1) == (-1, False, "unknown")
    assert signal.SIGKILL == 9
