"""SandboxedAgent.execute_safely on a corral server: the seven steps, validation, retry, and a
sandbox that never outlives the call (an exception injected at each step, cancellation)."""

from __future__ import annotations

import asyncio

import pytest
from e2b import AsyncSandbox
from pydantic import BaseModel

from corral.mediagateway import (AgentResult, AgentTask, SandboxedAgent, SandboxManager, SandboxSecurityConfig,
                                 Settings)

from .conftest import running_ids

pytestmark = pytest.mark.e2e
MIB = 1024 * 1024

GOOD = """import json
inputs = json.load(open('/data/inputs.json'))
print('read', sorted(inputs))
json.dump({'total': sum(inputs['values'])}, open('/output/results.json', 'w'))
"""


class Fixed:
    """An agent that always writes the same program."""

    def __init__(self, code: str) -> None:
        self.code = code

    async def generate_code(self, task: AgentTask) -> str:
        return self.code


class Repairing(Fixed):
    """A first program that fails, then the repaired one (as a model given the error would)."""

    can_repair = True

    def __init__(self, first: str, second: str) -> None:
        super().__init__(first)
        self.second = second
        self.errors: list[str] = []

    async def repair_code(self, task: AgentTask, code: str, error: str) -> str:
        self.errors.append(error)
        return self.second


class Total(BaseModel):
    total: int


TASK = AgentTask(description="add", inputs={"values": [1, 2, 3]})


@pytest.fixture
async def mgr(corral_settings: Settings):
    m = SandboxManager(corral_settings)
    yield m
    await m.aclose()


def agent(mgr, code=GOOD, **kw) -> SandboxedAgent:
    return SandboxedAgent(Fixed(code) if isinstance(code, str) else code, mgr, "base", **kw)


async def test_seven_steps(mgr):
    before = await running_ids(mgr.settings)
    result = await agent(mgr, result_schema=Total).execute_safely(TASK)
    assert isinstance(result, AgentResult)
    assert result.success and result.output == {"total": 6} and result.error is None
    assert "read ['values']" in result.logs and result.sandbox_id and len(result.attempts) == 1
    assert result.sandbox_seconds > 0 and result.duration_s >= result.attempts[0].duration_s
    assert result.sandbox_id not in await running_ids(mgr.settings) and await running_ids(mgr.settings) <= before


async def test_inputs_as_a_json_string_and_bad_inputs(mgr):
    result = await agent(mgr).execute_safely(AgentTask(description="add", inputs='{"values": [4, 5]}'))
    assert result.output == {"total": 9}
    with pytest.raises(ValueError, match="not JSON"):
        await agent(mgr).execute_safely(AgentTask(description="x", inputs="{nope"))
    with pytest.raises(ValueError, match="serialisable"):
        await agent(mgr).execute_safely(AgentTask(description="x", inputs={"v": object()}))
    assert mgr.live_ids() == []


async def test_generated_code_that_raises(mgr):
    result = await agent(mgr, "raise RuntimeError('generated bug')").execute_safely(TASK)
    assert not result.success and result.output is None
    assert result.error == "RuntimeError: generated bug" and "Traceback" in result.logs
    assert result.sandbox_id not in await running_ids(mgr.settings)


async def test_retry_once_with_the_error(mgr):
    repairing = Repairing("import json\njson.loads('{bad')", GOOD)
    result = await agent(mgr, repairing).execute_safely(TASK)
    assert result.success and result.output == {"total": 6}
    assert [a.exit_code for a in result.attempts] == [1, 0] and "JSONDecodeError" in repairing.errors[0]
    assert result.code == GOOD and result.attempts[0].code != GOOD


async def test_retry_is_bounded(mgr):
    result = await agent(mgr, Repairing("raise SystemExit(2)", "raise SystemExit(3)")).execute_safely(TASK)
    assert not result.success and len(result.attempts) == 2 and result.attempts[-1].exit_code == 3


async def test_infinite_loop_is_stopped(mgr):
    result = await agent(mgr, "while True:\n    pass\n",
                         security_config=SandboxSecurityConfig(timeout_seconds=2)).execute_safely(TASK)
    assert not result.success and "timeout_seconds=2" in result.error
    assert result.sandbox_id not in await running_ids(mgr.settings)


@pytest.mark.parametrize("written,message", [
    ("open('/output/results.json', 'w').write('{not json')", "not JSON"),
    ("import json; json.dump({'total': 'many'}, open('/output/results.json', 'w'))", "does not match Total"),
    ("print('forgot to write results')", "does not exist"),
])
async def test_outputs_are_validated(mgr, written, message):
    result = await agent(mgr, written, result_schema=Total).execute_safely(TASK)
    assert not result.success and message in result.error and result.output is None


