"""Every kernel against the real `code-interpreter-v1` template: its Python, R, node + TypeScript,
JDK and bash, running as uid 1000 inside the template's root filesystem.

The interpreter itself runs on the host here; each kernel binary is reached through a wrapper
that enters a private mount namespace, binds /tmp, /dev and /proc into the template's rootfs and
chroots into it as user 1000. This proves the template carries everything the kernels need
(the lead's SDK e2e tests cover the full sandbox path through envd).
"""

from __future__ import annotations

import base64
import datetime
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


async def test_chart_details_and_pil_images(template_interp: Interpreter) -> None:
    """Chart data as E2B's clients read it (units from labels, date/log/categorical scales, ISO
    date ticks and points, pie angles rounded), and PIL images shown or saved appear as results,
    against the template's own matplotlib and Pillow."""
    async with template_interp.client() as c:
        ex = await run(c, "import datetime, numpy as np, matplotlib.pyplot as plt\n"
                          "days = [datetime.date(2023, 9, 1) + datetime.timedelta(days=i) for i in range(4)]\n"
                          "plt.figure(); plt.plot(days, [1.0, 2.0, 3.0, 4.0], label='up')\n"
                          "plt.xlabel('Time (s)'); plt.ylabel('Power [kW]'); plt.yscale('log'); plt.show()")
        chart = [r for r in ex.results if "chart" in r][0]["chart"]
        assert (chart["x_unit"], chart["y_unit"], chart["x_scale"], chart["y_scale"]) == ("s", "kW", "datetime", "log")
        assert chart["elements"][0]["points"][0] == ["2023-09-01", 1.0]
        assert datetime.datetime.fromisoformat(chart["x_ticks"][0])
        ex = await run(c, "plt.figure(); plt.plot([1, 2, 3], ['A', 'B', 'C']); plt.show()")
        chart = [r for r in ex.results if "chart" in r][0]["chart"]
        assert (chart["x_scale"], chart["y_scale"], chart["x_unit"]) == ("linear", "categorical", None)
        assert chart["elements"][0]["points"][1] == [2.0, "B"]
        ex = await run(c, "fig, ax = plt.subplots(); ax.pie([90, 10], labels=['a', 'b'], startangle=90); plt.show()")
        chart = [r for r in ex.results if "chart" in r][0]["chart"]
        assert [(e["label"], e["angle"]) for e in chart["elements"]] == [("a", 324.0), ("b", 36.0)]
        ex = await run(c, "from PIL import Image\nim = Image.new('RGB', (8, 8), 'red')\nim.show()\n"
                          "im.save('/tmp/corral-pil-test.png')\nimport io; im.save(io.BytesIO(), 'PNG')\nprint('done')")
        assert ex.error is None, ex.error
        pngs = [r["png"] for r in ex.results if "png" in r]
        assert len(pngs) == 2 and all(base64.b64decode(p).startswith(b"\x89PNG") for p in pngs)
        assert ex.stdout == "done\n"


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
        ex = await run(c, "import { readFileSync } from 'fs'\nconsole.log(typeof readFileSync)", language="js")
        assert ex.stdout == "function\n", ex.events  # the template's node (Debian's 18)
        ex = await run(c, "const { sep } = await import('path'); sep", language="js")
        assert ex.text == "/", ex.events


async def test_java_and_bash(template_interp: Interpreter) -> None:
    async with template_interp.client() as c:
        ex = await run(c, 'int x = 21; System.out.println("java"); x * 2', language="java")
        assert (ex.stdout, ex.text) == ("java\n", "42"), ex.events
        ex = await run(c, "echo $((6 * 7)); id -u", language="bash")
        assert ex.stdout == "42\n1000\n"
