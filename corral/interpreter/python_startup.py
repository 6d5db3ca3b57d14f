"""Executed once inside every Python kernel (sent as code, never imported by the daemon).

python_charts.py runs first and gives `chart_of`. This code teaches IPython two extra MIME types the code-interpreter protocol knows about:
- `e2b/chart`: a matplotlib Figure described as data (type, title, elements, axes), so that
  clients can redraw a chart instead of only showing its PNG;
- `e2b/data`: a pandas DataFrame as a column -> values dict.
and a helper pair that applies per-execution environment variables and restores them.

Plot kinds are recognised by wrapping the few Axes methods that create them (plot, scatter, bar,
pie, boxplot): each wrapper records what it drew on the Axes. Reading the recorded calls is
exact, where guessing a plot's kind from its artists afterwards is not (a box plot is just lines).
Images shown or saved with PIL become results (see `hook_pil`). Libraries are hooked when the
user first imports them. Everything lives in one function scope and is deleted, so the user's
namespace stays clean.
"""


def __corral_setup():  # noqa: C901 - one closure on purpose: nothing leaks into user globals
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

    chart_of = __corral_chart_functions()  # noqa: F821 - defined by python_charts.py, run first

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

    def hook_pil():
        """Images shown or saved with PIL appear as results, as on E2B: `Image.show()` displays
        the image in the cell (no desktop viewer exists here), and `Image.save(path)` displays
        what it saved. Saving to a file object stays silent."""
        from PIL import Image, ImageShow

        if getattr(Image.Image, "_corral_hooked", False):
            return

        class CellViewer(ImageShow.Viewer):
            def show_image(self, image, **options):
                from IPython.display import display

                display(image)
                return 1

        ImageShow.register(CellViewer, 0)
        original_save = Image.Image.save

        def save(self, fp, *args, **kwargs):
            out = original_save(self, fp, *args, **kwargs)
            if isinstance(fp, (str, bytes, os.PathLike)):
                from IPython.display import display

                display(self)
            return out

        save.__wrapped__ = original_save
        save.__doc__ = original_save.__doc__
        Image.Image.save = save
        Image.Image._corral_hooked = True

    # Hook a library when (and only if) the user imports it: importing it here would cost every
    # kernel start time for users who never plot. pyplot is matplotlib's trigger because by the
    # end of its import matplotlib is complete (axes alone is not).
    hooks = {"matplotlib.pyplot": hook_matplotlib, "PIL.Image": hook_pil}
    for name in [n for n in hooks if n in sys.modules]:
        try:
            hooks.pop(name)()
        except Exception:
            pass
    if hooks:
        import importlib.abc
        import importlib.util

        class _Finder(importlib.abc.MetaPathFinder):
            def find_spec(self, fullname, path, target=None):
                hook = hooks.pop(fullname, None)  # popped first: the find_spec below skips us
                if hook is None:
                    return None
                if not hooks:
                    sys.meta_path.remove(self)
                spec = importlib.util.find_spec(fullname)
                if spec is None or spec.loader is None:
                    return spec
                loader = spec.loader
                exec_module = loader.exec_module

                def exec_and_hook(module):
                    exec_module(module)
                    try:
                        hook()
                    except Exception:
                        pass  # hooks are optional; the library itself must keep working

                loader.exec_module = exec_and_hook
                return spec

        sys.meta_path.insert(0, _Finder())


__corral_setup()
del __corral_setup, __corral_chart_functions  # noqa: F821 - see python_charts.py
