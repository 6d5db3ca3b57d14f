"""envd and the interpreter share corral.guest and do not import each other (or the server)."""

from __future__ import annotations

import subprocess
import sys

import pytest

SERVER_SIDE = ("corral.api", "corral.lifecycle", "corral.store", "corral.network", "corral.templates",
               "corral.runtime", "corral.cli")


def _loaded_after(imports: str) -> list[str]:
    code = f"import sys, {imports}; print('\\n'.join(sorted(m for m in sys.modules if m.startswith('corral'))))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return out.split()


@pytest.mark.parametrize("module", ["corral.guest.users", "corral.guest.reaper", "corral.guest.spawn",
                                    "corral.guest.output", "corral.guest.exitstatus"])
def test_guest_imports_neither_envd_nor_the_interpreter(module: str) -> None:
    loaded = _loaded_after(module)
    assert not [m for m in loaded if m.startswith(("corral.envd", "corral.interpreter") + SERVER_SIDE)], loaded


def test_the_interpreter_does_not_import_envd() -> None:
    loaded = _loaded_after("corral.interpreter, corral.interpreter.app, corral.interpreter.contexts")
    assert not [m for m in loaded if m.startswith(("corral.envd",) + SERVER_SIDE)], loaded


def test_envd_app_does_not_import_the_interpreter() -> None:
    loaded = _loaded_after("corral.envd.app")
    assert not [m for m in loaded if m.startswith(("corral.interpreter",) + SERVER_SIDE)], loaded


def test_the_in_sandbox_side_stays_free_of_httpx() -> None:
    """corral.wire's top level is imported into every sandbox; its client (httpx) is not."""
    code = "import sys, corral.envd.server, corral.wire; assert 'httpx' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
