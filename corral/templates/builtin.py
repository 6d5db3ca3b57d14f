"""The templates corral builds from Debian's packages without a Dockerfile: `base` (E2B's default
template name) and `code-interpreter-v1` (the code-interpreter SDK's default)."""

from __future__ import annotations

from corral.templates.code_interpreter import CODE_INTERPRETER_RECIPE
from corral.templates.recipe import BASE_RECIPE, DebianRecipe

BUILTIN_RECIPES: dict[str, DebianRecipe] = {r.name: r for r in (BASE_RECIPE, CODE_INTERPRETER_RECIPE)}
