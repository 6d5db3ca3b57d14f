"""Describe a wait status the way envd (Go's os.ProcessState) does, e.g. "signal: killed"."""

from __future__ import annotations

import os
import signal

# Go's runtime names for the common signals; the SDK shows these strings to users.
_GO_SIGNAL_NAMES = {
    signal.SIGHUP: "hangup",
    signal.SIGINT: "interrupt",
    signal.SIGQUIT: "quit",
    signal.SIGILL: "illegal instruction",
    signal.SIGTRAP: "trace/breakpoint trap",
    signal.SIGABRT: "aborted",
    signal.SIGBUS: "bus error",
    signal.SIGFPE: "floating point exception",
    signal.SIGKILL: "killed",
    signal.SIGUSR1: "user defined signal 1",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGUSR2: "user defined signal 2",
    signal.SIGPIPE: "broken pipe",
    signal.SIGALRM: "alarm clock",
    signal.SIGTERM: "terminated",
}


def describe(status: int) -> tuple[int, bool, str]:
    """wait status -> (exit_code, exited, status text); a signal death has exit code -1."""
    if status < 0:
        return -1, False, "unknown"
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        return code, True, f"exit status {code}"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = _GO_SIGNAL_NAMES.get(sig, f"signal {sig}")
        text = f"signal: {name}"
        if os.WCOREDUMP(status):
            text += " (core dumped)"
        return -1, False, text
    return -1, False, "unknown"
