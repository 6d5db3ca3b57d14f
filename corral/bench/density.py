"""Idle density: start N sandboxes, let them sit, measure what each costs the host, kill them all.

An "idle" sandbox here is one that was created and ran one command, then waits: the state most
sandboxes of an agent fleet are in most of the time. Its cost is reported four ways (see
corral.bench.memory for why no single figure suffices):

- MemAvailable drop per sandbox, minus what the benchmark process itself grew by (the SDK keeps
  per-sandbox objects in our own memory, which is not the server's cost);
- cgroup memory per sandbox (everything charged to it, page cache included), and without cache;
- USS of the processes in each sandbox's cgroup;
- growth of the server's host-side process tree outside the sandboxes (spawners, proxies,
  bookkeeping), per sandbox;
- growth of kernel memory no process owns (unreclaimable slab for namespaces and mounts, page
  tables, kernel stacks), per sandbox. Host-wide, so other work on the machine adds noise.

Every sandbox created here is killed before returning, even when creation fails half way, and the
result says how many could not be killed and whether any cgroup outlived its sandbox.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from corral.bench.memory import kernel_bytes, mem_available_bytes, process_memory, process_tree, uss_of
from corral.bench.target import Target, host_sandbox_id, run_true

Tick = Callable[[], None]
MB = 1024 * 1024


def _noop() -> None:
    return None


@dataclass
class IdleResult:
    sandboxes: int
    create_wall_s: float                       # wall time to bring up the whole fleet
    mem_available_delta_mb_per_sandbox: float | None  # corrected for the benchmark's own growth
    cgroup_mb_per_sandbox: float | None = None
    cgroup_no_cache_mb_per_sandbox: float | None = None
    uss_mb_per_sandbox: float | None = None
    server_overhead_mb_per_sandbox: float | None = None
    kernel_mb_per_sandbox: float | None = None  # unreclaimable slab + page tables + kernel stacks
    sandbox_processes: int | None = None        # total processes across all idle sandboxes
    alive_at_measurement: int | None = None     # the server's own list: did they all survive?
    killed: int = 0
    kill_failures: list[str] = field(default_factory=list)
    leftover_cgroups: list[str] = field(default_factory=list)
    mem_recovered_mb: float | None = None       # MemAvailable after kill minus before create
    server_retained_mb: float | None = None     # server tree USS after kill minus before create
    notes: list[str] = field(default_factory=list)

    @property
    def accounted_mb_per_sandbox(self) -> float | None:
        """Everything attributable to one sandbox, from sources other tenants cannot disturb much:
        its cgroup (page cache included) plus its share of the server's and the kernel's growth.
        Conservative: on cgroup v1 kernel memory charged to the cgroup is counted twice."""
        if self.cgroup_mb_per_sandbox is None or self.server_overhead_mb_per_sandbox is None:
            return None
        return (self.cgroup_mb_per_sandbox + max(0.0, self.server_overhead_mb_per_sandbox)
                + max(0.0, self.kernel_mb_per_sandbox or 0.0))

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "accounted_mb_per_sandbox": self.accounted_mb_per_sandbox}


def _cgroups(sample_id: str):  # type: ignore[no-untyped-def]
    """The cgroup manager of the group holding sample_id, or None when it is not on this host.

    Servers name their cgroup group as they see fit (one per data dir, so that two servers on a
    host never take each other's sandboxes for leftovers); rather than re-derive that rule, look
    for the sandbox's own cgroup under every `corral*` group.
    """
    try:
        from corral.runtime.namespace.cgroups import CGROUP_ROOT, detect

        v2 = (CGROUP_ROOT / "cgroup.controllers").exists()
        parent = CGROUP_ROOT if v2 else CGROUP_ROOT / "memory"
        for group in sorted(parent.iterdir()):
            if group.name.startswith("corral") and (group / sample_id).is_dir():
                return detect(group=group.name)
    except Exception:  # noqa: BLE001 - a missing runtime or hierarchy only means fewer figures
        return None
    return None


def _self_uss() -> int:
    mem = process_memory(os.getpid())
    return mem.uss_bytes if mem else 0


def _tree_uss(server_pid: int | None, exclude: set[int]) -> int | None:
    if server_pid is None:
        return None
    return uss_of([p for p in process_tree(server_pid) if p not in exclude])


def measure_idle(
    target: Target,
    count: int,
    server_pid: int | None = None,
    same_host: bool = True,
    concurrency: int = 4,
    settle_s: float = 2.0,
    tick: Tick = _noop,
    kill_tick: Tick = _noop,
) -> IdleResult:
    if count < 1:
        raise ValueError("idle sandbox count must be at least 1")
    timeout_s = max(600, int(count * 2) + 300)  # outlives fleet creation on a slow machine
    avail_before = mem_available_bytes()
    kernel_before = kernel_bytes()
    self_before = _self_uss()
    tree_before = _tree_uss(server_pid, set())

    ids: list[str] = []
    errors: list[BaseException] = []

    def bring_up(_: int) -> str:
        sandbox = target.create(timeout_s=timeout_s)
        ids.append(sandbox.sandbox_id)  # recorded before anything else can fail, so it gets killed
        run_true(sandbox)
        return sandbox.sandbox_id

    started = time.perf_counter()
    result: IdleResult | None = None
    cg = None
    try:
        with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="corral-bench-idle") as pool:
            futures = [pool.submit(bring_up, i) for i in range(count)]
            for fut in futures:
                try:
                    fut.result()
                except BaseException as exc:  # noqa: BLE001 - re-raised below, after cleanup
                    errors.append(exc)
                tick()
        wall = time.perf_counter() - started
        if errors:
            raise RuntimeError(f"{len(errors)} of {count} idle sandboxes failed to start; first: {errors[0]!r}")
        time.sleep(settle_s)
        for sid in ids[:10]:  # the first sandbox may be the one that died; look a little further
            cg = _cgroups(host_sandbox_id(sid))
            if cg is not None:
                break
        alive = set(target.list_ids())
        result = _measure(ids, cg, server_pid, avail_before, self_before, tree_before, wall)
        result.kernel_mb_per_sandbox = (kernel_bytes() - kernel_before) / MB / len(ids)
        result.alive_at_measurement = sum(1 for sid in ids if sid in alive)
        if result.alive_at_measurement != len(ids):
            result.notes.append(f"only {result.alive_at_measurement} of {len(ids)} sandboxes were still running when "
                                "memory was measured: the per-sandbox figures of this run are NOT valid")
    finally:
        killed, failures = _kill_all(target, ids, concurrency, kill_tick)
    assert result is not None  # only reached when the fleet came up and was measured
    time.sleep(settle_s)
    result.killed = killed
    result.kill_failures = failures
    result.leftover_cgroups = _leftover_cgroups(cg, ids)
    result.mem_recovered_mb = (mem_available_bytes() - avail_before) / MB
    tree_after_kill = _tree_uss(server_pid, set())
    if tree_before is not None and tree_after_kill is not None:
        # what the server keeps after every sandbox is gone: a leak, or allocator slack
        result.server_retained_mb = (tree_after_kill - tree_before) / MB
    if not same_host:
        # Host-wide figures of this machine say nothing about a server on another one.
        result.mem_available_delta_mb_per_sandbox = None
        result.kernel_mb_per_sandbox = None
        result.mem_recovered_mb = None
        result.notes.append("the server is not on this host: host-wide memory figures omitted")
    return result


def _measure(ids, cg, server_pid, avail_before, self_before, tree_before, wall) -> IdleResult:  # type: ignore[no-untyped-def]
    n = len(ids)
    self_growth = _self_uss() - self_before
    avail_after = mem_available_bytes()
    res = IdleResult(
        sandboxes=n,
        create_wall_s=wall,
        mem_available_delta_mb_per_sandbox=(avail_before - avail_after - self_growth) / MB / n,
    )
    res.notes.append(f"benchmark process grew by {self_growth / MB:.1f} MB while holding {n} SDK sandboxes "
                     "(subtracted from the MemAvailable figure)")
    sandbox_pids: set[int] = set()
    if cg is not None:
        total_mem = total_cache = 0
        seen = 0
        for sid in ids:
            hid = host_sandbox_id(sid)
            if not cg.exists(hid):
                continue
            seen += 1
            stats = cg.stats(hid)
            total_mem += stats.memory_bytes
            total_cache += stats.memory_cache_bytes
            sandbox_pids.update(cg.pids(hid))
        if seen == n:
            res.cgroup_mb_per_sandbox = total_mem / MB / n
            res.cgroup_no_cache_mb_per_sandbox = (total_mem - total_cache) / MB / n
            res.uss_mb_per_sandbox = uss_of(sorted(sandbox_pids)) / MB / n
            res.sandbox_processes = len(sandbox_pids)
        else:
            res.notes.append(f"only {seen} of {n} sandboxes have a corral cgroup on this host; "
                             "cgroup and USS figures omitted (remote server or a tier without cgroups)")
    else:
        res.notes.append("no corral cgroup hierarchy on this host; cgroup and USS figures omitted")
    tree_after = _tree_uss(server_pid, sandbox_pids)
    if tree_before is not None and tree_after is not None:
        res.server_overhead_mb_per_sandbox = (tree_after - tree_before) / MB / n
    else:
        res.notes.append("server process not found on this host; server overhead omitted")
    return res


def _kill_all(target: Target, ids: list[str], concurrency: int, tick: Tick) -> tuple[int, list[str]]:
    failures: list[str] = []
    killed = 0

    def kill(sid: str) -> bool:
        return target.kill(sid)

    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="corral-bench-kill") as pool:
        futures = {sid: pool.submit(kill, sid) for sid in list(ids)}
        for sid, fut in futures.items():
            try:
                if fut.result():
                    killed += 1
                else:
                    failures.append(f"{sid}: already gone")
            except Exception as exc:  # noqa: BLE001 - every failure is reported, none stops the rest
                failures.append(f"{sid}: {exc!r}")
            tick()
    return killed, failures


def _leftover_cgroups(cg, ids: list[str]) -> list[str]:  # type: ignore[no-untyped-def]
    if cg is None:
        return []
    return [sid for sid in ids if cg.exists(host_sandbox_id(sid))]
