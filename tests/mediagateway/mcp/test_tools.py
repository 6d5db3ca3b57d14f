"""The seven tools through the official `mcp` client (in process), against a local corral server:
files round-trip, every output is bounded and every failure is a tool error with a message (a
missing file, a dead sandbox, a bad language, a bad template, an over-cap transfer), after which
the server still answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2b_code_interpreter import Sandbox
from mcp import Client

from corral.mediagateway.mcp import build_server
from corral.mediagateway.mcp.limits import MAX_LIST_ENTRIES, MAX_READ_BYTES, MAX_STREAM_BYTES, MAX_WRITE_BYTES
from tests.mediagateway.frontends import running_sandboxes

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sandbox_id(sdk) -> Iterator[str]:  # type: ignore[no-untyped-def]
    sandbox = Sandbox.create(timeout=900)
    yield sandbox.sandbox_id
    sandbox.kill()


@pytest.fixture
def client(sdk) -> Client:  # type: ignore[no-untyped-def]
    """Entered by each test itself (`async with client:`): an async-generator fixture would close
    the client's task group in another task than the one that opened it."""
    return Client(build_server(per_connection_sessions=True))


async def ok(client: Client, tool: str, **args: object):
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    return result.structured_content


async def error(client: Client, tool: str, **args: object) -> str:
    result = await client.call_tool(tool, args)
    assert result.is_error, result.content
    return " ".join(c.text for c in result.content if c.type == "text")


async def test_files_round_trip(client: Client, sandbox_id: str) -> None:
    async with client:
        wrote = await ok(client, "write_file", sandbox_id=sandbox_id, path="/home/user/notes/hello.txt", content="héllo\nworld\n")
        assert "13 bytes" in wrote["result"]
        assert (await ok(client, "read_file", sandbox_id=sandbox_id, path="/home/user/notes/hello.txt"))["result"] == "héllo\nworld\n"
        listing = await ok(client, "list_files", sandbox_id=sandbox_id, path="/home/user/notes")
        assert listing["entries"] == [{"name": "hello.txt", "path": "/home/user/notes/hello.txt", "type": "file", "size": 13}]
        counted = await ok(client, "run_command", sandbox_id=sandbox_id, command="wc -l < /home/user/notes/hello.txt")
        assert counted == {"stdout": "2\n", "stderr": "", "exit_code": 0}


async def test_run_code_in_a_named_sandbox_and_other_languages(client: Client, sandbox_id: str) -> None:
    async with client:
        py = await ok(client, "run_code", code="1 / 0", sandbox_id=sandbox_id)
        assert py["sandbox_id"] == sandbox_id
        assert py["error"].startswith("ZeroDivisionError")  # the program's error is a result, not a tool failure
        js = await ok(client, "run_code", code="console.log(6 * 7)", language="javascript", sandbox_id=sandbox_id)
        assert js["stdout"] == "42\n"
        sh = await ok(client, "run_code", code="echo $((6 * 7))", language="bash", sandbox_id=sandbox_id)
        assert sh["stdout"].strip() == "42"


async def test_command_exit_code_is_a_result(client: Client, sandbox_id: str) -> None:
    async with client:
        out = await ok(client, "run_command", sandbox_id=sandbox_id, command="echo out; echo err >&2; exit 3")
        assert out == {"stdout": "out\n", "stderr": "err\n", "exit_code": 3}


async def test_missing_file_and_directory_are_tool_errors(client: Client, sandbox_id: str) -> None:
    async with client:
        message = await error(client, "read_file", sandbox_id=sandbox_id, path="/home/user/no-such-file.txt")
        assert "no such file" in message and "/home/user/no-such-file.txt" in message
        assert "list_files" in await error(client, "read_file", sandbox_id=sandbox_id, path="/home/user")
        assert "no such file" in await error(client, "list_files", sandbox_id=sandbox_id, path="/no/such/dir")


async def test_long_output_is_truncated_with_a_note(client: Client, sandbox_id: str) -> None:
    async with client:
        out = await ok(client, "run_command", sandbox_id=sandbox_id, command="yes abcdefgh | head -c 300000")
        kept, note = out["stdout"].split("\n[output truncated: ")
        assert len(kept.encode()) <= MAX_STREAM_BYTES
        assert int(note.split()[0]) + len(kept.encode()) == 300000  # what was dropped is counted
        assert "more bytes not shown; the cap is 64 KiB" in note
        code = await ok(client, "run_code", code="print('x' * 200_000)", sandbox_id=sandbox_id)
        assert "[output truncated:" in code["stdout"] and len(code["stdout"]) < MAX_STREAM_BYTES + 200


