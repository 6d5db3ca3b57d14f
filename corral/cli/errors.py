"""CLI errors: one clear line on stderr and exit status 1, never a traceback."""

from __future__ import annotations


class CliError(Exception):
    pass
