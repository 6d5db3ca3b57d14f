"""JavaScript, TypeScript, Java and Bash kernels: values, output, state, errors, env, interrupts."""

from __future__ import annotations

import json

import pytest

from tests.interpreter.conftest import needs_java, needs_node
from tests.interpreter.helpers import Interpreter, run


def _has_typescript() -> bool:
    import os
    return os.path.exists("/usr/share/nodejs/typescript/package.json")


needs_typescript = pytest.mark.skipif(not _has_typescript(), reason="node-typescript is not installed")


@needs_node
@pytest.mark.parametrize("language", ["js", "javascript", "JavaScript"])
async def test_js_aliases(interp: Interpreter, language: str) -> None:
    async with interp.client() as c:
        assert (await run(c, "20 + 22", language=language)).text == "42"


@needs_node
@needs_typescript
async def test_js_state_await_console_and_last_expression(interp: Interpreter) -> None:
    async with interp.client() as c:
        ex = await run(c, "const a = 40;\nlet b = 2;\nconsole.log('sum', a + b);\nconsole.error('warn');\na + b",
                       language="js")
        assert (ex.stdout, ex.stderr, ex.text) == ("sum 42\n", "warn\n", "42")
        assert ex.of("number_of_executions")
        assert (await run(c, "a * b", language="js")).text == "80"
        ex = await run(c, "const v = await new Promise(r => setTimeout(() => r(7), 1));\n"
                          "function twice(x) { return 2 * x }\nconsole.log('awaited');\ntwice(v)", language="js")
        assert (ex.stdout, ex.text) == ("awaited\n", "14")
        assert (await run(c, "v + twice(1)", language="js")).text == "9"
        assert (await run(c, "'text'", language="js")).text == "text"
        assert (await run(c, "({x: 1, y: [1, 2]})", language="js")).results[0]["json"] == {"x": 1, "y": [1, 2]}


@needs_node
async def test_js_errors_and_env(interp: Interpreter) -> None:
    async with interp.client() as c:
        ex = await run(c, "null.x", language="js")
        assert ex.error["name"] == "TypeError" and "null" in ex.error["value"]
        assert ex.error["traceback"]
        ex = await run(c, "throw new RangeError('bad')", language="js")
        assert (ex.error["name"], ex.error["value"]) == ("RangeError", "bad")
        assert (await run(c, "process.env.FOO", language="js", env_vars={"FOO": "bar"})).text == "bar"
        assert (await run(c, "String(process.env.FOO)", language="js")).text == "undefined"
        assert (await run(c, "[process.getuid(), process.cwd()]", language="js")).text == \
            f"[ 1000, '{interp.sandbox.user_home}' ]"


@needs_node
@needs_typescript
async def test_js_es_module_imports(interp: Interpreter) -> None:
    """`import` declarations work in a JavaScript cell (default, named, renamed, namespace and bare
    imports), and the imported names stay visible to later cells like any top-level binding."""
    async with interp.client() as c:
        ex = await run(c, "import { readFileSync as rfs, existsSync } from 'fs'\nimport path from 'path'\n"
                          "import * as os from 'os'\nimport 'util'\n"
                          "console.log(typeof rfs, typeof existsSync, path.join('a', 'b'), typeof os.hostname)",
                       language="js")
        assert ex.error is None, ex.error
        assert ex.stdout == "function function a/b function\n"
        assert (await run(c, "typeof rfs + ' ' + path.sep", language="js")).text == "function /"
        ex = await run(c, "import { nothing } from 'no-such-package-here'", language="js")
        assert ex.error is not None and "no-such-package-here" in ex.error["value"]
        ex = await run(c, "const { sep } = await import('path'); sep", language="js")
        assert ex.text == "/", ex.events


@needs_node
async def test_js_interrupt_on_disconnect(interp: Interpreter) -> None:
    async with interp.client() as c:
        ctx = (await c.post("/contexts", json={"language": "javascript"})).json()
        body = {"code": "console.log('spinning'); while (true) {}", "context_id": ctx["id"]}
        async with c.stream("POST", "/execute", json=body) as r:
            async for line in r.aiter_lines():
                if json.loads(line).get("text") == "spinning\n":
                    break
    async with interp.client() as c:
        assert (await run(c, "1 + 1", context_id=ctx["id"])).text == "2"


@needs_node
@needs_typescript
async def test_typescript(interp: Interpreter) -> None:
    async with interp.client() as c:
        ex = await run(c, "interface P { n: number }\nconst p: P = { n: 21 };\nconsole.log('ts');\np.n * 2",
                       language="ts")
        assert (ex.stdout, ex.text) == ("ts\n", "42")
        assert (await run(c, "const q: number = await Promise.resolve(p.n);\nq + 1", language="typescript")).text == "22"
        ex = await run(c, "const s: string = ", language="ts")
        assert ex.error is not None


