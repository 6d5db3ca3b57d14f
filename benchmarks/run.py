#!/usr/bin/env python3
"""Run `corral bench` and append its result to docs/BENCHMARKS.md.

Usage (as root, from the repository root):
    .venv/bin/python benchmarks/run.py                 # 50 iterations, 50 idle sandboxes
    .venv/bin/python benchmarks/run.py --idle 500      # the 500-sandbox density run
    .venv/bin/python benchmarks/run.py --url http://127.0.0.1:3000 --api-key "$E2B_API_KEY"

Every argument is passed to `corral bench` unchanged. The section appended records the command
(API key redacted), the machine (nproc, memory, kernel, cgroups), the date, the floor measured in
the same run and the tables; the tables are also printed. Nothing is appended if the run fails.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "BENCHMARKS.md"


def main(argv: list[str]) -> int:
    if "--json" in argv:
        print("benchmarks/run.py records Markdown; run `corral bench --json` directly for JSON", file=sys.stderr)
        return 2
    proc = subprocess.run(
        [sys.executable, "-m", "corral.cli.bench", "--markdown", *argv],
        cwd=REPO, stdout=subprocess.PIPE, text=True,
    )
    if proc.returncode != 0:
        print(f"corral bench failed (exit {proc.returncode}); nothing recorded", file=sys.stderr)
        return proc.returncode
    section = proc.stdout.strip() + "\n"
    sys.stdout.write(section)
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    DOC.write_text(text.rstrip("\n") + "\n\n" + section)
    print(f"appended to {DOC.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
