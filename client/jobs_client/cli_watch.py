"""`jobs watch`: live progress bars, speeds, status and messages of jobs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn

from .cli_context import Settings, not_found, service
from .cli_output import out, print_json, speed_text
from .client import JobsClient
from .models import TaskUpdate


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
            fields["speeds"] = "  ".join(speed_text(s) for s in update.speeds)
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
    with service(ctx) as client:
        start = client.get_job(job_id) if job_id else None
        if job_id and start is None:
            raise not_found("job", job_id)
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
            state = asyncio.run(_watch(settings, client, bars, job_id, type, owner, print_json if settings.json else None))
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
    async for update in settings.subscribe(settings.ws_url, settings.token, job_id=job_id, type=type, owner=owner, client=client):
        if emit is not None:
            emit(update)
        bars.apply(update)
        if job_id and update.complete:
            return update.removed or (update.state.value if update.state else None)
    return None


def register(app: typer.Typer) -> None:
    app.command()(watch)
