"""`corral keys create|ls|revoke`: API keys stored (hashed) in a data dir."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from corral.cli.errors import CliError
from corral.config import Settings
from corral.ids import hash_key, new_api_key
from corral.store import Store

app = typer.Typer(help="Manage API keys (stored hashed in the data dir).", no_args_is_help=True)

DataDir = typer.Option(None, "--data-dir", help="Server data directory (default: $CORRAL_DATA_DIR or .data).")


def _store(data_dir: Path | None) -> Store:
    settings = Settings.from_env(data_dir=data_dir)
    return Store(settings.database)


def create_key(store: Store, name: str) -> str:
    key = new_api_key()
    store.add_key(hash_key(key), name, key[:12])
    return key


@app.command("create")
def create(name: str = typer.Option("default", help="A label for the key."), data_dir: Path | None = DataDir) -> None:
    """Create a key and print it once (only its hash is kept)."""
    typer.echo(create_key(_store(data_dir), name))


@app.command("ls")
def ls(data_dir: Path | None = DataDir) -> None:
    """List keys (prefix and name only)."""
    table = Table("PREFIX", "NAME", "CREATED")
    for k in _store(data_dir).keys():
        table.add_row(k.prefix + "…", k.name, str(k.created_at)[:19])
    Console().print(table)


@app.command("revoke")
def revoke(key: str = typer.Argument(..., help="The key's prefix (as `keys ls` shows it) or name."), data_dir: Path | None = DataDir) -> None:
    """Revoke keys by prefix or name."""
    n = _store(data_dir).remove_key(key.rstrip("…"))
    if n == 0:
        raise CliError(f"no key with prefix or name {key!r}")
    typer.echo(f"revoked {n} key(s)")
