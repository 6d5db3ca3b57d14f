"""A tour of corral through the official `e2b` SDK, unchanged.

The SDK finds the server through the environment, exactly as existing E2B code would:

    export E2B_API_KEY=e2b_...                  # a corral key (`corral keys create`)
    export E2B_API_URL=http://127.0.0.1:3000
    export E2B_SANDBOX_URL=http://127.0.0.1:3000
    python examples/demo.py

It creates a sandbox from the `base` template, runs a command, hands it a file in /data, lets
Python in the sandbox write a result to /output, reads that back, lists sandboxes and kills it.
Exits non-zero, with the reason, if any step does not do what it should.
"""

from __future__ import annotations

import json
import os
import sys
import time

from e2b import Sandbox


def step(label: str, started: float) -> None:
    print(f"  {label:<52} {1000 * (time.perf_counter() - started):8.1f} ms")


def main() -> int:
    missing = [v for v in ("E2B_API_KEY", "E2B_API_URL", "E2B_SANDBOX_URL") if not os.environ.get(v)]
    if missing:
        print(f"demo: set {', '.join(missing)} first (see the top of this file)", file=sys.stderr)
        return 2

    t = time.perf_counter()
    sandbox = Sandbox.create(timeout=120, metadata={"purpose": "corral-demo"})
    step(f"Sandbox.create() -> {sandbox.sandbox_id}", t)
    try:
        t = time.perf_counter()
        result = sandbox.commands.run("echo hello from $(whoami) in $(pwd); python3 --version")
        step("commands.run('echo ...; python3 --version')", t)
        print("    " + result.stdout.strip().replace("\n", "\n    "))
        if result.exit_code != 0 or "hello from user" not in result.stdout:
            raise SystemExit(f"unexpected command result: {result}")

        preferences = {"genres": ["noir", "sci-fi"], "min_year": 1970}
        t = time.perf_counter()
        sandbox.files.write("/data/preferences.json", json.dumps(preferences))
        step("files.write('/data/preferences.json')", t)

        script = (
            "import json\n"
            "prefs = json.load(open('/data/preferences.json'))\n"
            "out = {'picked': sorted(prefs['genres']), 'after': prefs['min_year']}\n"
            "json.dump(out, open('/output/recommendations.json', 'w'))\n"
        )
        sandbox.files.write("/home/user/recommend.py", script)
        t = time.perf_counter()
        run = sandbox.commands.run("python3 /home/user/recommend.py")
        step("commands.run('python3 recommend.py')", t)
        if run.exit_code != 0:
            raise SystemExit(f"script failed: {run.stderr}")

        t = time.perf_counter()
        content = sandbox.files.read("/output/recommendations.json")
        step("files.read('/output/recommendations.json')", t)
        print(f"    {content}")
        if json.loads(content) != {"picked": ["noir", "sci-fi"], "after": 1970}:
            raise SystemExit(f"unexpected file content: {content!r}")

        t = time.perf_counter()
        listed = Sandbox.list().next_items()
        step(f"Sandbox.list() -> {len(listed)} running", t)
        if sandbox.sandbox_id not in {s.sandbox_id for s in listed}:
            raise SystemExit("the new sandbox is missing from Sandbox.list()")
    finally:
        t = time.perf_counter()
        killed = sandbox.kill()
        step(f"kill() -> {killed}", t)
    print("demo: all steps passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
