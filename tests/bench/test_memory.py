import os
import socket
import subprocess
from pathlib import Path

import pytest

from corral.bench.memory import listener_pid, mem_available_bytes, process_memory, process_tree, uss_of


def test_mem_available_parses_kib(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       1000 kB\nMemFree:  10 kB\nMemAvailable:     2048 kB\n")
    assert mem_available_bytes(meminfo) == 2048 * 1024


def test_mem_available_missing_line_is_an_error(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 1000 kB\n")
    with pytest.raises(RuntimeError, match="MemAvailable"):
        mem_available_bytes(meminfo)


def test_real_host_has_memory_available() -> None:
    assert mem_available_bytes() > 0


def test_own_process_memory_is_consistent() -> None:
    mem = process_memory(os.getpid())
    assert mem is not None
    assert 0 < mem.uss_bytes <= mem.pss_bytes <= mem.rss_bytes


def test_gone_and_kernel_processes_count_as_nothing() -> None:
    child = subprocess.Popen(["/bin/true"])
    child.wait()
    assert process_memory(child.pid) is None
    assert process_memory(2) is None  # kthreadd: no user memory
    assert uss_of([child.pid, 2]) == 0


def test_process_tree_finds_grandchildren_but_not_strangers() -> None:
    parent = subprocess.Popen(["/bin/sh", "-c", "sleep 30 & wait"])
    tree: list[int] = [parent.pid]
    try:
        for _ in range(200):
            tree = process_tree(parent.pid)
            if len(tree) >= 2:
                break
            subprocess.run(["/bin/true"])  # give the shell a moment to fork, without a timed wait
        assert tree[0] == parent.pid and len(tree) == 2
        assert os.getpid() not in tree
        assert uss_of(tree) > 0
    finally:
        for pid in reversed(tree):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        parent.wait()


def test_listener_pid_finds_our_socket_and_only_listeners() -> None:
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        port = srv.getsockname()[1]
        assert listener_pid(port) is None  # bound, not listening
        srv.listen()
        assert listener_pid(port) == os.getpid()
    assert listener_pid(port) is None


def test_kernel_bytes_sums_only_kernel_fields(tmp_path: Path) -> None:
    from corral.bench.memory import kernel_bytes, meminfo_bytes

    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemAvailable: 100 kB\nSUnreclaim: 10 kB\nPageTables: 2 kB\nKernelStack: 1 kB\n"
                       "SReclaimable: 500 kB\nHugePages_Total: 0\n")
    assert kernel_bytes(meminfo) == 13 * 1024
    assert "HugePages_Total" not in meminfo_bytes(meminfo)
    assert kernel_bytes() > 0
