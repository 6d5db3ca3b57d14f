"""Executed inside every Python kernel before python_startup.py (sent as code, never imported).

Describes a matplotlib Figure as the `e2b/chart` data clients redraw charts from, with the
details E2B's clients read:
- axis labels, and units taken from a label's "(unit)" or "[unit]" part ("Time (s)" -> "s");
- each axis' scale: "datetime" for date axes, matplotlib's own scale name when it is not linear
  ("log", "symlog", "logit"), "categorical" for string categories (or integer ticks 0..n-1 that
  carry other labels), else "linear";
- ticks as ISO dates on date axes, floats elsewhere; points as ISO dates, floats or categories;
- pie angles rounded to 8 significant digits less the angle's magnitude (324 for a 90% slice
  whose float sum is 323.99999141...), so clients see the angle that was asked for.
The plot kinds themselves come from the drawing calls python_startup.py records on each Axes.
Everything is built inside one function whose result (`chart_of`) python_startup.py keeps; the
function itself is deleted there, so nothing stays in the user's namespace.
"""


def __corral_chart_functions():  # noqa: C901 - one closure on purpose: nothing leaks into user globals
    import datetime
    import math
    import re
    from decimal import Decimal, localcontext

    unit_pattern = re.compile(r"\s\((.*?)\)|\[(.*?)\]")

    def number(value):
        try:
            out = float(value)
        except (TypeError, ValueError):
            return str(value)
        return out if math.isfinite(out) else None

    def point(value):
        """One coordinate as a client can read it: ISO text for dates, floats, else text."""
        if isinstance(value, (datetime.date, datetime.datetime)):
            return value.isoformat()
        if type(value).__name__ == "datetime64":
            return str(value.astype("datetime64[s]"))
        if isinstance(value, str):
            return value
        return number(value)

    def text_or_none(value):
        return value if value else None

    def unit_of(label):
        if not label:
            return None
        match = unit_pattern.search(label)
        return (match.group(1) or match.group(2)) if match else None

    def converter_of(axis):
        getter = getattr(axis, "get_converter", None)
        return getter() if getter is not None else getattr(axis, "converter", None)

    def is_date_axis(axis):
        import matplotlib.dates as mdates

        kinds = tuple(c for c in (getattr(mdates, "DateConverter", None),
                                  getattr(mdates, "_SwitchableDateConverter", None)) if c is not None)
        return bool(kinds) and isinstance(converter_of(axis), kinds)

    def is_category_axis(axis):
        from matplotlib.category import StrCategoryConverter

        return isinstance(converter_of(axis), StrCategoryConverter)

    def scale_of(axis, ticks, labels):
        if is_date_axis(axis):
            return "datetime"
        scale = axis.get_scale()
        if scale != "linear":
            return scale
        if is_category_axis(axis):
            return "categorical"
        # Integer ticks 0..n-1 that show other (non-empty) labels are categories placed by hand.
        if ticks and len(labels) == len(ticks) and all(
                t == i and label and label != str(i) for i, (t, label) in enumerate(zip(ticks, labels))):
            return "categorical"
        return "linear"

    def tick_info(ax):
        import matplotlib.dates as mdates

        info = {}
        for axis, name in ((ax.xaxis, "x"), (ax.yaxis, "y")):
            locs = list(axis.get_ticklocs())
            labels = [t.get_text() for t in axis.get_ticklabels()]
            if is_date_axis(axis):
                ticks = [mdates.num2date(t).isoformat() for t in locs]
            else:
                ticks = [number(t) for t in locs]
            info[f"{name}_ticks"] = ticks
            info[f"{name}_tick_labels"] = labels
            info[f"{name}_scale"] = scale_of(axis, ticks, labels)
        return info

    def axes_2d(ax):
        x_label, y_label = text_or_none(ax.get_xlabel()), text_or_none(ax.get_ylabel())
        return {"x_label": x_label, "y_label": y_label, "x_unit": unit_of(x_label), "y_unit": unit_of(y_label)}

    def label_of(artist, index, kind):
        label = artist.get_label()
        return label if label and not label.startswith("_") else f"{kind} {index}"

    def pie_angle(wedge):
        angle = Decimal(float(wedge.theta2)) - Decimal(float(wedge.theta1))
        with localcontext() as ctx:
            ctx.prec = max(1, 8 - angle.adjusted())
            return abs(float(+angle))

    def describe_axes(ax):
        kinds = getattr(ax, "_corral_kinds", [])
        title = ax.get_title() or None
        if "box" in kinds:
            elements = []
            for stats in getattr(ax, "_corral_boxes", []):
                elements.append({
                    "label": str(stats.get("label", "")), "min": number(stats["whislo"]),
                    "first_quartile": number(stats["q1"]), "median": number(stats["med"]),
                    "third_quartile": number(stats["q3"]), "max": number(stats["whishi"]),
                    "outliers": [number(v) for v in stats.get("fliers", [])],
                })
            return {"type": "box_and_whisker", "title": title, "elements": elements, **axes_2d(ax)}
        if "pie" in kinds:
            from matplotlib.patches import Wedge

            elements = [{"label": w.get_label(), "angle": pie_angle(w), "radius": number(w.r)}
                        for w in ax.patches if isinstance(w, Wedge)]
            return {"type": "pie", "title": title, "elements": elements}
        if "bar" in kinds:
            from matplotlib.container import BarContainer

            labels = {number(t): lab.get_text()
                      for t, lab in zip(ax.xaxis.get_ticklocs(), ax.xaxis.get_ticklabels())}
            elements = []
            for gi, container in enumerate(c for c in ax.containers if isinstance(c, BarContainer)):
                group = label_of(container, gi, "Group")
                for rect in container.patches:
                    center = number(rect.get_x() + rect.get_width() / 2)
                    label = labels.get(center) or (str(center) if center is not None else "")
                    elements.append({"label": label, "group": group, "value": number(rect.get_height())})
            return {"type": "bar", "title": title, "elements": elements, **axes_2d(ax)}
        if "scatter" in kinds:
            from matplotlib.collections import PathCollection

            elements = []
            for i, coll in enumerate(c for c in ax.collections if isinstance(c, PathCollection)):
                points = [[number(x), number(y)] for x, y in coll.get_offsets()]
                elements.append({"label": label_of(coll, i, "Scatter"), "points": points})
            return {"type": "scatter", "title": title, "elements": elements, **axes_2d(ax), **tick_info(ax)}
        if ax.get_lines():
            elements = []
            for i, line in enumerate(ax.get_lines()):
                # The data as given (dates, categories), not matplotlib's converted floats.
                xs, ys = line.get_xdata(orig=True), line.get_ydata(orig=True)
                points = [[point(x), point(y)] for x, y in zip(xs, ys)]
                elements.append({"label": label_of(line, i, "Line"), "points": points})
            return {"type": "line", "title": title, "elements": elements, **axes_2d(ax), **tick_info(ax)}
        return {"type": "unknown", "title": title, "elements": []}

    def describe_figure(fig):
        axes = [ax for ax in fig.get_axes() if ax.get_visible() and ax.has_data()]
        if not axes:
            return None
        if len(axes) == 1:
            chart = describe_axes(axes[0])
            if not chart["title"] and fig._suptitle is not None:
                chart["title"] = fig._suptitle.get_text() or None
            return chart
        title = fig._suptitle.get_text() if fig._suptitle is not None else None
        return {"type": "superchart", "title": title or None,
                "elements": [describe_axes(ax) for ax in axes]}

    def chart_of(fig):
        try:
            return describe_figure(fig)
        except Exception:  # a chart is optional; the PNG still goes out
            return None

    return chart_of
