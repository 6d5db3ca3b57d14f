"""`make test`'s scheduling (tests/parallel.py) on a generated suite: a file's tests share one
worker, files in one serial group run one after the other on one worker, the heaviest unit goes
out first, and a failure in a worker still fails the run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

CONFTEST = '''
import json, os, time
import pytest
from tests import parallel
pytest_collection_modifyitems = parallel.pytest_collection_modifyitems
parallel.serial_group("shared", "test_serial_a.py", "test_serial_b.py")

@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    return parallel.make_scheduler(config, log) if config.getvalue("dist") == "loadfile" else None

@pytest.fixture(autouse=True)
def record(request):
    start = time.monotonic()
    yield
    with open(os.environ["RUN_LOG"], "a") as f:
        f.write(json.dumps({"file": request.node.path.name, "worker": os.environ.get("PYTEST_XDIST_WORKER"),
                            "start": start, "end": time.monotonic()}) + "\\n")
'''


def _suite(root: Path) -> None:
    (root / "conftest.py").write_text(CONFTEST)
    for n in range(4):   # small files: one test each
        (root / f"test_small{n}.py").write_text("import time\n\ndef test_a():\n    time.sleep(0.2)\n")
    # One test, but it says it takes ten seconds: goes out first.
    (root / "test_heavy.py").write_text("import time\n\nEXPECTED_SECONDS = 10\n\n"
                                        "def test_a():\n    time.sleep(0.5)\n")
    many = "".join(f"def test_{i}():\n    time.sleep(0.05)\n\n" for i in range(6))
    (root / "test_many.py").write_text("import time\n\n" + many)
    for name in ("test_serial_a.py", "test_serial_b.py"):
        (root / name).write_text("import time\n\n"
                                 "def test_a():\n    time.sleep(0.3)\n\ndef test_b():\n    time.sleep(0.3)\n")


def _run(root: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[dict]]:
    log = root / "run.jsonl"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "3",
                           "--dist", "loadfile", "--rootdir", str(root), "-c", "/dev/null", str(root), *args],
                          capture_output=True, text=True, timeout=300, cwd=REPO,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "RUN_LOG": str(log)})
    rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return done, rows


def test_files_stay_whole_groups_run_serially_heavy_goes_first_and_failures_fail(tmp_path: Path) -> None:
    """One run (each costs a controller and three workers): the scheduling, and a failing test in
    a worker failing the whole run with its name in the summary."""
    _suite(tmp_path)
    (tmp_path / "test_small2.py").write_text("import time\n\ndef test_a():\n    time.sleep(0.2)\n    assert 1 == 2\n")
    done, rows = _run(tmp_path, "-rf")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED" in done.stdout and "test_small2.py::test_a" in done.stdout, done.stdout
    assert len(rows) == 4 + 1 + 6 + 4
    by_file: dict[str, set[str]] = {}
    for r in rows:
        by_file.setdefault(r["file"], set()).add(r["worker"])
    assert all(len(w) == 1 for w in by_file.values()), by_file          # a file never splits
    assert len({r["worker"] for r in rows}) > 1, by_file                 # and the run is parallel
    assert by_file["test_serial_a.py"] == by_file["test_serial_b.py"]    # one group, one worker
    serial = sorted((r for r in rows if r["file"].startswith("test_serial")), key=lambda r: r["start"])
    assert all(a["end"] <= b["start"] for a, b in zip(serial, serial[1:]))   # never overlapping
    # The three heaviest units go out first, one per worker: by weight (test_heavy.py has one
    # test), not by number of tests; every small file comes after them.
    first = {w: min((r for r in rows if r["worker"] == w), key=lambda r: r["start"])["file"]
             for w in {r["worker"] for r in rows}}
    assert set(first.values()) == {"test_heavy.py", "test_many.py", "test_serial_a.py"}, first
