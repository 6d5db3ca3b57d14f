from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.interpreter.helpers import Interpreter, python_has, start_interpreter, stop_interpreter

needs_kernel_python = pytest.mark.skipif(
    not python_has("ipykernel"), reason="/usr/bin/python3 has no ipykernel (apt install python3-ipykernel)")
needs_data_stack = pytest.mark.skipif(
    not python_has("ipykernel", "matplotlib", "matplotlib_inline", "pandas"),
    reason="/usr/bin/python3 lacks matplotlib/pandas (apt install python3-matplotlib python3-pandas)")
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="java is not installed")


@pytest.fixture(scope="module")
def interp() -> Iterator[Interpreter]:
    it = start_interpreter()
    yield it
    rc = stop_interpreter(it)
    assert rc == 0, it.stderr()
