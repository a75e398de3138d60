"""`jobs`: the command line of the jobs service.

The URL and token come from options or the environment (JOBS_URL, JOBS_WS_URL, JOBS_TOKEN;
JOBS_JWT_SECRET for `token`). `--json` prints what the service answered as JSON. A failure
exits non-zero with the contract's error code and message on stderr.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from . import __version__
from .client import JobsClient
from .errors import ApiError, JobsClientError, TransportError
from .live import subscribe
from .models import Job, TaskUpdate
from .tokens import ROLES, mint_token

app = typer.Typer(help="The jobs service from the command line.", no_args_is_help=True, pretty_exceptions_enable=False)
out = Console()
err = Console(stderr=True)


@dataclass
class Settings:
    url: str
    ws_url: str
    token: str | None
    json: bool

    def client(self) -> JobsClient:
        if not self.token:
            raise typer.BadParameter("no token: pass --token or set JOBS_TOKEN", param_hint="--token")
        return JobsClient(self.url, self.token)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, Enum):
        return value.value
    return value


def _json(value: Any) -> None:
    out.print_json(json.dumps(_plain(value)))


def _parse_json(text: str | None, name: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise typer.BadParameter(f"not JSON: {error}", param_hint=name) from None


@contextmanager
def _service(ctx: typer.Context) -> Iterator[JobsClient]:
    """The client; the contract's errors become a message and a non-zero exit."""
    settings: Settings = ctx.obj
    try:
        with settings.client() as client:
            yield client
    except ApiError as error:
        err.print(f"[red]error[/red] {error.code}: {error.message}", highlight=False)
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


def _show_job(settings: Settings, job: Job | None) -> None:
    if settings.json:
        _json(job)
        return
    if job is None:
        out.print("none")
        return
    table = Table(show_header=False, box=None)
    for name in ("id", "type", "state", "owner", "title", "status", "attempts", "version", "lease_owner", "locked_until"):
        table.add_row(name, str(_plain(getattr(job, name)) if getattr(job, name) is not None else ""))
    if job.progress is not None:
        table.add_row("progress", f"{job.progress.current}/{job.progress.maximum} {job.progress.title or ''}")
    if job.error is not None:
        table.add_row("error", f"{job.error.code}: {job.error.message}")
    if job.lease_token:
        table.add_row("lease_token", job.lease_token)
    if job.result is not None:
        table.add_row("result", json.dumps(job.result))
    out.print(table)


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
    ctx.obj = Settings(url, ws_url, token, as_json)


@app.command()
def submit(
    ctx: typer.Context,
    type: Annotated[str, typer.Argument(help="Queue (job type).")],
    params: Annotated[str | None, typer.Option(help="Parameters, as JSON.")] = None,
    owner: Annotated[str | None, typer.Option(help="End user the job belongs to.")] = None,
    title: Annotated[str | None, typer.Option()] = None,
    ref_id: Annotated[str | None, typer.Option(help="Your reference; with --unique, one unfinished job per type+ref_id.")] = None,
    unique: Annotated[bool, typer.Option(help="Return the unfinished job of this type+ref_id if there is one.")] = False,
    delay_ms: Annotated[int | None, typer.Option(help="Not claimable before this many ms.")] = None,
    ttl_ms: Annotated[int | None, typer.Option(help="Deadline: never started after this many ms.")] = None,
    max_retries: Annotated[int | None, typer.Option(help="Starts allowed.")] = None,
) -> None:
    """Create a job."""
    fields: dict[str, Any] = {"owner": owner, "title": title, "delay_ms": delay_ms, "ttl_ms": ttl_ms, "max_retries": max_retries}
    given: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    if params is not None:
        given["params"] = _parse_json(params, "--params")
    with _service(ctx) as client:
        if unique:
            if not ref_id:
                raise typer.BadParameter("--unique needs --ref-id", param_hint="--unique")
            job, _ = client.create_unique_job(type, ref_id, **given)
        else:
            if ref_id:
                given["ref_id"] = ref_id
            job = client.create_job(type, **given)
    _show_job(ctx.obj, job)


@app.command("list")
def list_jobs(
    ctx: typer.Context,
    type: Annotated[str | None, typer.Option(help="Only this type.")] = None,
    owner: Annotated[str | None, typer.Option(help="Only this owner.")] = None,
    state: Annotated[str | None, typer.Option(help="Only this state.")] = None,
    ref_id: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(help="At most this many (all pages are read up to it).")] = 20,
) -> None:
    """List jobs, newest first."""
    with _service(ctx) as client:
        jobs = []
        for job in client.iter_jobs(type=type, owner=owner, state=state, ref_id=ref_id):
            jobs.append(job)
            if len(jobs) >= limit:
                break
    if ctx.obj.json:
        _json(jobs)
        return
    # Whole ids and states, whatever the terminal's width: the ids are what show, cancel and
    # result take. Type, owner and title fold or shorten instead.
    table = Table(
        Column("id", no_wrap=True, min_width=26),
        Column("type", overflow="fold"),
        Column("state", no_wrap=True, min_width=9),
        Column("owner", overflow="fold"),
        Column("title", overflow="ellipsis", no_wrap=True, max_width=40),
        Column("done", no_wrap=True),
        Column("created (UTC)", no_wrap=True),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for job in jobs:
        progress = job.progress.fraction if job.progress else None
        table.add_row(
            job.id,
            job.type,
            job.state.value,
            job.owner or "",
            job.title or "",
            f"{progress:.0%}" if progress is not None else "",
            job.created.strftime("%Y-%m-%d %H:%M:%S") if job.created else "",
        )
    out.print(table)


@app.command()
def show(ctx: typer.Context, job_id: Annotated[str, typer.Argument()]) -> None:
    """Show a job and its messages."""
    with _service(ctx) as client:
        job = client.get_job(job_id)
        if job is None:
            err.print(f"[red]error[/red] not_found: job {job_id} not found", highlight=False)
            raise typer.Exit(1)
        messages = list(client.iter_messages(job_id))
    if ctx.obj.json:
        _json({"job": job, "messages": messages})
        return
    _show_job(ctx.obj, job)
    for message in messages:
        out.print(f"  {_plain(message.at)}  {message.message}", highlight=False)


@app.command()
def cancel(ctx: typer.Context, job_id: Annotated[str, typer.Argument()]) -> None:
    """Cancel a job (a running one is asked to stop)."""
    with _service(ctx) as client:
        _show_job(ctx.obj, client.cancel_job(job_id))


@app.command()
def claim(
    ctx: typer.Context,
    type: Annotated[str, typer.Argument(help="Queue.")],
    timeout_ms: Annotated[int, typer.Option(help="Lease length.")] = 60_000,
    wait_ms: Annotated[int, typer.Option(help="Long poll up to this long (at most 20000).")] = 0,
    worker: Annotated[str | None, typer.Option(help="Worker name recorded on the lease.")] = None,
) -> None:
    """Lease the next job of a queue; prints it with its lease token (exit 3 when none)."""
    with _service(ctx) as client:
        job = client.claim(type, timeout_ms=timeout_ms, wait_ms=wait_ms or None, worker=worker)
    _show_job(ctx.obj, job)
    if job is None:
        raise typer.Exit(3)


@app.command()
def complete(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument()],
    lease_token: Annotated[str | None, typer.Option(help="Required while the job is running.")] = None,
    result: Annotated[str | None, typer.Option(help="Result, as JSON.")] = None,
) -> None:
    """Complete a job with its result."""
    with _service(ctx) as client:
        _show_job(ctx.obj, client.complete(job_id, lease_token=lease_token, result=_parse_json(result, "--result")))


