"""Make every further import fail, as it would in a sandbox after pivot_root.

The daemons under test call their `preload()` first, then this; any module they import later
than that is a bug the preload tests must catch.
"""

from __future__ import annotations

import importlib.machinery
import sys


def lock_imports() -> None:
    keep = (importlib.machinery.BuiltinImporter, importlib.machinery.FrozenImporter)
    sys.path.clear()
    sys.meta_path[:] = [f for f in sys.meta_path if f in keep]
    sys.path_importer_cache.clear()
    sys.path_hooks.clear()
