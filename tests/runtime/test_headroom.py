"""The split of a sandbox's limits between its daemon and its users, and the choice of CPUs."""

from __future__ import annotations

from corral.runtime.base import Limits
from corral.runtime.headroom import (
    MiB, choose_cpus, format_cpu_list, parse_cpu_list, user_limits,
)


def test_users_get_less_than_the_sandbox_but_about_its_size() -> None:
    small = user_limits(Limits(cpu_count=1, memory_mb=512, pids_max=512))
    assert small.memory_bytes == 480 * MiB and small.daemon_memory_bytes == 32 * MiB
    assert small.pids_max == 448
    big = user_limits(Limits(memory_mb=8192, pids_max=4096))
    assert big.memory_bytes == (8192 - 64) * MiB   # the reserve is capped
    assert big.pids_max == 4096 - 64
    tiny = user_limits(Limits(memory_mb=16, pids_max=8))
    assert 0 < tiny.memory_bytes < 16 * MiB and 0 < tiny.pids_max < 8


def test_cpu_lists_round_trip() -> None:
    assert parse_cpu_list("0-3,6\n") == [0, 1, 2, 3, 6]
    assert parse_cpu_list("") == []
    assert format_cpu_list([3, 1, 1]) == "1,3"


def test_sandboxes_spread_over_the_least_used_cpus() -> None:
    cpus = [0, 1, 2, 3]
    assert choose_cpus(cpus, [], 1) == [0]
    assert choose_cpus(cpus, [[0]], 1) == [1]
    assert choose_cpus(cpus, [[0], [1], [2]], 2) == [0, 3]
    assert choose_cpus(cpus, [[0, 1], [0]], 2) == [2, 3]
    assert choose_cpus(cpus, [[0]], 4) == [0, 1, 2, 3]
    assert choose_cpus(cpus, [[0]], 9) == [0, 1, 2, 3]     # never more than the host has
    assert choose_cpus(cpus, [[7]], 1) == [0]              # CPUs gone from the host are ignored
