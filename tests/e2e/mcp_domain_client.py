"""Run in the e2b-mcp-server venv (make client-deps) by tests/e2e/test_domain_only.py: E2B's own
MCP server over stdio, driven by the official `mcp` client, then the same venv's e2b 1.x SDK
directly. Prints one JSON object. Configuration comes only from E2B_DOMAIN, E2B_API_KEY and
SSL_CERT_FILE in the environment."""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def through_mcp() -> dict:
    params = StdioServerParameters(command=sys.executable,
                                   args=["-c", "import e2b_mcp_server; e2b_mcp_server.main()"],
                                   env=dict(os.environ))
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = [t.name for t in (await session.list_tools()).tools]
            result = await session.call_tool("run_code", {"code": "import sys\nprint(6 * 7)\nprint('err', file=sys.stderr)"})
            texts = [c.text for c in result.content if getattr(c, "type", "") == "text"]
            return {"tools": tools, "is_error": bool(result.isError), "texts": texts}


def with_old_sdk() -> dict:
    import e2b
    from e2b_code_interpreter import Sandbox

    sbx = Sandbox(timeout=120)
    try:
        out = {"sdk": e2b.__version__ if hasattr(e2b, "__version__") else "", "id": sbx.sandbox_id,
               "api_url": sbx.connection_config.api_url,
               "run": sbx.commands.run("echo old-sdk").stdout,
               "code": sbx.run_code("1 + 41").text}
        sbx.files.write("/tmp/old.txt", "old sdk file")
        out["file"] = sbx.files.read("/tmp/old.txt")
        return out
    finally:
        sbx.kill()


print(json.dumps({"mcp": asyncio.run(through_mcp()), "old_sdk": with_old_sdk()}))
