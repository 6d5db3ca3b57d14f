"""Code named by import path ("module:function" or "module"), resolved where it runs.

The server side decides what runs inside a sandbox and names it this way; the runtime (its
zygote) and envd resolve the names without importing what they name, so neither depends on it.
"""

from __future__ import annotations

import importlib
from typing import Any


def resolve(ref: str) -> Any:
    """"module:function" -> the function; "module" -> the module. ImportError/AttributeError."""
    module, _, name = ref.partition(":")
    obj: Any = importlib.import_module(module)
    return getattr(obj, name) if name else obj
