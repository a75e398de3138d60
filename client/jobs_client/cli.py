"""`jobs`: the command line of the jobs service.

The URL and token come from options or the environment (JOBS_URL, JOBS_WS_URL, JOBS_TOKEN;
JOBS_JWT_SECRET for `token`). `--json` prints what the service answered as JSON. A failure
exits non-zero with the contract's error code and message on stderr.

This module assembles the command line from its families: cli_jobs, cli_queues,
cli_schedules, cli_tokens and cli_watch, which print with cli_output and run with
cli_context (the settings, the client, errors as exit codes).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

import typer

from . import __version__, cli_jobs, cli_queues, cli_schedules, cli_tokens, cli_watch
from .cli_context import Settings
from .cli_output import human_span, sparkline
from .client import JobsClient
from .live import subscribe

app = typer.Typer(help="The jobs service from the command line.", no_args_is_help=True, pretty_exceptions_enable=False)

# Seams: tests put a client on a fake transport here, fix the time lags are measured at, and
# replace `subscribe`. They are read when a command starts (into its Settings), so a value
# put here is the one the command uses.
client_factory: Callable[[str, str], JobsClient] = JobsClient


def clock() -> datetime:
    return datetime.now(UTC)


def _print_version(value: bool) -> None:
    if value:
        print(f"jobs {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    url: Annotated[str, typer.Option(envvar="JOBS_URL", help="Base URL of the HTTP API.")] = "http://127.0.0.1:3000",
    ws_url: Annotated[str, typer.Option(envvar="JOBS_WS_URL", help="URL of the WebSocket API.")] = "ws://127.0.0.1:3001",
    token: Annotated[str | None, typer.Option(envvar="JOBS_TOKEN", help="Bearer token (JWT).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    ctx.obj = Settings(url, ws_url, token, as_json, client_factory=client_factory, clock=clock, subscribe=subscribe)


# The order here is the order of `jobs --help`.
cli_jobs.register(app)
cli_queues.register(app)
cli_schedules.register(app)
cli_tokens.register(app)
cli_watch.register(app)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


__all__ = ["app", "client_factory", "clock", "human_span", "main", "main_options", "sparkline", "subscribe"]

if __name__ == "__main__":
    main()
