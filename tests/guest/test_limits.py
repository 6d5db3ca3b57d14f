"""Which processes count as leftovers of ended commands, and the hand-off of the user cgroup."""

from __future__ import annotations

import os

from corral.guest.limits import _orphans, reclaim_process_slots, user_cgroup_fds, user_pids_max
from corral.wire.constants import USER_CGROUP_FDS_ENV, USER_PIDS_MAX_ENV


def test_leftovers_are_what_no_running_command_started() -> None:
    # pid -> (ppid, threads). 10 is a running command with a child 11 and grandchild 12 (which
    # may have left the group with setsid: ancestry, not the session, decides); 20 and its
    # children were reparented to pid 1 when their command ended.
    procs = {10: (1, 1), 11: (10, 1), 12: (11, 3), 20: (1, 1), 21: (20, 1), 22: (1, 1)}
    assert _orphans(procs, live={10}) == {20, 21, 22}
    assert _orphans(procs, live={10, 20}) == {22}
    assert _orphans(procs, live=set()) == set(procs)


def test_nothing_is_reclaimed_outside_a_sandbox() -> None:
    # Not pid 1 of a sandbox (this test process): never touch the host's processes.
    assert os.getpid() != 1
    assert reclaim_process_slots(set(), pids_max=1, spare=1_000_000) == 0
    assert reclaim_process_slots(set(), pids_max=None) == 0


def test_the_hand_off_is_read_from_the_environment() -> None:
    env = {USER_CGROUP_FDS_ENV: "5,6,7", USER_PIDS_MAX_ENV: "448"}
    assert user_cgroup_fds(env) == (5, 6, 7) and user_pids_max(env) == 448
    assert user_cgroup_fds({}) == () and user_pids_max({}) is None
    assert user_pids_max({USER_PIDS_MAX_ENV: "x"}) is None