async def test_a_file_over_the_read_cap_is_refused(client: Client, sandbox_id: str) -> None:
    async with client:
        await ok(client, "run_command", sandbox_id=sandbox_id, command=f"head -c {MAX_READ_BYTES + 1} /dev/zero > /tmp/big")
        message = await error(client, "read_file", sandbox_id=sandbox_id, path="/tmp/big")
        assert f"{MAX_READ_BYTES + 1} bytes" in message and "1 MiB" in message


async def test_content_over_the_write_cap_is_refused_before_sending(client: Client, sandbox_id: str) -> None:
    async with client:
        message = await error(client, "write_file", sandbox_id=sandbox_id, path="/tmp/huge", content="a" * (MAX_WRITE_BYTES + 1))
        assert "10 MiB" in message
        assert "no such file" in await error(client, "read_file", sandbox_id=sandbox_id, path="/tmp/huge")


async def test_binary_file_is_shown_with_a_note(client: Client, sandbox_id: str) -> None:
    async with client:
        await ok(client, "run_command", sandbox_id=sandbox_id, command="printf 'ok\\377\\376' > /tmp/bin")
        text = (await ok(client, "read_file", sandbox_id=sandbox_id, path="/tmp/bin"))["result"]
        assert text.startswith("ok\ufffd") and "not UTF-8" in text


async def test_a_long_listing_is_cut_with_a_note(client: Client, sandbox_id: str) -> None:
    async with client:
        await ok(client, "run_command", sandbox_id=sandbox_id,
                 command=f"mkdir -p /tmp/many && cd /tmp/many && seq 1 {MAX_LIST_ENTRIES + 5} | xargs touch")
        listing = await ok(client, "list_files", sandbox_id=sandbox_id, path="/tmp/many")
        assert len(listing["entries"]) == MAX_LIST_ENTRIES
        assert listing["note"].startswith("5 more entries")


async def test_a_bad_language_is_a_tool_error_and_makes_no_sandbox(client: Client, server, sandbox_id: str) -> None:  # type: ignore[no-untyped-def]
    async with client:
        before = running_sandboxes(server)
        assert "unsupported language 'cobol'" in await error(client, "run_code", code="DISPLAY 'HI'", language="cobol")
        assert "unsupported language" in await error(client, "run_code", code="1", language="brainfuck", sandbox_id=sandbox_id)
        assert running_sandboxes(server) <= before


async def test_dead_sandbox_and_bad_arguments_are_tool_errors(client: Client) -> None:
    async with client:
        created = await ok(client, "create_sandbox", template="base", timeout=60, internet=False)
        dead = created["result"]
        assert (await ok(client, "kill_sandbox", sandbox_id=dead))["result"] == f"killed {dead}"
        for tool, args in [("run_code", {"code": "1", "sandbox_id": dead}), ("run_command", {"sandbox_id": dead, "command": "true"}),
                           ("read_file", {"sandbox_id": dead, "path": "/etc/hostname"}), ("kill_sandbox", {"sandbox_id": dead})]:
            assert "was not found" in await error(client, tool, **args), tool
        assert "no-such-template" in await error(client, "create_sandbox", template="no-such-template")
        assert await error(client, "create_sandbox", timeout=0)
        assert await error(client, "create_sandbox", timeout=100_000)
        assert await error(client, "run_command", sandbox_id="", command="true")
        # After all of that the server still serves.
        assert len((await client.list_tools()).tools) == 7


async def test_a_chart_comes_back_as_an_image(client: Client, sandbox_id: str) -> None:
    import base64

    async with client:
        result = await client.call_tool("run_code", {"sandbox_id": sandbox_id, "code": (
            "import matplotlib.pyplot as plt\n"
            "plt.plot([1, 3, 2])\nplt.show()\nprint('drawn')")})
        assert not result.is_error, result.content
        assert result.structured_content["stdout"] == "drawn\n"
        assert result.structured_content["results"] == ["[image 1: PNG, attached]"]
        assert "images" not in result.structured_content
        images = [c for c in result.content if c.type == "image"]
        assert len(images) == 1 and images[0].mime_type == "image/png"
        assert base64.b64decode(images[0].data).startswith(b"\x89PNG\r\n\x1a\n")
