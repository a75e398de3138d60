"""The `jobs` commands on schedules (recurring jobs): schedules, and schedule put, show, pause,
resume and delete."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Column, Table

from .cli_context import not_found, parse_json, service
from .cli_output import out, plain, print_json, yes_no
from .client import JobsClient
from .models import Schedule

schedule_app = typer.Typer(help="Create, show, pause, resume and delete a schedule (a recurring job).", no_args_is_help=True)

# The template fields shown as rows of their own, in this order (params, as JSON, follows).
JOB_ROWS = ("title", "owner", "priority", "max_retries", "ttl_ms")


def every(ms: int) -> str:
    """`5m`, `90m`, `1h`, `2d`: in the largest unit that divides it (an every_ms is usually whole minutes)."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def cadence(schedule: Schedule) -> str:
    """`0 2 * * *`, or `every 5m` for an every_ms schedule."""
    if schedule.cron is not None:
        return schedule.cron
    if schedule.every_ms is not None:
        return f"every {every(schedule.every_ms)}"
    return "—"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else "—"


def _show_schedule(as_json: bool, schedule: Schedule) -> None:
    if as_json:
        print_json(schedule)
        return
    table = Table(show_header=False, box=None)
    table.add_row("name", schedule.name)
    if schedule.cron is not None:
        table.add_row("cron", schedule.cron)
    if schedule.every_ms is not None:
        table.add_row("every_ms", f"{schedule.every_ms} ({every(schedule.every_ms)})")
    table.add_row("timezone", schedule.timezone)
    table.add_row("paused", yes_no(schedule.paused))
    table.add_row("type", str(schedule.job.get("type") or ""))
    for name in JOB_ROWS:
        if name in schedule.job:
            value = schedule.job[name]
            # The service sends max_retries only when it was given: null there means no limit.
            if value is not None or name == "max_retries":
                table.add_row(name, "unlimited" if value is None else str(value))
    if schedule.job.get("params") is not None:
        table.add_row("params", json.dumps(schedule.job["params"]))
    table.add_row("next_run_at", str(plain(schedule.next_run_at) or "—"))
    table.add_row("last_run_at", str(plain(schedule.last_run_at) or "—"))
    table.add_row("last_job_id", schedule.last_job_id or "—")
    table.add_row("version", str(schedule.version))
    for name in ("processor", "created", "modified"):
        if getattr(schedule, name):
            table.add_row(name, str(plain(getattr(schedule, name))))
    out.print(table)


def schedules(
    ctx: typer.Context,
    prefix: Annotated[str | None, typer.Option(help="Only schedules whose name starts with this.")] = None,
) -> None:
    """List schedules: cadence, job type, paused, next and last run."""
    with service(ctx) as client:
        found = list(client.iter_schedules(prefix=prefix))
    if ctx.obj.json:
        print_json(found)
        return
    table = Table(
        Column("name", overflow="fold"),
        Column("cadence", no_wrap=True),
        Column("timezone", no_wrap=True),
        Column("type", overflow="fold"),
        Column("paused", no_wrap=True),
        Column("next run (UTC)", no_wrap=True),
        Column("last run (UTC)", no_wrap=True),
        Column("last job", no_wrap=True),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for schedule in found:
        table.add_row(
            schedule.name,
            cadence(schedule),
            schedule.timezone,
            str(schedule.job.get("type") or ""),
            yes_no(schedule.paused),
            _when(schedule.next_run_at),
            _when(schedule.last_run_at),
            schedule.last_job_id or "—",
        )
    out.print(table)


@schedule_app.command("put")
def put_schedule(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Schedule name: 1-64 of A-Z a-z 0-9 . _ -")],
    type: Annotated[str, typer.Option("--type", help="Queue (job type) of each slot's job.")],
    cron: Annotated[str | None, typer.Option(help="Five fields: minute hour day-of-month month day-of-week.")] = None,
    every_ms: Annotated[
        int | None, typer.Option(min=60_000, help="A slot at every multiple of this many ms (60000 or more).")
    ] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA name the cron is read in; default UTC.")] = None,
    params: Annotated[str | None, typer.Option(help="Parameters of each job, as JSON.")] = None,
    title: Annotated[str | None, typer.Option()] = None,
    owner: Annotated[str | None, typer.Option(help="End user each job belongs to.")] = None,
    priority: Annotated[int | None, typer.Option(min=1, max=4, help="1 most urgent to 4; default 2.")] = None,
    max_retries: Annotated[int | None, typer.Option(help="Starts allowed per job.")] = None,
    ttl_ms: Annotated[int | None, typer.Option(help="Each job's deadline after its creation.")] = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused: no jobs until resumed.")] = False,
) -> None:
    """Create or replace a schedule: one job of --type at each slot of --cron or --every-ms."""
    # Checked before any call, as the service would refuse it anyway (exit 2, like other usage errors).
    if (cron is None) == (every_ms is None):
        raise typer.BadParameter("give --cron or --every-ms (one of the two)", param_hint="--cron / --every-ms")
    fields: dict[str, Any] = {"title": title, "owner": owner, "priority": priority, "max_retries": max_retries, "ttl_ms": ttl_ms}
    job: dict[str, Any] = {"type": type} | {k: v for k, v in fields.items() if v is not None}
    if params is not None:
        job["params"] = parse_json(params, "--params")
    with service(ctx) as client:
        found, created = client.put_schedule(
            name, job=job, cron=cron, every_ms=every_ms, timezone=timezone, paused=True if paused else None
        )
    _show_schedule(ctx.obj.json, found)
    if not ctx.obj.json:
        out.print(f"schedule {name} {'created' if created else 'replaced'}", highlight=False)


@schedule_app.command("show")
def show_schedule(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Schedule name.")]) -> None:
    """Show a schedule: cadence, job template, next and last run."""
    with service(ctx) as client:
        found = client.get_schedule(name)
        if found is None:
            raise not_found("schedule", name)
    _show_schedule(ctx.obj.json, found)


def _schedule_command(ctx: typer.Context, change: Callable[[JobsClient], Schedule]) -> None:
    with service(ctx) as client:
        found = change(client)
    _show_schedule(ctx.obj.json, found)


@schedule_app.command("pause")
def pause_schedule(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Schedule name.")]) -> None:
    """Pause a schedule: no jobs until resumed."""
    _schedule_command(ctx, lambda client: client.pause_schedule(name))


@schedule_app.command("resume")
def resume_schedule(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Schedule name.")]) -> None:
    """Resume a paused schedule from its next slot from now (missed slots are not made up)."""
    _schedule_command(ctx, lambda client: client.resume_schedule(name))


@schedule_app.command("delete")
def delete_schedule(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Schedule name.")]) -> None:
    """Delete a schedule (the jobs it created stay); prints it as it was."""
    _schedule_command(ctx, lambda client: client.delete_schedule(name))


def register(app: typer.Typer) -> None:
    """Adds these commands to `app`, in the order its help lists them."""
    app.command()(schedules)
    app.add_typer(schedule_app, name="schedule")
