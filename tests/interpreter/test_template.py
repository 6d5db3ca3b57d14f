"""Every kernel against the real `code-interpreter-v1` template: its Python, R, node + TypeScript,
JDK and bash, running as uid 1000 inside the template's root filesystem.

The interpreter itself runs on the host here; each kernel binary is reached through a wrapper
that enters a private mount namespace, binds /tmp, /dev and /proc into the template's rootfs and
chroots into it as user 1000. This proves the template carries everything the kernels need
(the lead's SDK e2e tests cover the full sandbox path through envd).
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.templates.code_interpreter import TEMPLATE_NAME
from corral.templates.store import TemplateStore
from tests.interpreter.helpers import Interpreter, run, start_interpreter, stop_interpreter

pytestmark = pytest.mark.root

# The interpreter starts kernels as its (fake) root here, so the wrapper hands the connection
# file to uid 1000 before it drops to that uid in the chroot.
WRAPPER = """#!/bin/sh
for f in /tmp/.corral-kernel-*/connection.json; do [ -f "$f" ] && chown 1000:1000 "$f"; done
exec unshare -m --propagation private sh -c '
  R="$1"; shift
  mount --rbind /tmp "$R/tmp" && mount --rbind /dev "$R/dev" && mount -t proc proc "$R/proc" &&
  exec chroot --userspec=1000:1000 "$R" env HOME=/home/user USER=user "$@"' sh {rootfs} {binary} "$@"
"""


def _rootfs() -> Path | None:
    try:
        info = TemplateStore().get(TEMPLATE_NAME)
    except Exception:  # noqa: BLE001 - not built here
        return None
    return info.rootfs


@pytest.fixture(scope="module")
def template_interp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Interpreter]:
    if os.geteuid() != 0:
        pytest.skip("needs root (mount namespaces, chroot)")
    rootfs = _rootfs()
    if rootfs is None:
        pytest.skip(f"template {TEMPLATE_NAME} is not built (corral template build)")
    wrappers = tmp_path_factory.mktemp("wrappers")
    paths = {}
    for name, binary in (("python", "/usr/bin/python3"), ("node", "/usr/bin/node"), ("r", "/usr/bin/R"),
                         ("java", "/usr/bin/java"), ("bash", "/bin/bash")):
        path = wrappers / name
        path.write_text(WRAPPER.format(rootfs=rootfs, binary=binary))
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
        paths[name] = str(path)
    it = start_interpreter(default_user="root", python=paths["python"], node=paths["node"], r=paths["r"],
                           java=paths["java"], bash=paths["bash"], start_timeout=120.0)
    yield it
    assert stop_interpreter(it) == 0, it.stderr()


async def test_python_data_stack(template_interp: Interpreter) -> None:
    async with template_interp.client() as c:
        assert (await run(c, "import os; (1+1, os.getuid())")).text == "(2, 1000)"
        ex = await run(c, "import numpy as np, pandas as pd, scipy, sklearn\n"
                          "import matplotlib.pyplot as plt\nplt.bar(['a', 'b'], [1, 2]); plt.show()\n"
                          "pd.DataFrame({'a': np.arange(2)})")
        assert ex.error is None, ex.error
        figure = [r for r in ex.results if "png" in r][0]
        assert base64.b64decode(figure["png"]).startswith(b"\x89PNG")
        assert figure["chart"]["type"] == "bar"
        main = [r for r in ex.results if r["is_main_result"]][0]
        assert "<table" in main["html"] and main["data"] == {"a": [0, 1]}


async def test_r(template_interp: Interpreter) -> None:
    async with template_interp.client() as c:
        ex = await run(c, "x <- 21\nprint('hi')\nx * 2", language="r")
        assert ex.error is None, ex.error
        # IRkernel shows values as display_data (is_main_result false), as under Jupyter.
        assert ex.stdout == '[1] "hi"\n' and ex.results[-1]["text"] == "[1] 42"
        assert (await run(c, "x + 1", language="r")).results[-1]["text"] == "[1] 22"
        ex = await run(c, "stop('boom')", language="r")
        assert ex.error is not None and "boom" in ex.error["value"]
        ex = await run(c, "Sys.getenv('FOO')", language="r", env_vars={"FOO": "bar"})
        assert ex.results[-1]["text"] == '[1] "bar"'
        assert (await run(c, "Sys.getenv('FOO')", language="r")).results[-1]["text"] == '[1] ""'


async def test_javascript_and_typescript(template_interp: Interpreter) -> None:
    async with template_interp.client() as c:
        ex = await run(c, "const a = await Promise.resolve(20);\nconsole.log('js');\na + 22", language="js")
        assert (ex.stdout, ex.text) == ("js\n", "42")
        ex = await run(c, "const n: number = 40;\nn + 2", language="ts")
        assert ex.text == "42", ex.events


async def test_java_and_bash(template_interp: Interpreter) -> None:
    async with template_interp.client() as c:
        ex = await run(c, 'int x = 21; System.out.println("java"); x * 2', language="java")
        assert (ex.stdout, ex.text) == ("java\n", "42"), ex.events
        ex = await run(c, "echo $((6 * 7)); id -u", language="bash")
        assert ex.stdout == "42\n1000\n"
