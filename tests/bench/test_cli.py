"""`corral bench` command-line behaviour that needs no server."""

import typer
from typer.testing import CliRunner

from corral.cli.bench import bench, recorded_command
from corral.cli.errors import CliError

app = typer.Typer()
app.command()(bench)


def _invoke(*args: str) -> BaseException | None:
    result = CliRunner().invoke(app, list(args))
    return result.exception


def test_recorded_command_never_contains_the_api_key() -> None:
    secret = "e2b_" + "ab" * 20
    line = recorded_command(["bench", "--url", "http://127.0.0.1:3000", "--api-key", secret, "-n", "5"])
    assert secret not in line and "--api-key '<key>'" in line and line.startswith("corral bench --url")
    line = recorded_command(["bench", f"--api-key={secret}"])
    assert secret not in line and "--api-key=<key>" in line


def test_json_and_markdown_are_exclusive() -> None:
    exc = _invoke("--json", "--markdown")
    assert isinstance(exc, CliError) and "--json" in str(exc)


def test_url_without_key_is_a_clear_error(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("E2B_API_KEY", raising=False)
    exc = _invoke("--url", "http://127.0.0.1:9")
    assert isinstance(exc, CliError) and "--api-key" in str(exc)


def test_zero_iterations_is_refused() -> None:
    exc = _invoke("--iterations", "0")
    assert isinstance(exc, CliError) and "--iterations" in str(exc)


def test_recorded_command_is_the_same_with_or_without_the_subcommand_name() -> None:
    assert recorded_command(["bench", "-n", "3"]) == recorded_command(["-n", "3"]) == "corral bench -n 3"


def test_an_unknown_tier_is_refused() -> None:
    exc = _invoke("--tier", "kvm")
    assert isinstance(exc, CliError) and "--tier" in str(exc)
