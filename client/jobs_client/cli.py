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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum, StrEnum
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from . import __version__
from .client import JobsClient
from .errors import ApiError, Duplicate, JobsClientError, TransportError
from .live import subscribe
from .models import Job, Queue, Redrive, TaskUpdate
from .tokens import ROLES, mint_token

app = typer.Typer(help="The jobs service from the command line.", no_args_is_help=True, pretty_exceptions_enable=False)
out = Console()
err = Console(stderr=True)

# Seams: tests put a client on a fake transport here, and fix the time lags are measured at.
client_factory: Callable[[str, str], JobsClient] = JobsClient


def clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class Settings:
    url: str
    ws_url: str
    token: str | None
    json: bool

    def client(self) -> JobsClient:
        if not self.token:
            raise typer.BadParameter("no token: pass --token or set JOBS_TOKEN", param_hint="--token")
        return client_factory(self.url, self.token)


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


def _show_job(settings: Settings, job: Job | None) -> None:
    if settings.json:
        _json(job)
        return
    if job is None:
        out.print("none")
        return
    table = Table(show_header=False, box=None)
    for name in ("id", "type", "state", "priority", "owner", "title", "status", "attempts", "version", "lease_owner"):
        table.add_row(name, str(_plain(getattr(job, name)) if getattr(job, name) is not None else ""))
    for name in ("schedule", "created", "started", "completed", "available_at", "execute_until", "locked_until"):
        if getattr(job, name) is not None:
            table.add_row(name, str(_plain(getattr(job, name))))
    if job.params is not None:
        table.add_row("params", json.dumps(job.params))
    if job.progress is not None:
        fraction = job.progress.fraction
        done = f" ({fraction:.0%})" if fraction is not None else ""
        table.add_row("progress", f"{job.progress.current}/{job.progress.maximum}{done} {job.progress.title or ''}".rstrip())
    if job.speeds:
        table.add_row("speeds", "  ".join(_speed_text(s) for s in job.speeds))
    if job.error is not None:
        table.add_row("error", f"{job.error.code}: {job.error.message}")
    if job.lease_token:
        table.add_row("lease_token", job.lease_token)
    if job.result is not None:
        table.add_row("result", json.dumps(job.result))
    out.print(table)


def _speed_text(speed: Any) -> str:
    return str(speed.as_text or f"{speed.speed} {speed.unit or ''}".strip())


def _not_found(what: str, name: str) -> typer.Exit:
    err.print(f"[red]error[/red] not_found: {what} {name} not found", highlight=False)
    return typer.Exit(1)


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
            raise _not_found("job", job_id)
        messages = list(client.iter_messages(job_id))
    if ctx.obj.json:
        _json({"job": job, "messages": messages})
        return
    _show_job(ctx.obj, job)
    for message in messages:
        out.print(f"  {_plain(message.at)}  {message.message}", highlight=False)


@app.command()
def delete(ctx: typer.Context, job_id: Annotated[str, typer.Argument()]) -> None:
    """Delete a job with its messages; prints it as it was."""
    with _service(ctx) as client:
        _show_job(ctx.obj, client.delete_job(job_id))


@app.command()
def result(ctx: typer.Context, job_id: Annotated[str, typer.Argument()]) -> None:
    """Print the result of a finished job, as JSON."""
    with _service(ctx) as client:
        value = client.get_result(job_id)
    _json(value)


@app.command()
def retry(ctx: typer.Context, job_id: Annotated[str, typer.Argument()]) -> None:
    """Put an error or cancelled job back to pending."""
    with _service(ctx) as client:
        _show_job(ctx.obj, client.retry_job(job_id))


def _print_message(settings: Settings, at: datetime | None, message: str) -> None:
    if settings.json:
        out.print(json.dumps({"message": message, "at": _plain(at)}), highlight=False, soft_wrap=True)
    else:
        out.print(f"{_plain(at)}  {message}", highlight=False, soft_wrap=True)


@app.command()
def logs(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument()],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Then print new messages live until the job completes.")] = False,
) -> None:
    """Print a job's messages, oldest first."""
    settings: Settings = ctx.obj
    with _service(ctx) as client:
        job = client.get_job(job_id)
        if job is None:
            raise _not_found("job", job_id)
        if follow and not job.complete:
            asyncio.run(_follow(settings, client, job_id))
            return
        messages = list(client.iter_messages(job_id))
    if settings.json:
        _json(messages)
        return
    for message in messages:
        _print_message(settings, message.at, message.message)


