"""`corral sandbox ls|kill`: look at and stop sandboxes on a running server."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from corral.cli.client import request
from corral.cli.errors import CliError

app = typer.Typer(help="List and kill sandboxes on a running server.", no_args_is_help=True)


@app.command("ls")
def ls(state: str = typer.Option("running,paused", help="Comma-separated states to show.")) -> None:
    """List sandboxes."""
    resp = request("GET", "/v2/sandboxes", params={"state": state, "limit": 100})
    rows = resp.json()
    table = Table("SANDBOX ID", "TEMPLATE", "STATE", "CPU", "MEMORY MB", "STARTED", "ENDS", "METADATA")
    for r in rows:
        meta = ",".join(f"{k}={v}" for k, v in (r.get("metadata") or {}).items())
        table.add_row(r["sandboxID"], r.get("alias") or r["templateID"], r["state"], str(r["cpuCount"]),
                      str(r["memoryMB"]), r["startedAt"][:19], r["endAt"][:19], meta)
    Console().print(table)


@app.command("kill")
def kill(sandbox_ids: list[str] = typer.Argument(..., help="Sandbox ids to kill.")) -> None:
    """Kill sandboxes."""
    missing = []
    for sid in sandbox_ids:
        resp = request("DELETE", f"/sandboxes/{sid}")
        if resp.status_code == 404:
            missing.append(sid)
        else:
            typer.echo(f"killed {sid}")
    if missing:
        raise CliError(f"not found: {', '.join(missing)}")


@app.command("audit")
def audit(sandbox_id: str = typer.Argument(..., help="The sandbox whose egress to show."),
          as_json: bool = typer.Option(False, "--json", help="Print the raw audit document.")) -> None:
    """Show a sandbox's egress: hosts contacted, bytes each way, denied attempts."""
    resp = request("GET", f"/sandboxes/{sandbox_id}/network/audit")
    if resp.status_code == 404:
        raise CliError(f"sandbox {sandbox_id} not found")
    doc = resp.json()
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    if not doc.get("attached"):
        typer.echo(f"{sandbox_id}: no network (offline)")
        return
    console = Console()
    console.print(f"[bold]{sandbox_id}[/] egress audit", highlight=False)
    console.print(json.dumps({k: v for k, v in doc.items() if k not in ("sandboxID", "attached")}, indent=2),
                  highlight=False, soft_wrap=True)
