"""How `make test` spreads the suite over pytest-xdist workers (docs/TESTING.md).

The unit of work is a test *file* (as xdist's `--dist loadfile`): a module's fixtures, its server
or its sandbox, are made once, on one worker. Two additions, both here and nowhere else:

* Serial groups. Files marked ``pytestmark = pytest.mark.xdist_group("name")`` form one unit, so
  they run one after another on one worker and never beside each other (for tests that must not
  overlap: they look at or change state that other tests' processes share). Only files share a
  group, so mark whole modules.
* Longest first. Units go out in order of their expected time (the last measured one from
  ``DURATIONS``, else a second per test), so the slow image build or browser tests start at once
  instead of ending the run alone while the other workers idle.

The controller never imports test modules; the workers collect, name each group in the node id
(``path::test@group``, as xdist's own loadgroup mode does) and order the items the same way on
every worker, which is what the controller then reads.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

# Seconds per file in a parallel `make test` on the 2-core CI machine (from `--durations` and
# the junit report, rounded). A file missing here counts a second per test; refresh this when a
# file gets much slower or faster.
DURATIONS: dict[str, float] = {}


def _unit(nodeid: str) -> str:
    """The scheduling unit of a node id: its group when it has one, else its file."""
    path, _, rest = nodeid.partition("::")
    group = rest.rpartition("@")[2] if "@" in rest else ""
    return f"group:{group}" if group else path


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _is_xdist_worker(config) or config.getvalue("dist") != "loadfile":
        return
    for item in items:
        mark = item.get_closest_marker("xdist_group")
        if mark is not None:
            name = mark.args[0] if mark.args else mark.kwargs.get("name", "default")
            item._nodeid = f"{item.nodeid}@{name}"
    weight: dict[str, float] = defaultdict(float)
    for item in items:
        path = item.nodeid.partition("::")[0]
        weight[_unit(item.nodeid)] += 1.0 if path not in DURATIONS else 0.0
    for path, seconds in DURATIONS.items():
        for unit in {_unit(i.nodeid) for i in items if i.nodeid.startswith(path + "::")}:
            weight[unit] += seconds
    first_seen = {u: n for n, u in reversed(list(enumerate(_unit(i.nodeid) for i in items)))}
    items.sort(key=lambda i: (-weight[_unit(i.nodeid)], first_seen[_unit(i.nodeid)]))


def make_scheduler(config: pytest.Config, log):  # type: ignore[no-untyped-def]
    """`--dist loadfile` with serial groups, in the workers' (longest-first) order."""
    from xdist.scheduler import LoadScopeScheduling

    class FileScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _unit(nodeid)

    config.option.loadscopereorder = False   # keep the workers' order: longest first, not most tests
    return FileScheduling(config, log)
