"""`corral usage`: the spec's §8 tables from a running server's metering.

Prints usage per group (sandboxes per day, average duration, monthly hours, estimated cost),
sandboxes per day, the monthly cost estimate by component and the warm pools' hits and misses.
`--json` prints the server's report document as is.
"""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from corral.cli.client import request

HELP_WHEN = "A date (2026-12-01), an RFC 3339 time, or a span back from now (24h, 7d)."


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def _money(value: float, currency: str) -> str:
    return f"${value:,.4f}" if currency == "USD" else f"{value:,.4f} {currency}"


def usage(since: str = typer.Option(None, "--since", help=f"Start of the period (default: 30 days before --until). {HELP_WHEN}"),
          until: str = typer.Option(None, "--until", help=f"End of the period (default: now). {HELP_WHEN}"),
          by: str = typer.Option("template", "--by", help="Group by `template`, `tier` or a metadata key (e.g. agent)."),
          as_json: bool = typer.Option(False, "--json", help="Print the report as JSON.")) -> None:
    """Sandbox usage and estimated cost, per template, tier or metadata key."""
    params = {"by": by, **({"since": since} if since else {}), **({"until": until} if until else {})}
    doc = request("GET", "/usage", params=params).json()
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    cur = doc["prices"]["currency"]
    console = Console()
    console.print(f"Usage from {doc['since'][:19]} to {doc['until'][:19]} UTC ({doc['days']:.2f} days), by {by}",
                  highlight=False)
    t = Table(by.capitalize(), "Sandboxes", "Sandboxes/Day", "Avg Duration", "Hours", "Paused Hours",
              "Monthly Hours", "Egress", "Est. Cost", title="Estimated usage (§8.2)")
    for g in [*doc["groups"], doc["total"]]:
        t.add_row("Total" if g is doc["total"] else g["key"], f"{g['sandboxes']:,}", f"{g['sandboxes_per_day']:,.1f}",
                  _duration(g["avg_duration_s"]) if g is not doc["total"] else "-", f"{g['running_hours']:,.3f}",
                  f"{g['paused_seconds'] / 3600:,.3f}", f"{g['monthly_hours']:,.1f}", f"{g['egress_bytes']:,} B",
                  _money(g["cost"], cur))
    console.print(t)
    days = Table("Day", by.capitalize(), "Sandboxes", "Avg Duration", "Hours", "Est. Cost", title="Sandboxes per day")
    for d in doc["daily"]:
        days.add_row(d["date"], d["key"], f"{d['sandboxes']:,}", _duration(d["avg_duration_s"]), f"{d['running_hours']:,.3f}",
                     _money(d["cost"], cur))
    console.print(days)
    cost = Table("Component", "Cost", title="Monthly cost estimate (§8.3)")
    for c in doc["cost_table"]:
        cost.add_row(c["component"], c.get("note") or _money(c["monthly_cost"], cur))
    console.print(cost)
    if doc.get("pools"):
        pools = Table("Pool", "Hits", "Misses", "Refills", "Avg Refill", title="Warm pools")
        for name, p in sorted(doc["pools"].items()):
            pools.add_row(name, str(p["hits"]), str(p["misses"]), str(p["refills"]), _duration(p["refill_seconds_avg"]))
        console.print(pools)
    console.print(f"Prices: {doc['prices']['name']} ({doc['prices']['source']})", highlight=False)
