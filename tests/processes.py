"""Stopping a process a test started: SIGTERM, then SIGKILL when it does not go in time, so a
server that ignores or hangs on TERM never outlives the test that started it."""

from __future__ import annotations

import subprocess


def stop(proc: subprocess.Popen, timeout: float = 30) -> int | None:
    """Terminate ``proc`` (if it still runs), kill it after ``timeout`` s; its exit status."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode
