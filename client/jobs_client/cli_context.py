"""What every `jobs` command runs with: its settings, the client, and the contract's errors
turned into a message and an exit code."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import typer

from .cli_output import err
from .client import JobsClient
from .errors import ApiError, Duplicate, JobsClientError, TransportError
from .models import TaskUpdate


class Subscribe(Protocol):
    """`live.subscribe`, as far as the commands use it."""

    def __call__(
        self,
        ws_url: str,
        token: str,
        *,
        job_id: str | None = None,
        type: str | None = None,
        owner: str | None = None,
        client: JobsClient | None = None,
    ) -> AsyncIterator[TaskUpdate]: ...


@dataclass
class Settings:
    url: str
    ws_url: str
    token: str | None
    json: bool
    # The seams of jobs_client.cli, as they were when the command started: commands reach
    # them here, so that whatever a test put there is what they use.
    client_factory: Callable[[str, str], JobsClient]
    clock: Callable[[], datetime]
    subscribe: Subscribe

    def client(self) -> JobsClient:
        if not self.token:
            raise typer.BadParameter("no token: pass --token or set JOBS_TOKEN", param_hint="--token")
        return self.client_factory(self.url, self.token)


def parse_json(text: str | None, name: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise typer.BadParameter(f"not JSON: {error}", param_hint=name) from None


@contextmanager
def service(ctx: typer.Context) -> Iterator[JobsClient]:
    """The client; the contract's errors become a message and a non-zero exit."""
    settings: Settings = ctx.obj
    try:
        with settings.client() as client:
            yield client
    except ApiError as error:
        err.print(f"[red]error[/red] {error.code}: {error.message}", highlight=False)
        if isinstance(error, Duplicate) and error.existing_id:
            err.print(f"the unfinished job {error.existing_id} has the same type and ref_id", highlight=False)
        if error.details:
            err.print(json.dumps(error.details), highlight=False)
        raise typer.Exit(1) from None
    except TransportError as error:
        if error.unreachable:
            err.print(
                f"[red]error[/red] cannot reach the jobs service at {error.url} ({error.__cause__}).\n"
                "Is it running? Start it here with `make run`, or point --url / JOBS_URL at it.",
                highlight=False,
            )
        else:
            err.print(f"[red]error[/red] {error}", highlight=False)
        raise typer.Exit(2) from None
    except JobsClientError as error:
        err.print(f"[red]error[/red] {error}", highlight=False)
        raise typer.Exit(2) from None


def not_found(what: str, name: str) -> typer.Exit:
    err.print(f"[red]error[/red] not_found: {what} {name} not found", highlight=False)
    return typer.Exit(1)
