"""Starting a process as a sandbox user, the one way envd's processes and the kernels start.

Every process gets its own session (so a signal to its group reaches everything it started),
the sandbox's user cgroup and an ordinary OOM score (`corral.guest.limits`), the user's uid, gid
and supplementary groups, and no fd of ours but the ones asked for. Its exit
status comes from the daemon's reaper (`corral.guest.reaper`), never from Popen.wait: pid 1 reaps
every child, and Popen waiting as well would race it for the status.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from corral.guest.limits import drop_to, enter_user_cgroup, user_cgroup_fds, user_nproc
from corral.guest.users import DEFAULT_PATH, User


def login_env(user: User) -> dict[str, str]:
    """What a login gives every process before the sandbox's and the request's variables."""
    return {"PATH": DEFAULT_PATH, "HOME": user.home, "USER": user.name, "LOGNAME": user.name}


def is_valid_env_pair(key: str, value: str) -> bool:
    return bool(key) and "=" not in key and "\x00" not in key and "\x00" not in value


def spawn_as(argv: Sequence[str], user: User, *, cwd: str, env: Mapping[str, str],
             stdin: Any, stdout: Any, stderr: Any, pass_fds: Sequence[int] = (),
             preexec_fn: Callable[[], None] | None = None) -> subprocess.Popen[bytes]:
    """Popen `argv` as `user` in a new session; raises OSError as Popen does (a failed move into
    the user cgroup is a SubprocessError: nothing runs with the daemon's headroom)."""
    fds = user_cgroup_fds()   # what the tier handed the daemon; none outside a sandbox
    nproc = user_nproc()

    def child_setup() -> None:   # in the child, after setsid, before exec
        enter_user_cgroup(fds, nproc)
        drop_to(user.uid, user.gid, user.groups)
        if preexec_fn is not None:
            preexec_fn()

    return subprocess.Popen(
        list(argv), stdin=stdin, stdout=stdout, stderr=stderr, cwd=cwd, env=dict(env),
        close_fds=True, pass_fds=tuple(pass_fds), start_new_session=True, preexec_fn=child_setup,
    )


def mark_reaped(popen: subprocess.Popen[bytes], status: int) -> None:
    """Tell Popen its child is gone (the reaper has its status), so it never calls waitpid on
    a pid that may already belong to another process."""
    popen.returncode = status
