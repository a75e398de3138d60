"""The `jobs` commands on queues: queues, queue, pause, resume, redrive and purge."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated

import typer
from rich import box
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from .cli_context import Settings, not_found, service
from .cli_output import err, human_span, out, plain, print_json, sparkline, yes_no
from .client import JobsClient
from .models import Queue, Redrive

STATES = ("idle", "pending", "running", "finished", "error", "cancelled")


def _show_queue(settings: Settings, queue: Queue) -> Table | None:
    """The queue as rows (returned for more rows), or as JSON (printed; None returned)."""
    if settings.json:
        print_json(queue)
        return None
    table = Table(show_header=False, box=None)
    table.add_row("type", queue.type)
    table.add_row("paused", yes_no(queue.paused))
    table.add_row("fifo", yes_no(queue.fifo))
    table.add_row("shards", str(queue.shards))
    for state in STATES:
        table.add_row(state, str(getattr(queue.counts, state)))
    table.add_row("lag", human_span(queue.lag(settings.clock())))
    table.add_row("oldest pending", str(plain(queue.oldest_pending_at) or "—"))
    table.add_row("modified", str(plain(queue.modified) or "—"))
    return table


def queues(
    ctx: typer.Context,
    prefix: Annotated[str | None, typer.Option(help="Only queues whose name starts with this.")] = None,
) -> None:
    """List queues: jobs in each state, lag (how long the oldest pending job has waited), settings."""
    with service(ctx) as client:
        found = list(client.iter_queues(prefix=prefix))
    if ctx.obj.json:
        print_json(found)
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
    now = ctx.obj.clock()
    for queue in found:
        counts = [str(getattr(queue.counts, state)) for state in STATES]
        table.add_row(queue.type, *counts, human_span(queue.lag(now)), yes_no(queue.paused), yes_no(queue.fifo))
    out.print(table)


def queue(ctx: typer.Context, type: Annotated[str, typer.Argument(help="Queue (job type).")]) -> None:
    """Show a queue: counts, lag, settings, and per minute of the last hour jobs created, finished, failed."""
    with service(ctx) as client:
        found = client.get_queue(type)
        if found is None:
            raise not_found("queue", type)
        history = client.queue_history(type)
    if ctx.obj.json:
        print_json({"queue": found, "history": history})
        return
    table = _show_queue(ctx.obj, found)
    assert table is not None
    if history:
        table.add_row("", "")
        first, last = plain(history[0].minute), plain(history[-1].minute)
        table.add_row("per minute", f"{first} .. {last}")
        for name in ("created", "finished", "failed"):
            values = [getattr(minute, name) for minute in history]
            table.add_row(name, f"{sparkline(values)}  {sum(values)}")
    out.print(table)


def _queue_command(ctx: typer.Context, change: Callable[[JobsClient], Queue]) -> None:
    with service(ctx) as client:
        found = change(client)
    table = _show_queue(ctx.obj, found)
    if table is not None:
        out.print(table)


def pause(ctx: typer.Context, type: Annotated[str, typer.Argument(help="Queue (job type).")]) -> None:
    """Pause a queue: no claims until resumed (jobs can still be created)."""
    _queue_command(ctx, lambda client: client.pause_queue(type))


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
    with service(ctx) as client:
        found = client.get_queue(type)
        if found is None:
            raise not_found("queue", type)
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
        print_json(totals)
    else:
        out.print(f"retried {totals.retried}, skipped {totals.skipped}", highlight=False)
    if totals.more:
        err.print("stopped: the last call retried none of the jobs it looked at; they are left as they were", highlight=False)


def purge(
    ctx: typer.Context,
    type: Annotated[str, typer.Argument(help="Queue (job type).")],
    state: Annotated[Purgeable | None, typer.Option(help="Only jobs in this state (default: every state but running).")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete the queue's jobs that are not running, with their messages (admin)."""
    with service(ctx) as client:
        found = client.get_queue(type)
        if found is None:
            raise not_found("queue", type)
        if state is not None:
            what = f"{getattr(found.counts, state.value)} {state.value} jobs"
        else:
            what = f"{found.counts.total - found.counts.running} jobs (all but running)"
        if not yes and not typer.confirm(f"Delete {what} of queue {type}?", err=True):
            err.print("nothing deleted", highlight=False)
            raise typer.Exit(1)
        deleted = client.purge_queue(type, state=state.value if state else None)
    if ctx.obj.json:
        print_json({"deleted": deleted})
    else:
        out.print(f"deleted {deleted}", highlight=False)


def register(app: typer.Typer) -> None:
    """Adds these commands to `app`, in the order its help lists them."""
    app.command()(queues)
    app.command()(queue)
    app.command()(pause)
    app.command()(resume)
    app.command()(redrive)
    app.command()(purge)