@needs_java
async def test_java(interp: Interpreter) -> None:
    async with interp.client() as c:
        ex = await run(c, 'int x = 20;\nSystem.out.println("hello " + x);\nx * 2 + 2', language="java")
        assert ex.error is None, ex.error
        assert (ex.stdout, ex.text) == ("hello 20\n", "42")
        assert (await run(c, "x + 1", language="java")).text == "21"
        ex = await run(c, "int y = 1 / 0;", language="java")
        assert ex.error["name"] == "java.lang.ArithmeticException"
        ex = await run(c, "undefinedThing()", language="java")
        assert ex.error["name"] == "CompilationError"
        ex = await run(c, 'System.getenv("FOO")', language="java", env_vars={"FOO": "bar"})
        assert ex.text == "bar"  # quotes of a string value are stripped, as for Python
        assert (await run(c, 'System.getenv("FOO")', language="java")).text == "null"
        assert (await run(c, "String.join(\",\", java.util.List.of(\"a\", \"b\"))", language="java")).text == "a,b"


@needs_java
async def test_java_env_vars_are_system_properties_and_lines_arrive_apart(interp: Interpreter) -> None:
    """As on E2B: a cell's env vars are also system properties (restored afterwards, as the
    environment is), and a printed line and its newline are separate stdout messages."""
    async with interp.client() as c:
        ex = await run(c, 'System.getProperty("FOO")', language="java", env_vars={"FOO": "bar"})
        assert ex.text == "bar", ex.events
        assert (await run(c, 'System.getProperty("FOO", "default")', language="java")).text == "default"
        assert (await run(c, 'System.getProperty("SANDBOX_VAR")', language="java")).text == "from-sandbox"
        ex = await run(c, 'System.getProperty("SANDBOX_VAR")', language="java", env_vars={"SANDBOX_VAR": "over"})
        assert ex.text == "over"
        assert (await run(c, 'System.getProperty("SANDBOX_VAR")', language="java")).text == "from-sandbox"
        assert (await run(c, 'System.getProperty("user.dir")', language="java")).text == str(interp.sandbox.user_home)
        ex = await run(c, 'System.out.println("one"); System.out.print("two"); System.out.println();', language="java")
        assert [e["text"] for e in ex.of("stdout")] == ["one", "\n", "two", "\n"]


@needs_java
async def test_java_interrupt_on_disconnect(interp: Interpreter) -> None:
    async with interp.client() as c:
        ctx = (await c.post("/contexts", json={"language": "java"})).json()
        body = {"code": 'System.out.println("spinning"); while (true) { }', "context_id": ctx["id"]}
        async with c.stream("POST", "/execute", json=body) as r:
            async for line in r.aiter_lines():
                if json.loads(line).get("text") == "spinning":  # a line and its newline arrive apart
                    break
    async with interp.client() as c:
        assert (await run(c, "1 + 1", context_id=ctx["id"])).text == "2"


async def test_bash(interp: Interpreter) -> None:
    async with interp.client() as c:
        ex = await run(c, "X=21; echo value $((X * 2)); echo oops >&2", language="bash")
        assert (ex.stdout, ex.stderr, ex.error) == ("value 42\n", "oops\n", None)
        assert (await run(c, "echo $X; cd /tmp; pwd", language="bash")).stdout == "21\n/tmp\n"
        assert (await run(c, "pwd", language="bash")).stdout == "/tmp\n"
        ex = await run(c, "false", language="bash")
        assert ex.error == {"type": "error", "name": "ExitCodeError", "value": "exit status 1", "traceback": ""}
        assert (await run(c, 'echo "[$FOO]"', language="bash", env_vars={"FOO": "b a r"})).stdout == "[b a r]\n"
        assert (await run(c, 'echo "[${FOO-unset}]"; id -u', language="bash")).stdout == "[unset]\n1000\n"
        assert (await run(c, "read line; echo \"got[$line]\"", language="bash")).stdout == "got[]\n"


async def test_bash_interrupt_and_exit(interp: Interpreter) -> None:
    async with interp.client() as c:
        ctx = (await c.post("/contexts", json={"language": "bash"})).json()
        await run(c, "KEEP=yes", context_id=ctx["id"])
        body = {"code": "echo spinning; sleep 1000; echo never", "context_id": ctx["id"]}
        async with c.stream("POST", "/execute", json=body) as r:
            async for line in r.aiter_lines():
                if json.loads(line).get("text") == "spinning\n":
                    break
    async with interp.client() as c:
        assert (await run(c, "echo $KEEP", context_id=ctx["id"])).stdout == "yes\n"
        ex = await run(c, "exit 4", context_id=ctx["id"])
        assert ex.error["name"] == "KernelDied"
        assert (await run(c, "echo again", context_id=ctx["id"])).stdout == "again\n"


async def test_unknown_language_is_a_clear_400(interp: Interpreter) -> None:
    async with interp.client() as c:
        r = await c.post("/execute", json={"code": "1", "language": "brainfuck"})
    assert r.status_code == 400 and "unsupported language" in r.text