@app.command()
def fail(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument()],
    lease_token: Annotated[str, typer.Option(help="The lease token from claim.")],
    code: Annotated[str, typer.Option()] = "failed",
    message: Annotated[str, typer.Option()] = "",
    retry: Annotated[bool, typer.Option(help="Let the service retry it while retries remain.")] = True,
    retry_in_ms: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Fail a job (retried while retries remain, unless --no-retry)."""
    with _service(ctx) as client:
        job = client.fail(job_id, lease_token, code=code, message=message, retry=retry, retry_in_ms=retry_in_ms)
    _show_job(ctx.obj, job)


@app.command()
def queues(ctx: typer.Context) -> None:
    """List queue names."""
    with _service(ctx) as client:
        names = list(client.iter_queues())
    if ctx.obj.json:
        _json(names)
    else:
        for name in names:
            out.print(name, highlight=False)


@app.command()
def token(
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")] = "service",
    sub: Annotated[str, typer.Option(help="The principal.")] = "svc-cli",
    secret: Annotated[str | None, typer.Option(envvar="JOBS_JWT_SECRET", help="The deployment's HS256 secret.")] = None,
    ttl_s: Annotated[int, typer.Option(help="Lifetime in seconds.")] = 3600,
) -> None:
    """Mint a token (local cloud and tests: JOBS_JWT_SECRET is its secret)."""
    if not secret:
        raise typer.BadParameter("pass --secret or set JOBS_JWT_SECRET", param_hint="--secret")
    try:
        print(mint_token(secret, sub, role, ttl_s=ttl_s))
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--role") from None


class _Bars:
    """Rich progress bars, one per job, with speeds, status and appended messages."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def apply(self, update: TaskUpdate, title: str | None = None) -> None:
        task = self.tasks.get(update.job_id)
        if task is None and update.resync and update.complete:
            return  # a job that ended before we looked: no bar for it
        name = title or update.new_title or update.job_id
        if task is None:
            task = self.progress.add_task(name, total=None, status="", speeds="")
            self.tasks[update.job_id] = task
        fields: dict[str, Any] = {}
        if update.new_title:
            fields["description"] = update.new_title
        if update.progress is not None and update.progress.maximum:
            fields["total"] = float(update.progress.maximum)
            fields["completed"] = float(update.progress.current or 0)
        if update.speeds:
            fields["speeds"] = "  ".join(s.as_text or f"{s.speed} {s.unit or ''}".strip() for s in update.speeds)
        if update.new_status:
            fields["status"] = update.new_status
        if update.complete:
            final = update.removed or (update.state.value if update.state else "done")
            fields["status"] = final
            if update.state is not None and update.state.value == "finished":
                total = self.progress.tasks[self.tasks[update.job_id]].total or 1.0
                fields["total"], fields["completed"] = total, total
        self.progress.update(task, **fields)
        if update.message_to_append:
            self.progress.console.print(f"[dim]{update.job_id}[/dim] {update.message_to_append}", highlight=False)


@app.command()
def watch(
    ctx: typer.Context,
    job_id: Annotated[str | None, typer.Argument(help="One job; all own jobs when left out.")] = None,
    type: Annotated[str | None, typer.Option(help="Services: every job of a type.")] = None,
    owner: Annotated[str | None, typer.Option(help="Services: every job of an owner.")] = None,
) -> None:
    """Watch live progress: bars, speeds, status and messages. One job: until it completes."""
    settings: Settings = ctx.obj
    if not settings.token:
        raise typer.BadParameter("no token: pass --token or set JOBS_TOKEN", param_hint="--token")
    with _service(ctx) as client:
        start = client.get_job(job_id) if job_id else None
        if job_id and start is None:
            err.print(f"[red]error[/red] not_found: job {job_id} not found", highlight=False)
            raise typer.Exit(1)
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[speeds]}"),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=out, transient=False) as progress:
            bars = _Bars(progress)
            if start is not None:
                bars.apply(TaskUpdate.from_job(start), start.title)
                if start.complete:
                    return
            state = asyncio.run(_watch(settings, client, bars, job_id, type, owner, _json if settings.json else None))
    if state not in (None, "finished"):
        raise typer.Exit(1)


async def _watch(
    settings: Settings,
    client: JobsClient,
    bars: _Bars,
    job_id: str | None,
    type: str | None,
    owner: str | None,
    emit: Callable[[Any], None] | None,
) -> str | None:
    assert settings.token is not None
    async for update in subscribe(settings.ws_url, settings.token, job_id=job_id, type=type, owner=owner, client=client):
        if emit is not None:
            emit(update)
        bars.apply(update)
        if job_id and update.complete:
            return update.removed or (update.state.value if update.state else None)
    return None


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
