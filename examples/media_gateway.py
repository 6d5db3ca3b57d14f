"""The Media Gateway layer from Python: a sandboxed agent on the spec's seven steps.

Run against a corral server (`make run` prints the exports) or E2B's cloud (E2B_API_KEY only):

    python examples/media_gateway.py
"""

from __future__ import annotations

import asyncio

from corral.mediagateway import AgentTask, SandboxedAgent, SandboxManager, SandboxSecurityConfig

PROGRAM = """
import json
inputs = json.load(open('/data/inputs.json'))
top = sorted(inputs['ratings'].items(), key=lambda kv: -kv[1])[:2]
json.dump({'best': [title for title, _ in top]}, open('/output/results.json', 'w'))
print('ranked', len(inputs['ratings']), 'titles')
"""


class FixedProgram:
    """The spec's `Agent`: anything with `async generate_code(task) -> str` (an LLM in real use)."""

    async def generate_code(self, task: AgentTask) -> str:
        return PROGRAM


async def main() -> None:
    manager = SandboxManager.from_env()
    agent = SandboxedAgent(FixedProgram(), manager, "base", security_config=SandboxSecurityConfig(timeout_seconds=30))
    result = await agent.execute_safely(AgentTask(description="best two titles",
                                                  inputs={"ratings": {"Echo Falls": 4.5, "Burning Colony": 4.8, "The Wild Bakery": 3.1}}))
    print(f"success={result.success} output={result.output} sandbox={result.sandbox_id} "
          f"time={result.duration_s:.2f}s sandbox-seconds={result.sandbox_seconds:.2f}")
    print(result.logs.strip())


if __name__ == "__main__":
    asyncio.run(main())
