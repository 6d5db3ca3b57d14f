"""Rich results from the Python kernel: matplotlib charts (PNG + chart data), DataFrames, MIME kinds."""

from __future__ import annotations

import base64

from tests.interpreter.conftest import needs_data_stack
from tests.interpreter.helpers import Interpreter, run

pytestmark = needs_data_stack

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _figure(ex):  # the one display_data result of a cell
    figures = [r for r in ex.results if "png" in r]
    assert len(figures) == 1, ex.events
    assert base64.b64decode(figures[0]["png"]).startswith(PNG_MAGIC)
    assert figures[0]["is_main_result"] is False
    return figures[0]


async def test_line_chart_with_show(interp: Interpreter) -> None:
    async with interp.client() as c:
        ex = await run(c, "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [4, 5, 6], label='up')\n"
                          "plt.title('t'); plt.xlabel('x'); plt.ylabel('y')\nplt.show()")
    chart = _figure(ex)["chart"]
    assert chart["type"] == "line" and chart["title"] == "t"
    assert (chart["x_label"], chart["y_label"], chart["x_scale"]) == ("x", "y", "linear")
    assert chart["elements"] == [{"label": "up", "points": [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]}]
    for key in ("x_ticks", "x_tick_labels", "y_ticks", "y_tick_labels", "x_unit", "y_unit"):
        assert key in chart


async def test_open_figure_at_end_of_cell_is_shown(interp: Interpreter) -> None:
    async with interp.client() as c:
        ex = await run(c, "import matplotlib.pyplot as plt\nfig = plt.figure()\n"
                          "plt.scatter([1, 2], [3, 4])\nNone")
    chart = _figure(ex)["chart"]
    assert chart["type"] == "scatter"
    assert chart["elements"][0]["points"] == [[1.0, 3.0], [2.0, 4.0]]


async def test_bar_pie_box(interp: Interpreter) -> None:
    async with interp.client() as c:
        bar = await run(c, "import matplotlib.pyplot as plt\nplt.bar(['a', 'b'], [3, 5])\nplt.title('bars')\nplt.show()")
        pie = await run(c, "plt.pie([1, 3], labels=['x', 'y'])\nplt.show()")
        box = await run(c, "plt.boxplot([[1, 2, 3, 4, 100], [2, 3, 4]])\nplt.show()")
    chart = _figure(bar)["chart"]
    assert chart["type"] == "bar" and chart["title"] == "bars"
    assert [(e["label"], e["value"]) for e in chart["elements"]] == [("a", 3.0), ("b", 5.0)]
    chart = _figure(pie)["chart"]
    assert chart["type"] == "pie"
    assert [(e["label"], e["angle"]) for e in chart["elements"]] == [("x", 90.0), ("y", 270.0)]
    chart = _figure(box)["chart"]
    assert chart["type"] == "box_and_whisker"
    first = chart["elements"][0]
    assert (first["min"], first["median"], first["max"], first["outliers"]) == (1.0, 3.0, 4.0, [100.0])


async def test_two_axes_make_a_superchart(interp: Interpreter) -> None:
    async with interp.client() as c:
        ex = await run(c, "import matplotlib.pyplot as plt\nfig, (a, b) = plt.subplots(2)\n"
                          "a.plot([1, 2]); b.bar([1, 2], [3, 4])\nplt.show()")
    chart = _figure(ex)["chart"]
    assert chart["type"] == "superchart"
    assert [e["type"] for e in chart["elements"]] == ["line", "bar"]


async def test_dataframe_has_text_html_and_data(interp: Interpreter) -> None:
    async with interp.client() as c:
        ex = await run(c, "import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})")
    main = [r for r in ex.results if r["is_main_result"]][0]
    assert "<table" in main["html"]
    assert main["text"].split() == ["a", "b", "0", "1", "x", "1", "2", "y"]
    assert main["data"] == {"a": [1, 2], "b": ["x", "y"]}


async def test_mime_kinds(interp: Interpreter) -> None:
    code = (
        "from IPython.display import display, HTML, Markdown, SVG, Latex, JSON, Javascript\n"
        "display(HTML('<b>h</b>'))\ndisplay(Markdown('# m'))\n"
        "display(SVG('<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>'))\n"
        "display(Latex('$x$'))\ndisplay(JSON({'k': 1}))\ndisplay(Javascript('var a = 1'))\n"
        "display({'image/jpeg': 'anBn', 'application/pdf': 'cGRm', 'text/plain': 'p', 'x/custom': 'c'}, raw=True)\n"
    )
    async with interp.client() as c:
        ex = await run(c, code)
    by_field = {}
    for r in ex.results:
        for k in ("html", "markdown", "svg", "latex", "json", "javascript", "jpeg", "pdf"):
            if k in r:
                by_field[k] = r[k]
    assert by_field["html"] == "<b>h</b>"
    assert by_field["markdown"] == "# m"
    assert by_field["svg"].startswith("<svg")
    assert by_field["latex"] == "$x$"
    assert by_field["json"] == {"k": 1}
    assert by_field["javascript"] == "var a = 1"
    assert (by_field["jpeg"], by_field["pdf"]) == ("anBn", "cGRm")
    assert ex.results[-1]["extra"] == {"x/custom": "c"}
