"""Code-interpreter latency: `run_code('1+1')` through the official SDK, next to the same cell on
a Jupyter kernel driven directly with jupyter_client on this host, measured in the same run.

The direct round trip is the floor for this path: it is what the kernel itself costs (message
signing, ZeroMQ, the IPython execute cycle) with no HTTP, proxy, daemon or sandbox in between.
`first run_code after create` is the figure a user waits for when an agent opens a fresh sandbox.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable

from corral.bench.stats import Summary, summarize
from corral.bench.target import Target

TEMPLATE = "code-interpreter-v1"
Tick = Callable[[], None]


def _noop() -> None:
    return None


def measure_direct_kernel(iterations: int, warmup: int = 3, tick: Tick = _noop) -> Summary:
    km, kc = _start_kernel()
    try:
        samples = []
        for i in range(warmup + iterations):
            start = time.perf_counter()
            reply = kc.execute_interactive("1+1", timeout=30, output_hook=lambda _msg: None)
            if reply["content"]["status"] != "ok":
                raise RuntimeError(f"direct kernel failed: {reply['content']}")
            if i >= warmup:
                samples.append(time.perf_counter() - start)
                tick()
        return summarize("floor: run_code('1+1') direct jupyter_client", samples)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def _start_kernel():  # type: ignore[no-untyped-def]
    """An ipykernel from this interpreter (the venv has it), started without kernelspec lookups."""
    from jupyter_client import KernelManager

    km = KernelManager()
    km.kernel_cmd = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]  # type: ignore[attr-defined]
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    return km, kc


def _sdk_sandbox(target: Target):  # type: ignore[no-untyped-def]
    from e2b_code_interpreter import Sandbox

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return Sandbox.create(template=TEMPLATE, timeout=300, metadata=target.metadata(), **target.opts())


def measure_run_code(target: Target, iterations: int, warmup: int = 3, tick: Tick = _noop) -> Summary:
    sandbox = _sdk_sandbox(target)
    try:
        samples = []
        for i in range(warmup + iterations):
            start = time.perf_counter()
            execution = sandbox.run_code("1+1")
            if execution.error is not None or execution.text != "2":
                raise RuntimeError(f"run_code failed: {execution.error or execution.text}")
            if i >= warmup:
                samples.append(time.perf_counter() - start)
                tick()
        return summarize("run_code('1+1')", samples)
    finally:
        sandbox.kill()


def measure_first_run_code(target: Target, iterations: int, pause_s: float = 0.0, tick: Tick = _noop) -> Summary:
    """Create a code-interpreter sandbox, run `1+1`, kill; timed from create to the result."""
    samples = []
    for i in range(iterations + 1):
        if pause_s and i:
            time.sleep(pause_s)
        start = time.perf_counter()
        sandbox = _sdk_sandbox(target)
        try:
            execution = sandbox.run_code("1+1")
            elapsed = time.perf_counter() - start
            if execution.error is not None:
                raise RuntimeError(f"run_code failed: {execution.error}")
        finally:
            sandbox.kill()
        if i:  # the first is a warm-up
            samples.append(elapsed)
            tick()
    return summarize("create -> first run_code('1+1')", samples)
