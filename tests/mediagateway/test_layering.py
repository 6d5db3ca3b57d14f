"""The layer contract: corral.mediagateway imports nothing from corral outside itself, and only
corral.cli imports it."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LAYER = REPO / "corral" / "mediagateway"


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_layer_imports_nothing_else_from_corral():
    bad = [(p.relative_to(REPO), n) for p in LAYER.rglob("*.py") for n in _imports(p)
           if (n == "corral" or n.startswith("corral.")) and not n.startswith("corral.mediagateway")]
    assert bad == []


def test_only_the_cli_imports_the_layer():
    users = {p.relative_to(REPO).parts[:2] for p in (REPO / "corral").rglob("*.py")
             if not p.is_relative_to(LAYER) and any(n.startswith("corral.mediagateway") for n in _imports(p))}
    assert users <= {("corral", "cli")}


def test_relative_imports_stay_inside_the_layer():
    for p in LAYER.rglob("*.py"):
        depth = len(p.relative_to(LAYER).parts) - 1
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.level - 1 <= depth, f"{p}: relative import leaves the layer"