async def _follow(settings: Settings, client: JobsClient, job_id: str) -> None:
    assert settings.token is not None
    listed: set[tuple[datetime | None, str]] | None = None
    async for update in subscribe(settings.ws_url, settings.token, job_id=job_id, client=client):
        if listed is None:
            # Listed only once subscribed, so that nothing appended in between is lost; a
            # message both listed and sent live (same time, same text) is printed once.
            messages = await asyncio.to_thread(lambda: list(client.iter_messages(job_id)))
            for message in messages:
                _print_message(settings, message.at, message.message)
            listed = {(message.at, message.message) for message in messages}
        text = update.message_to_append
        if text is not None and (update.modified, text) not in listed:
            _print_message(settings, update.modified, text)
        if update.complete:
            return


@app.command()
def cancel(ctx: typer.Context, job_id: Annotated[str, typer.Argument()]) -> None:
    """Cancel a job (a running one is asked to stop)."""
    with _service(ctx) as client:
        _show_job(ctx.obj, client.cancel_job(job_id))


@app.command()
def claim(
    ctx: typer.Context,
    types: Annotated[list[str], typer.Argument(help="Queue, or several: the first with a job serves.")],
    timeout_ms: Annotated[int, typer.Option(help="Lease length.")] = 60_000,
    wait_ms: Annotated[int, typer.Option(help="Long poll up to this long (at most 20000).")] = 0,
    worker: Annotated[str | None, typer.Option(help="Worker name recorded on the lease.")] = None,
    max_jobs: Annotated[int | None, typer.Option(help="Lease up to this many (1-10), each with its own token.")] = None,
) -> None:
    """Lease the next job of a queue (or of the first of several with work); prints it with its
    lease token (exit 3 when none)."""
    with _service(ctx) as client:
        if max_jobs is None and len(types) == 1:
            job = client.claim(types[0], timeout_ms=timeout_ms, wait_ms=wait_ms or None, worker=worker)
            jobs = [job] if job is not None else []
        else:
            where = types[0] if len(types) == 1 else types
            jobs = client.claim_many(where, max_jobs=max_jobs or 1, timeout_ms=timeout_ms, wait_ms=wait_ms or None,
                                     worker=worker)  # fmt: skip
    if max_jobs is None:
        _show_job(ctx.obj, jobs[0] if jobs else None)
    elif ctx.obj.json:
        _json(jobs)
    else:
        for job in jobs:
            _show_job(ctx.obj, job)
    if not jobs:
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


BLOCKS = "▁▂▃▄▅▆▇█"
STATES = ("idle", "pending", "running", "finished", "error", "cancelled")


