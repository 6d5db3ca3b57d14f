"""Executed once inside every Python kernel (sent as code, never imported by the daemon).

It teaches IPython two extra MIME types the code-interpreter protocol knows about:
- `e2b/chart`: a matplotlib Figure described as data (type, title, elements, axes), so that
  clients can redraw a chart instead of only showing its PNG;
- `e2b/data`: a pandas DataFrame as a column -> values dict.
and a helper pair that applies per-execution environment variables and restores them.

Plot kinds are recognised by wrapping the few Axes methods that create them (plot, scatter, bar,
pie, boxplot): each wrapper records what it drew on the Axes. Reading the recorded calls is
exact, where guessing a plot's kind from its artists afterwards is not (a box plot is just lines).
Everything lives in one function scope and is deleted, so the user's namespace stays clean.
"""


def __corral_setup():  # noqa: C901 - one closure on purpose: nothing leaks into user globals
    import math
    import os
    import sys

    ip = get_ipython()  # noqa: F821 - provided by IPython
    saved_env = []

    def env_push(values):
        saved_env.append({k: os.environ.get(k) for k in values})
        os.environ.update(values)

    def env_pop():
        if not saved_env:
            return
        for key, old in saved_env.pop().items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old

    ip.user_ns_hidden["__corral_env_push"] = env_push
    ip.user_ns_hidden["__corral_env_pop"] = env_pop
    ip.user_ns["__corral_env_push"] = env_push
    ip.user_ns["__corral_env_pop"] = env_pop

    from IPython.core.formatters import JSONFormatter
    from traitlets import Unicode


    class DataFormatter(JSONFormatter):
        format_type = Unicode("e2b/data")

    display_formatter = ip.display_formatter
    for cls in (DataFormatter,):
        fmt = cls(parent=display_formatter)
        display_formatter.formatters[fmt.format_type] = fmt

    def number(value):
        try:
            out = float(value)
        except (TypeError, ValueError):
            return str(value)
        return out if math.isfinite(out) else None

    def text_or_none(value):
        return value if value else None

    def tick_info(ax):
        info = {}
        for axis, name in ((ax.xaxis, "x"), (ax.yaxis, "y")):
            info[f"{name}_ticks"] = [number(t) for t in axis.get_ticklocs()]
            info[f"{name}_tick_labels"] = [t.get_text() for t in axis.get_ticklabels()]
            info[f"{name}_scale"] = axis.get_scale()
        return info

    def axes_2d(ax):
        return {"x_label": text_or_none(ax.get_xlabel()), "y_label": text_or_none(ax.get_ylabel()),
                "x_unit": None, "y_unit": None}

    def label_of(artist, index, kind):
        label = artist.get_label()
        return label if label and not label.startswith("_") else f"{kind} {index}"

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

            elements = [{"label": w.get_label(), "angle": number(abs(w.theta2 - w.theta1)),
                         "radius": number(w.r)} for w in ax.patches if isinstance(w, Wedge)]
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
                points = [[number(x), number(y)] for x, y in line.get_xydata()]
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

    def data_of(frame):
        try:
            return {str(k): v for k, v in frame.to_dict(orient="list").items()}
        except Exception:
            return None

    def hook_matplotlib():
        import matplotlib.axes
        from matplotlib import cbook

        Axes = matplotlib.axes.Axes
        if getattr(Axes, "_corral_hooked", False):
            return

        def recording(name, kind):
            original = getattr(Axes, name)

            def wrapper(self, *args, **kwargs):
                out = original(self, *args, **kwargs)
                kinds = self.__dict__.setdefault("_corral_kinds", [])
                if kind not in kinds:
                    kinds.append(kind)
                if kind == "box":
                    try:
                        data = args[0] if args else kwargs.get("x")
                        labels = kwargs.get("labels") or kwargs.get("tick_labels")
                        stats = cbook.boxplot_stats(data, whis=kwargs.get("whis") or 1.5, labels=labels)
                        for i, s in enumerate(stats):
                            s.setdefault("label", str(i + 1))
                        self.__dict__.setdefault("_corral_boxes", []).extend(stats)
                    except Exception:
                        pass
                return out

            wrapper.__wrapped__ = original
            wrapper.__doc__ = original.__doc__
            setattr(Axes, name, wrapper)

        for name, kind in (("bar", "bar"), ("barh", "bar"), ("pie", "pie"),
                           ("boxplot", "box"), ("scatter", "scatter")):
            recording(name, kind)
        Axes._corral_hooked = True

    class ChartFormatter(JSONFormatter):
        """Figures only, recognised by class rather than through the printer registry:
        matplotlib-inline pops Figure from every formatter's registry when it configures."""

        format_type = Unicode("e2b/chart")

        def __call__(self, obj):
            Figure = getattr(sys.modules.get("matplotlib.figure"), "Figure", None)
            if Figure is None or not isinstance(obj, Figure):
                return None
            return chart_of(obj)

    chart_formatter = ChartFormatter(parent=display_formatter)
    display_formatter.formatters["e2b/chart"] = chart_formatter
    data_formatter = display_formatter.formatters["e2b/data"]
    data_formatter.for_type_by_name("pandas.core.frame", "DataFrame", data_of)

    # Hook matplotlib when (and only if) the user imports pyplot: importing it here would cost
    # every kernel start a few hundred milliseconds for users who never plot. pyplot is the
    # trigger because by the end of its import matplotlib is complete (axes alone is not).
    if "matplotlib.pyplot" in sys.modules:
        hook_matplotlib()
    else:
        import importlib.abc

        class _Finder(importlib.abc.MetaPathFinder):
            def find_spec(self, fullname, path, target=None):
                if fullname == "matplotlib.pyplot":
                    sys.meta_path.remove(self)
                    spec = importlib.util.find_spec(fullname)
                    loader = spec.loader
                    exec_module = loader.exec_module

                    def exec_and_hook(module):
                        exec_module(module)
                        try:
                            hook_matplotlib()
                        except Exception:
                            pass  # charts are optional; plotting itself must keep working

                    loader.exec_module = exec_and_hook
                    return spec
                return None

        import importlib.util

        sys.meta_path.insert(0, _Finder())


__corral_setup()
del __corral_setup
