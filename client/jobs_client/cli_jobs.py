"""The `jobs` commands on jobs: submit, list, show, delete, result, retry, logs, cancel, and a
worker's claim, complete and fail."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Column, Table

from .cli_context import Settings, not_found, parse_json, service
from .cli_output import out, plain, print_json, print_message, show_job
from .client import JobsClient


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
    priority: Annotated[int | None, typer.Option(min=1, max=4, help="1 most urgent to 4; default 2.")] = None,
) -> None:
    """Create a job."""
    fields: dict[str, Any] = {"owner": owner, "title": title, "delay_ms": delay_ms, "ttl_ms": ttl_ms, "max_retries": max_retries,
                              "priority": priority}  # fmt: skip
    given: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    if params is not None:
        given["params"] = parse_json(params, "--params")
    with service(ctx) as client:
        if unique:
            if not ref_id:
                raise typer.BadParameter("--unique needs --ref-id", param_hint="--unique")
            job, _ = client.create_unique_job(type, ref_id, **given)
        else:
            if ref_id:
                given["ref_id"] = ref_id
            job = client.create_job(type, **given)
    show_job(ctx.obj.json, job)


def list_jobs(
    ctx: typer.Context,
    type: Annotated[str | None, typer.Option(help="Only this type.")] = None,
    owner: Annotated[str | None, typer.Option(help="Only this owner.")] = None,
    state: Annotated[str | None, typer.Option(help="Only this state.")] = None,
    ref_id: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(help="At most this many (all pages are read up to it).")] = 20,
) -> None:
    """List jobs, newest first."""
    with service(ctx) as client:
        jobs = []
        for job in client.iter_jobs(type=type, owner=owner, state=state, ref_id=ref_id):
            jobs.append(job)
            if len(jobs) >= limit:
                break
    if ctx.obj.json:
        print_json(jobs)
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


def show(ctx: typer.Context, job_id: Annotated[str, typer.Argument()]) -> None:
    """Show a job and its messages."""
    with service(ctx) as client:
        job = client.get_job(job_id)
        if job is None:
            raise not_found("job", job_id)
        messages = list(client.iter_messages(job_id))
    if ctx.obj.json:
        print_json({"job": job, "messages": messages})
        return
    show_job(ctx.obj.json, job)
    for message in messages:
        out.print(f"  {plain(message.at)}  {message.message}", highlight=False)


def delete(ctx: typer.Context, job_id: Annotated[str, typer.Argument()]) -> None:
    """Delete a job with its messages; prints it as it was."""
    with service(ctx) as client:
        show_job(ctx.obj.json, client.delete_job(job_id))


def result(ctx: typer.Context, job_id: Annotated[str, typer.Argument()]) -> None:
    """Print the result of a finished job, as JSON."""
    with service(ctx) as client:
        value = client.get_result(job_id)
    print_json(value)


def retry(ctx: typer.Context, job_id: Annotated[str, typer.Argument()]) -> None:
    """Put an error or cancelled job back to pending."""
    with service(ctx) as client:
        show_job(ctx.obj.json, client.retry_job(job_id))


def logs(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument()],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Then print new messages live until the job completes.")] = False,
) -> None:
    """Print a job's messages, oldest first."""
    settings: Settings = ctx.obj
    with service(ctx) as client:
        job = client.get_job(job_id)
        if job is None:
            raise not_found("job", job_id)
        if follow and not job.complete:
            asyncio.run(_follow(settings, client, job_id))
            return
        messages = list(client.iter_messages(job_id))
    if settings.json:
        print_json(messages)
        return
    for message in messages:
        print_message(settings.json, message.at, message.message)


async def _follow(settings: Settings, client: JobsClient, job_id: str) -> None:
    assert settings.token is not None
    listed: set[tuple[datetime | None, str]] | None = None
    async for update in settings.subscribe(settings.ws_url, settings.token, job_id=job_id, client=client):
        if listed is None:
            # Listed only once subscribed, so that nothing appended in between is lost; a
            # message both listed and sent live (same time, same text) is printed once.
            messages = await asyncio.to_thread(lambda: list(client.iter_messages(job_id)))
            for message in messages:
                print_message(settings.json, message.at, message.message)
            listed = {(message.at, message.message) for message in messages}
        text = update.message_to_append
        if text is not None and (update.modified, text) not in listed:
            print_message(settings.json, update.modified, text)
        if update.complete:
            return


def cancel(ctx: typer.Context, job_id: Annotated[str, typer.Argument()]) -> None:
    """Cancel a job (a running one is asked to stop)."""
    with service(ctx) as client:
        show_job(ctx.obj.json, client.cancel_job(job_id))


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
    with service(ctx) as client:
        if max_jobs is None and len(types) == 1:
            job = client.claim(types[0], timeout_ms=timeout_ms, wait_ms=wait_ms or None, worker=worker)
            jobs = [job] if job is not None else []
        else:
            where = types[0] if len(types) == 1 else types
            jobs = client.claim_many(where, max_jobs=max_jobs or 1, timeout_ms=timeout_ms, wait_ms=wait_ms or None,
                                     worker=worker)  # fmt: skip
    if max_jobs is None:
        show_job(ctx.obj.json, jobs[0] if jobs else None)
    elif ctx.obj.json:
        print_json(jobs)
    else:
        for job in jobs:
            show_job(ctx.obj.json, job)
    if not jobs:
        raise typer.Exit(3)


def complete(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument()],
    lease_token: Annotated[str | None, typer.Option(help="Required while the job is running.")] = None,
    result: Annotated[str | None, typer.Option(help="Result, as JSON.")] = None,
) -> None:
    """Complete a job with its result."""
    with service(ctx) as client:
        show_job(ctx.obj.json, client.complete(job_id, lease_token=lease_token, result=parse_json(result, "--result")))


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
    with service(ctx) as client:
        job = client.fail(job_id, lease_token, code=code, message=message, retry=retry, retry_in_ms=retry_in_ms)
    show_job(ctx.obj.json, job)


def register(app: typer.Typer) -> None:
    """Adds these commands to `app`, in the order its help lists them."""
    app.command()(submit)
    app.command("list")(list_jobs)
    app.command()(show)
    app.command()(delete)
    app.command()(result)
    app.command()(retry)
    app.command()(logs)
    app.command()(cancel)
    app.command()(claim)
    app.command()(complete)
    app.command()(fail)
