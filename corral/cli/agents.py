"""`corral agents`: run the Media Gateway agents (corral.mediagateway) from a shell.

They reach the sandbox service through the same environment as the E2B SDK (E2B_API_KEY plus
E2B_BASE_URL, or E2B_API_URL/E2B_SANDBOX_URL, or E2B_DOMAIN); `corral env` prints it for a
local server.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from corral.cli.errors import CliError

app = typer.Typer(help="Run the Media Gateway agents in sandboxes.", no_args_is_help=True)


def _orchestrator(catalog: Path | None):
    from corral.mediagateway import MediaGatewayError, Orchestrator

    if not os.environ.get("E2B_API_KEY"):
        raise CliError("E2B_API_KEY is not set (for a local server: eval \"$(corral env --api-key KEY)\")")
    env = dict(os.environ)
    if catalog is not None:
        env["MEDIA_GATEWAY_CATALOG"] = str(catalog)
    try:
        return Orchestrator.from_env(env)
    except MediaGatewayError as exc:
        raise CliError(str(exc)) from None


def _run(coro_factory) -> Any:
    from corral.mediagateway import MediaGatewayError

    try:
        return asyncio.run(coro_factory())
    except MediaGatewayError as exc:
        raise CliError(str(exc)) from None


@app.command("list")
def list_agents(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The agents, what each does, and the template it runs in (E2B_TEMPLATES)."""
    from corral.mediagateway import AGENTS, Settings

    try:
        settings = Settings.from_env()
    except ValueError as exc:
        raise CliError(str(exc)) from None
    rows = [{"name": n, "template": settings.template_for(n), "summary": cls.summary} for n, cls in AGENTS.items()]
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    table = Table("agent", "template", "what it does")
    for r in rows:
        table.add_row(r["name"], r["template"], r["summary"])
    Console().print(table)


def _print_step(console: Console, step) -> None:
    color = {"ok": "green", "fallback": "yellow", "error": "red"}[step.outcome]
    console.print(f"[bold]{step.agent}[/] [{color}]{step.outcome}[/] template={step.template} sandbox={step.sandbox_id} "
                  f"attempts={step.attempts} time={step.duration_s:.2f}s sandbox-seconds={step.sandbox_seconds:.2f}")
    if step.output_summary:
        console.print(f"  {step.output_summary}")
    if step.error:
        console.print(f"  [red]error:[/] {step.error}")


def _print_items(console: Console, items) -> None:
    if not items:
        return
    table = Table("#", "title", "year", "genres", "score", "reason")
    for n, i in enumerate(items, 1):
        table.add_row(str(n), i.title, str(i.year or ""), ", ".join(i.genres), f"{i.score:.3f}", i.reason)
    console.print(table)


@app.command("run")
def run(name: str = typer.Argument(..., help="Agent name (corral agents list)."),
        query: str = typer.Option(None, "--query", "-q", help="The person's query (discovery, search, recommendation; "
                                  "a title for sona and scraping)."),
        user: str = typer.Option(None, "--user", "-u", help="User id in the catalog (recommendation, analysis, sona)."),
        files: list[Path] = typer.Option([], "--file", "-f", help="Input file (content: media; scraping: HTML). Repeatable."),
        catalog: Path = typer.Option(None, "--catalog", help="Your own catalog (CSV or JSON) instead of the shipped one."),
        artifacts: Path = typer.Option(None, "--artifacts", help="Directory to write the agent's artifacts to."),
        as_json: bool = typer.Option(False, "--json", help="Print the result as JSON.")) -> None:
    """Run one agent in its own sandbox and print what it found."""
    from corral.mediagateway import AgentRequest

    orch = _orchestrator(catalog)
    request = AgentRequest(query=query, user_id=user, files=files)

    async def go():
        try:
            return await orch.run_agent(name, request)
        finally:
            await orch.aclose()

    out = _run(go)
    if artifacts is not None and out.artifacts:
        artifacts.mkdir(parents=True, exist_ok=True)
        for fname, data in out.artifacts.items():
            (artifacts / Path(fname).name).write_bytes(data)
    if as_json:
        doc = out.model_dump(mode="json")
        doc["artifacts"] = {k: len(v) for k, v in out.artifacts.items()}
        typer.echo(json.dumps(doc, indent=1))
    else:
        console = Console()
        _print_step(console, out.step)
        _print_items(console, out.items)
        for note in out.notes:
            console.print(f"note: {note}")
        for fname, data in out.artifacts.items():
            console.print(f"artifact {fname}: {len(data)} bytes" + (f" -> {artifacts / fname}" if artifacts else ""))
    if out.step.outcome == "error":
        raise typer.Exit(1)


@app.command("orchestrate")
def orchestrate(query: str = typer.Argument(..., help="What the person is looking for."),
                user: str = typer.Option(None, "--user", "-u", help="User id in the catalog."),
                catalog: Path = typer.Option(None, "--catalog", help="Your own catalog (CSV or JSON)."),
                as_json: bool = typer.Option(False, "--json", help="Print the request's trace as JSON.")) -> None:
    """Route a query through discovery and search (in parallel), then recommendation; print the trace."""
    orch = _orchestrator(catalog)

    async def go():
        try:
            return await orch.run(query, user_id=user)
        finally:
            await orch.aclose()

    trace = _run(go)
    if as_json:
        typer.echo(trace.model_dump_json(indent=1))
    else:
        _print_trace(trace)
    if not trace.recommendations:  # every agent failed: say so with the exit status too
        raise typer.Exit(1)


def _print_trace(trace) -> None:
    """A short report: the request, one line per agent, the top five."""
    console = Console(soft_wrap=True)
    console.print(f"request {trace.request_id}: {trace.query!r} user={trace.user_id} — {len(trace.steps)} agents, "
                  f"{trace.duration_s:.2f}s, {trace.sandbox_seconds:.2f} sandbox-seconds")
    for step in trace.steps:
        _print_step(console, step)
    for n, item in enumerate(trace.recommendations[:5], 1):
        year = f" ({item.year})" if item.year else ""
        console.print(f"  {n}. {item.title}{year}  {item.score:.3f}  {item.reason[:90]}")