async def test_oversized_upload_is_refused_before_any_byte(mgr, monkeypatch):
    writes: list[str] = []
    real = AsyncSandbox.files

    def spy_files(sandbox):
        files = real.fget(sandbox)
        original = files.write
        if not getattr(original, "_spy", False):
            async def write(path, data, *a, **kw):
                writes.append(path)
                return await original(path, data, *a, **kw)
            write._spy = True
            files.write = write
        return files

    monkeypatch.setattr(AsyncSandbox, "files", property(spy_files))
    task = AgentTask(description="big", inputs={"blob": "x" * (11 * MIB)})
    result = await agent(mgr).execute_safely(task)
    assert not result.success and "TransferTooLargeError" in result.error and "/data/inputs.json" in result.error
    assert "/data/inputs.json" not in writes and result.attempts == []  # no body sent, nothing ran
    assert result.sandbox_id not in await running_ids(mgr.settings)


async def test_oversized_download_is_refused(mgr):
    code = "with open('/output/results.json', 'w') as f:\n    f.truncate(60 * 1024 * 1024)\n"
    result = await agent(mgr, code).execute_safely(TASK)
    assert not result.success and "TransferTooLargeError" in result.error and str(60 * MIB) in result.error


class Boom(Exception):
    pass


def _raise(*a, **kw):
    raise Boom("injected")


STEPS = ["generate", "create", "upload", "execute", "download", "terminate", "return"]


@pytest.mark.parametrize("step", STEPS)
async def test_no_sandbox_left_after_an_exception_at_each_step(mgr, monkeypatch, step):
    before = await running_ids(mgr.settings)
    sa = agent(mgr, result_schema=Total)
    created: list[str] = []
    real_create = mgr.create_sandbox

    async def tracking_create(*a, **kw):
        sbx = await real_create(*a, **kw)
        created.append(sbx.id)
        return sbx

    monkeypatch.setattr(mgr, "create_sandbox", tracking_create)
    if step == "generate":
        monkeypatch.setattr(sa.agent, "generate_code", _raise)
    elif step == "create":  # the service made it, the answer never arrived
        real_sdk_create = AsyncSandbox.create.__func__

        async def lost(cls, *a, **kw):
            await real_sdk_create(cls, *a, **kw)
            raise Boom("injected")
        monkeypatch.setattr(AsyncSandbox, "create", classmethod(lost))
    elif step == "upload":
        monkeypatch.setattr(mgr, "upload_file", _raise)
    elif step == "execute":
        monkeypatch.setattr(mgr, "execute_code", _raise)
    elif step == "download":
        monkeypatch.setattr(mgr, "download_file", _raise)
    elif step == "terminate":  # the first kill fails; the retry must still kill it
        real_terminate = mgr.terminate
        calls = []

        async def flaky(sandbox_id):
            calls.append(sandbox_id)
            if len(calls) == 1:
                raise Boom("injected")
            await real_terminate(sandbox_id)
        monkeypatch.setattr(mgr, "terminate", flaky)
    elif step == "return":
        monkeypatch.setattr(sa, "validate_output", _raise)
    if step == "terminate":
        result = await sa.execute_safely(TASK)
        assert result.success and len(calls) == 2
    else:
        with pytest.raises(Boom):
            await sa.execute_safely(TASK)
    monkeypatch.undo()
    if step not in ("generate", "create"):
        assert created, "the step after create was reached"
    assert await running_ids(mgr.settings) <= before
    assert mgr.live_ids() == []


async def test_cancellation_terminates_the_sandbox(mgr):
    before = await running_ids(mgr.settings)
    task = asyncio.create_task(agent(mgr, "import time\ntime.sleep(60)\n").execute_safely(TASK))
    for _ in range(300):
        if mgr.live_ids():
            break
        await asyncio.sleep(0.05)
    assert mgr.live_ids(), "the sandbox was created"
    await asyncio.sleep(0.5)  # into the execution
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert mgr.live_ids() == []
    assert await running_ids(mgr.settings) <= before


async def test_cancellation_swallowed_by_the_sdk_still_cancels(mgr, monkeypatch):
    """The e2b SDK's command handle can swallow a cancel (it stores it, or the stream had just
    ended): the agent must still stop at the next step and kill its sandbox, not run on."""
    before = await running_ids(mgr.settings)
    real = mgr.run_command
    entered = asyncio.Event()

    async def swallowing(sandbox_id, command, **kw):
        entered.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            pass   # what the SDK does with a cancel delivered to its event task
        return await real(sandbox_id, command, **kw)

    monkeypatch.setattr(mgr, "run_command", swallowing)
    task = asyncio.create_task(agent(mgr, GOOD).execute_safely(TASK))
    await asyncio.wait_for(entered.wait(), 120)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert mgr.live_ids() == []
    assert await running_ids(mgr.settings) <= before