def human_span(span: timedelta | None) -> str:
    """`3s`, `2m 5s`, `1h 4m`, `2d 3h`; `—` for none."""
    if span is None:
        return "—"
    seconds = max(0, int(span.total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {seconds}s"
    return f"{seconds}s"


def sparkline(values: Sequence[int]) -> str:
    """One block per value, scaled to the largest; the lowest block only for zero, so that a
    quiet minute never looks like a busy one."""
    top = max(values, default=0)
    if top <= 0:
        return BLOCKS[0] * len(values)
    levels = len(BLOCKS) - 1
    return "".join(BLOCKS[0] if v <= 0 else BLOCKS[min(levels, -(-v * levels // top))] for v in values)


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _show_queue(settings: Settings, queue: Queue) -> Table | None:
    """The queue as rows (returned for more rows), or as JSON (printed; None returned)."""
    if settings.json:
        _json(queue)
        return None
    table = Table(show_header=False, box=None)
    table.add_row("type", queue.type)
    table.add_row("paused", _yes(queue.paused))
    table.add_row("fifo", _yes(queue.fifo))
    for state in STATES:
        table.add_row(state, str(getattr(queue.counts, state)))
    table.add_row("lag", human_span(queue.lag(clock())))
    table.add_row("oldest pending", str(_plain(queue.oldest_pending_at) or "—"))
    table.add_row("modified", str(_plain(queue.modified) or "—"))
    return table


@app.command()
def queues(
    ctx: typer.Context,
    prefix: Annotated[str | None, typer.Option(help="Only queues whose name starts with this.")] = None,
) -> None:
    """List queues: jobs in each state, lag (how long the oldest pending job has waited), settings."""
    with _service(ctx) as client:
        found = list(client.iter_queues(prefix=prefix))
    if ctx.obj.json:
        _json(found)
        return
    table = Table(
        Column("type", overflow="fold"),
        *(Column(state, justify="right", no_wrap=True) for state in STATES),
        Column("lag", justify="right", no_wrap=True),
        Column("paused", no_wrap=True),
        Column("fifo", no_wrap=True),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    now = clock()
    for queue in found:
        counts = [str(getattr(queue.counts, state)) for state in STATES]
        table.add_row(queue.type, *counts, human_span(queue.lag(now)), _yes(queue.paused), _yes(queue.fifo))
    out.print(table)


@app.command()
def queue(ctx: typer.Context, type: Annotated[str, typer.Argument(help="Queue (job type).")]) -> None:
    """Show a queue: counts, lag, settings, and per minute of the last hour jobs created, finished, failed."""
    with _service(ctx) as client:
        found = client.get_queue(type)
        if found is None:
            raise _not_found("queue", type)
        history = client.queue_history(type)
    if ctx.obj.json:
        _json({"queue": found, "history": history})
        return
    table = _show_queue(ctx.obj, found)
    assert table is not None
    if history:
        table.add_row("", "")
        first, last = _plain(history[0].minute), _plain(history[-1].minute)
        table.add_row("per minute", f"{first} .. {last}")
        for name in ("created", "finished", "failed"):
            values = [getattr(minute, name) for minute in history]
            table.add_row(name, f"{sparkline(values)}  {sum(values)}")
    out.print(table)


def _queue_command(ctx: typer.Context, change: Callable[[JobsClient], Queue]) -> None:
    with _service(ctx) as client:
        found = change(client)
    table = _show_queue(ctx.obj, found)
    if table is not None:
        out.print(table)


@app.command()
def pause(ctx: typer.Context, type: Annotated[str, typer.Argument(help="Queue (job type).")]) -> None:
    """Pause a queue: no claims until resumed (jobs can still be created)."""
    _queue_command(ctx, lambda client: client.pause_queue(type))


@app.command()
def resume(ctx: typer.Context, type: Annotated[str, typer.Argument(help="Queue (job type).")]) -> None:
    """Resume a paused queue."""
    _queue_command(ctx, lambda client: client.resume_queue(type))


class Redrivable(StrEnum):
    error = "error"
    cancelled = "cancelled"


class Purgeable(StrEnum):
    idle = "idle"
    pending = "pending"
    finished = "finished"
    error = "error"
    cancelled = "cancelled"


@app.command()
def redrive(
    ctx: typer.Context,
    type: Annotated[str, typer.Argument(help="Queue (job type).")],
    state: Annotated[
        list[Redrivable] | None, typer.Option("--state", help="Retry jobs in this state (repeatable; default error).")
    ] = None,
    code: Annotated[str | None, typer.Option("--code", help="Only error jobs with this error code.")] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, max=1000, help="Jobs per call (1-1000); calls go on until none is left.")
    ] = None,
) -> None:
    """Put the queue's error (or cancelled) jobs back to pending, batch after batch."""
    settings: Settings = ctx.obj
    states = [s.value for s in state] if state else None
    with _service(ctx) as client:
        found = client.get_queue(type)
        if found is None:
            raise _not_found("queue", type)
        if settings.json:
            totals = client.redrive_all(type, states=states, error_code=code, limit=limit)
        else:
            # An upper bound: an error code narrows it down by an unknown amount.
            expected = None if code else sum(getattr(found.counts, s) for s in states or ["error"])
            columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TextColumn("{task.fields[status]}"))
            with Progress(*columns, TimeElapsedColumn(), console=out) as progress:
                task = progress.add_task(f"redrive {type}", total=expected or None, status="")

                def show(done: Redrive) -> None:
                    status = f"retried {done.retried}, skipped {done.skipped}"
                    progress.update(task, completed=done.retried + done.skipped, status=status)

                totals = client.redrive_all(type, states=states, error_code=code, limit=limit, on_progress=show)
                progress.update(task, total=max(1, totals.retried + totals.skipped), completed=totals.retried + totals.skipped)
    if settings.json:
        _json(totals)
    else:
        out.print(f"retried {totals.retried}, skipped {totals.skipped}", highlight=False)
    if totals.more:
        err.print("stopped: the last call retried none of the jobs it looked at; they are left as they were", highlight=False)


@app.command()
def purge(
    ctx: typer.Context,
    type: Annotated[str, typer.Argument(help="Queue (job type).")],
    state: Annotated[Purgeable | None, typer.Option(help="Only jobs in this state (default: every state but running).")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete the queue's jobs that are not running, with their messages (admin)."""
    with _service(ctx) as client:
        found = client.get_queue(type)
        if found is None:
            raise _not_found("queue", type)
        if state is not None:
            what = f"{getattr(found.counts, state.value)} {state.value} jobs"
        else:
            what = f"{found.counts.total - found.counts.running} jobs (all but running)"
        if not yes and not typer.confirm(f"Delete {what} of queue {type}?", err=True):
            err.print("nothing deleted", highlight=False)
            raise typer.Exit(1)
        deleted = client.purge_queue(type, state=state.value if state else None)
    if ctx.obj.json:
        _json({"deleted": deleted})
    else:
        out.print(f"deleted {deleted}", highlight=False)


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
            fields["speeds"] = "  ".join(_speed_text(s) for s in update.speeds)
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
            raise _not_found("job", job_id)
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
