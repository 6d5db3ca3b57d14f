"""The official `e2b-code-interpreter` SDK against corral: `run_code` in six languages, rich
results, errors, streaming, contexts, timeouts, and the spec's §3.2 recommendation workflow.

One sandbox (template `code-interpreter-v1`, the SDK's default) serves the module; tests that
change kernel state use their own contexts or names.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from e2b_code_interpreter import Sandbox
from e2b.exceptions import TimeoutException
from tests.tiers import tiered_sdk, tiered_server

pytestmark = pytest.mark.e2e

# The SDK's boundary tests run on every isolation tier this machine has (tests/tiers.py).
sdk = tiered_sdk
server = tiered_server


@pytest.fixture(scope="module")
def sbx(sdk) -> Iterator[Sandbox]:  # type: ignore[no-untyped-def]
    sandbox = Sandbox.create(envs={"SANDBOX_LEVEL": "from-create"}, timeout=900)
    yield sandbox
    sandbox.kill()


def test_default_template_is_the_code_interpreter(sbx: Sandbox) -> None:
    assert sbx.get_info().template_id == "code-interpreter-v1"


def test_one_plus_one(sbx: Sandbox) -> None:
    execution = sbx.run_code("1+1")
    assert execution.error is None
    assert execution.text == "2"


def test_state_is_kept_between_cells(sbx: Sandbox) -> None:
    sbx.run_code("kept_value = 40")
    assert sbx.run_code("kept_value + 2").text == "42"


def test_stdout_and_stderr_logs(sbx: Sandbox) -> None:
    execution = sbx.run_code("import sys\nprint('to out')\nprint('to err', file=sys.stderr)")
    assert execution.logs.stdout == ["to out\n"]
    assert execution.logs.stderr == ["to err\n"]


def test_sandbox_env_vars_and_per_run_env_vars(sbx: Sandbox) -> None:
    # As on E2B, a string result's text has its surrounding quotes stripped.
    assert sbx.run_code("import os; os.environ['SANDBOX_LEVEL']").text == "from-create"
    assert sbx.run_code("import os; os.environ['PER_RUN']", envs={"PER_RUN": "yes"}).text == "yes"
    assert sbx.run_code("import os; os.environ.get('PER_RUN')").text is None  # restored afterwards


def test_streaming_callbacks_arrive_while_the_cell_runs(sbx: Sandbox) -> None:
    """The cell waits for a file that only the callback creates: it can finish only if the first
    line reached us while it was still running."""
    flag = "/tmp/stream-flag"
    seen: list[str] = []

    def on_stdout(msg) -> None:  # type: ignore[no-untyped-def]
        seen.append(msg.line)
        if "first" in msg.line:
            threading.Thread(target=lambda: sbx.files.write(flag, "go")).start()

    code = (
        "import os, time\nprint('first', flush=True)\n"
        f"for _ in range(600):\n    if os.path.exists({flag!r}): break\n    time.sleep(0.05)\n"
        f"print('second', os.path.exists({flag!r}))"
    )
    execution = sbx.run_code(code, on_stdout=on_stdout)
    assert execution.error is None
    assert any("second True" in line for line in seen), seen


def test_error_has_name_value_traceback_and_the_kernel_survives(sbx: Sandbox) -> None:
    sbx.run_code("survivor = 7")
    errors = []
    execution = sbx.run_code("1/0", on_error=errors.append)
    assert execution.error is not None
    assert execution.error.name == "ZeroDivisionError"
    assert execution.error.value == "division by zero"
    assert "ZeroDivisionError" in execution.error.traceback
    assert errors and errors[0].name == "ZeroDivisionError"
    assert sbx.run_code("survivor * 6").text == "42"


def test_matplotlib_chart_png_and_chart_data(sbx: Sandbox) -> None:
    execution = sbx.run_code(
        "import matplotlib.pyplot as plt\n"
        "plt.figure(); plt.plot([1, 2, 3], [4, 5, 6], label='l'); plt.title('growth'); plt.show()"
    )
    assert execution.error is None
    (result,) = execution.results
    assert result.png and result.png.startswith("iVBOR")  # base64 PNG, no data: prefix
    assert result.chart is not None and result.chart.type.value == "line"
    assert result.chart.title == "growth"
    assert [list(p) for p in result.chart.elements[0].points] == [[1, 4], [2, 5], [3, 6]]


def test_bar_chart_left_open_at_the_end_of_a_cell(sbx: Sandbox) -> None:
    execution = sbx.run_code(
        "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.bar(['a', 'b'], [3, 5])\nax.set_title('bars')"
    )
    charts = [r.chart for r in execution.results if r.chart is not None]
    assert any(c.type.value == "bar" for c in charts), execution.results
    assert any(r.png for r in execution.results)


def test_dataframe_gives_html_and_text(sbx: Sandbox) -> None:
    execution = sbx.run_code("import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})")
    (result,) = execution.results
    assert result.is_main_result
    assert "<table" in result.html and "a" in result.text
    assert set(result.formats()) >= {"text", "html"}


def test_recommendation_analysis_from_the_spec(sbx: Sandbox) -> None:
    """§3.2: upload preferences, pandas + scikit-learn cosine similarity, write
    /output/recommendations.json, download it."""
    preferences = {
        "user": [5, 0, 3, 1],
        "titles": {"Dark": [4, 0, 3, 1], "Friends": [0, 5, 0, 2], "Stranger Things": [5, 1, 3, 0]},
    }
    sbx.files.write("/data/preferences.json", json.dumps(preferences))
    execution = sbx.run_code(
        "import json\nimport numpy as np, pandas as pd\n"
        "from sklearn.metrics.pairwise import cosine_similarity\n"
        "prefs = json.load(open('/data/preferences.json'))\n"
        "titles = pd.DataFrame(prefs['titles']).T\n"
        "scores = cosine_similarity(np.array([prefs['user']]), titles.values)[0]\n"
        "recommendations = pd.Series(scores, index=titles.index).sort_values(ascending=False)\n"
        "recommendations.to_json('/output/recommendations.json')\n"
        "list(recommendations.index)"
    )
    assert execution.error is None, execution.error
    ranked = json.loads(sbx.files.read("/output/recommendations.json"))
    assert list(ranked)[0] in ("Stranger Things", "Dark") and list(ranked)[-1] == "Friends"
    assert execution.text.startswith("[")


def test_contexts_are_isolated_and_manageable(sbx: Sandbox) -> None:
    a = sbx.create_code_context(cwd="/tmp")
    b = sbx.create_code_context()
    assert a.id != b.id and a.cwd == "/tmp"
    sbx.run_code("secret_of_a = 1", context=a)
    err = sbx.run_code("secret_of_a", context=b).error
    assert err is not None and err.name == "NameError"
    assert sbx.run_code("import os; os.getcwd()", context=a).text == "/tmp"
    ids = {c.id for c in sbx.list_code_contexts()}
    assert {a.id, b.id} <= ids
    sbx.restart_code_context(a)
    assert sbx.run_code("secret_of_a", context=a).error.name == "NameError"  # state gone after restart
    sbx.remove_code_context(b)
    assert b.id not in {c.id for c in sbx.list_code_contexts()}


@pytest.mark.parametrize(
    ("language", "code", "value", "printed"),
    [
        ("javascript", "const jsValue = 6; console.log('from js'); jsValue * 7", "42", "from js"),
        ("typescript", "const tsValue: number = 21; console.log('from ts'); tsValue * 2", "42", "from ts"),
        ("r", "r_value <- 6; print('from r'); r_value * 7", "42", "from r"),
        ("java", "int javaValue = 6; System.out.println(\"from java\"); javaValue * 7", "42", "from java"),
        ("bash", "echo from bash; echo $((6 * 7))", "42", "from bash"),
    ],
)
def test_other_languages_return_a_value_and_print(sbx: Sandbox, language: str, code: str, value: str, printed: str) -> None:
    execution = sbx.run_code(code, language=language)
    assert execution.error is None, execution.error
    out = "".join(execution.logs.stdout)
    assert printed in out
    texts = [execution.text or ""] + [r.text or "" for r in execution.results] + [out]
    assert any(value in t for t in texts), (execution.text, execution.results, out)


def test_javascript_keeps_state_and_awaits(sbx: Sandbox) -> None:
    sbx.run_code("let counter = 1", language="js")
    assert sbx.run_code("counter += 1; counter", language="js").text == "2"
    assert sbx.run_code("await new Promise(r => setTimeout(() => r(5), 10))", language="js").text == "5"


def test_a_timed_out_cell_is_interrupted_and_the_next_cell_runs(sbx: Sandbox) -> None:
    marker = f"/tmp/timeout-{time.monotonic_ns()}"
    with pytest.raises(TimeoutException):
        sbx.run_code(f"import time\nfor i in range(600):\n    time.sleep(0.1)\nopen({marker!r}, 'w').write('ran on')", timeout=2)
    # The kernel was interrupted: the loop never completes, and the kernel answers again.
    deadline = time.monotonic() + 60
    while True:
        execution = sbx.run_code("'alive'")
        if execution.error is None:
            break
        assert time.monotonic() < deadline, execution.error
    assert execution.text == "alive"
    time.sleep(1)
    assert not sbx.files.exists(marker)


def test_interpreter_calls_need_a_token(sbx: Sandbox, server) -> None:  # type: ignore[no-untyped-def]
    base = {"E2b-Sandbox-Id": sbx.sandbox_id, "E2b-Sandbox-Port": "49999"}
    for headers in ({}, {"X-Access-Token": "wrong"}, {"E2B-Traffic-Access-Token": "wrong"}):
        r = httpx.post(server.url + "/execute", json={"code": "1"}, headers={**base, **headers})
        assert r.status_code == 401
        assert httpx.get(server.url + "/contexts", headers={**base, **headers}).status_code == 401


def test_e2b_fidelity_contexts_imports_java_images_and_chart_details(sbx: Sandbox) -> None:
    """What E2B's own code-interpreter suite checks beyond the basics, through the official SDK:
    default contexts, ES-module imports, Java env vars as system properties and Java's line
    framing, PIL images as results, chart units/scales and pie angles."""
    assert {"python", "javascript"} <= {c.language for c in sbx.list_code_contexts()}
    js = sbx.run_code("import { readFileSync } from 'fs'\nconsole.log(typeof readFileSync)", language="js")
    assert js.error is None and js.logs.stdout == ["function\n"], (js.error, js.logs)
    java = sbx.run_code('System.getProperty("SANDBOX_LEVEL")', language="java")
    assert java.text == "from-create", (java.error, java.results)
    java = sbx.run_code('System.out.println(System.getProperty("PER_RUN"))', language="java", envs={"PER_RUN": "yes"})
    assert java.logs.stdout == ["yes", "\n"], (java.error, java.logs)
    assert sbx.run_code('System.getProperty("PER_RUN", "gone")', language="java").text == "gone"
    images = sbx.run_code("from PIL import Image\nim = Image.new('RGB', (4, 4), 'blue')\nim.show()\n"
                          "im.save('/tmp/fidelity.png')\nprint('saved')")
    assert images.error is None and len([r for r in images.results if r.png]) == 2, images
    charts = sbx.run_code(
        "import matplotlib.pyplot as plt\nplt.figure(); plt.plot([1, 2], [3, 4]); plt.xlabel('Time (s)')\n"
        "plt.ylabel('y'); plt.yscale('log'); plt.show()\n"
        "fig, ax = plt.subplots(); ax.pie([90, 10], labels=['a', 'b'], startangle=90); plt.show()")
    line, pie = (r.chart for r in charts.results if r.chart is not None)
    assert (line.x_unit, line.y_unit, line.y_scale.value) == ("s", None, "log")
    assert [(e.label, e.angle) for e in pie.elements] == [("a", 324), ("b", 36)]
