"""How `make test` spreads the suite over pytest-xdist workers (docs/TESTING.md).

The unit of work is a test *file* (as xdist's `--dist loadfile`): a module's fixtures, its server
or its sandbox, are made once, on one worker. Two additions, both here and nowhere else:

* Serial groups. Files listed together in ``SERIAL_GROUPS`` form one unit, so they run one after
  another on one worker and never beside each other (for tests that must not overlap: they look
  at or change state that other tests' processes share). Say in the file why it is listed.
* Longest first. Units go out in order of their expected time: a module's own
  ``EXPECTED_SECONDS = ...``, else the measured one in ``DURATIONS`` below, else a second per
  test. So the slow image build or browser tests start at once instead of ending the run alone
  while the other workers idle.

The controller never imports test modules: it sees node ids only, so groups are named by path
here, and the order comes from the workers, which sort their items the same way (the controller
keeps the order it is sent).
"""

from __future__ import annotations

from collections import defaultdict

import pytest

# Expected seconds per file, for the order only (nothing asserts on them). From the serial CI
# run's `--durations` (image, browser, egress, agents, the 20 s e2e tests) and the first
# parallel run's junit report scaled to an idle machine; rounded. A file missing here counts a
# second per test. Refresh when a file gets much slower or faster.
DURATIONS: dict[str, float] = {
    "tests/deploy/test_image.py": 200,            # mmdebstrap + umoci build of the OCI image
    "tests/builder/test_builder.py": 120,
    "tests/mediagateway/test_agents_e2e.py": 120,  # torch + the embedding model per agent run
    "tests/e2e/test_egress.py": 100,              # a fake internet and a server per tier
    "tests/templates/spec/test_spec_templates.py": 80,
    "tests/security/test_runtime_isolation.py": 70,
    "tests/bench/test_e2e.py": 80,               # + the server-side pool and resume phases (lc3)
    "tests/security/test_sandbox_limits.py": 65,
    "tests/cli/test_main.py": 60,
    "tests/mediagateway/gateway/test_browser.py": 60,   # Chromium through Playwright
    "tests/mediagateway/gateway/test_cli.py": 56,
    "tests/security/test_deadlines.py": 50,
    "tests/store/test_database_url.py": 45,
    "tests/runtime/gvisor/test_tier.py": 45,
    "tests/runtime/namespace/test_tier.py": 45,
    "tests/e2e/test_pause.py": 40,
    "tests/e2e/test_code_interpreter.py": 40,
    "tests/wire/test_client.py": 36,
    "tests/security/test_runtime_limits.py": 34,
    "tests/network/test_manager.py": 33,
    "tests/e2e/test_js_sdk.py": 33,
    "tests/interpreter/test_template.py": 31,
    "tests/e2e/test_domain_only.py": 30,
    "tests/interpreter/test_languages.py": 29,
    "tests/security/test_sandbox_envd_auth.py": 28,
    "tests/security/test_leftovers.py": 25,
    "tests/store/test_migrations.py": 25,
    "tests/store/test_server_on_postgres.py": 25,
    "tests/store/test_db.py": 24,
    "tests/deploy/test_terraform.py": 21,
    "tests/deploy/test_k8s.py": 20,
    "tests/cli/test_usage_cli.py": 20,
}


# Group name -> the test files that must never run at the same time as each other.
SERIAL_GROUPS: dict[str, tuple[str, ...]] = {}
_GROUP_OF = {path: name for name, paths in SERIAL_GROUPS.items() for path in paths}


def serial_group(name: str, *paths: str) -> None:
    """Add a serial group at import time (tests/test_parallel.py's generated suite uses it)."""
    SERIAL_GROUPS[name] = (*SERIAL_GROUPS.get(name, ()), *paths)
    _GROUP_OF.update(dict.fromkeys(paths, name))


def _unit(nodeid: str) -> str:
    """The scheduling unit of a node id: its file's serial group, else its file."""
    path = nodeid.partition("::")[0]
    return f"group:{_GROUP_OF[path]}" if path in _GROUP_OF else path


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On each xdist worker: order the items heaviest unit first (every worker alike)."""
    if not _is_xdist_worker(config):
        return
    weight: dict[str, float] = defaultdict(float)
    counted: set[str] = set()
    for item in items:
        path, unit = item.nodeid.partition("::")[0], _unit(item.nodeid)
        declared = getattr(getattr(item, "module", None), "EXPECTED_SECONDS", None)
        if declared is None and path not in DURATIONS:
            weight[unit] += 1.0
        elif path not in counted:   # a whole file's time, once
            counted.add(path)
            weight[unit] += float(declared if declared is not None else DURATIONS[path])
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
