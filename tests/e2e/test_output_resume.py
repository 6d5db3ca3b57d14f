"""Reconnecting to a command after its stream dropped, as the official SDKs can.

No official SDK we support sends an output offset: `e2b==2.63.0` and `e2b@2.51.0` send
ConnectRequest{process} only (docs/COMPATIBILITY.md, "Output resume"). So a client that
reconnects (`Sandbox.connect` + `commands.connect(pid)`) gets what E2B's envd gives such a
client: a start event with the pid, then the output the process writes from then on, in order,
and its end; output written while nobody was connected is not replayed. This checks exactly that,
with the command gated on files so that nothing depends on timing.
"""

from __future__ import annotations

import uuid

import pytest
from e2b import Sandbox

pytestmark = pytest.mark.e2e


def test_a_dropped_stream_reconnects_to_the_live_output_in_order_and_the_end(sdk) -> None:  # type: ignore[no-untyped-def]
    tag = uuid.uuid4().hex[:8]
    go, gate = f"/tmp/resume-go-{tag}", f"/tmp/resume-gate-{tag}"
    script = (f"for i in $(seq 1 100); do echo line-$i; done; while [ ! -e {gate} ]; do sleep 0.05; done; "
              f"for i in $(seq 101 300); do echo line-$i; done; while [ ! -e {go} ]; do sleep 0.05; done; "
              f"echo line-301; exit 7")
    sbx = Sandbox.create(timeout=120)
    try:
        first: list[str] = []
        handle = sbx.commands.run(script, background=True, timeout=120)
        for stdout, _stderr, _pty in handle:            # read until the first hundred lines arrived
            if stdout:
                first.append(stdout)
            if "".join(first).count("\n") >= 100:
                break
        handle.disconnect()                              # the client's stream is cut
        assert "".join(first).splitlines() == [f"line-{i}" for i in range(1, 101)]

        # a new client (another SDK object, as after a crash) reconnects by pid
        again_sbx = Sandbox.connect(sbx.sandbox_id)
        assert any(p.pid == handle.pid for p in again_sbx.commands.list())
        second: list[str] = []
        again = again_sbx.commands.connect(handle.pid, timeout=120)
        again_sbx.files.write(gate, "1")
        again_sbx.files.write(go, "1")
        result: object = None
        try:                                             # wait() raises on a non-zero exit
            again.wait(on_stdout=second.append)
        except Exception as exc:  # noqa: BLE001 - CommandExitException carries the result
            result = exc
        lines = "".join(second).splitlines()
        # what was written after the reconnect, every line once and in order, then the end
        assert lines == [f"line-{i}" for i in range(101, 302)]
        assert getattr(result, "exit_code", None) == 7
    finally:
        sbx.kill()
