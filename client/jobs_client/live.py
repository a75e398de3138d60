"""`subscribe(...)`: live updates as an async iterator.

Delivery over the WebSocket is at least once and a connection ends (API Gateway closes it
after 2 hours, networks fail), so the iterator:
- reconnects with a jittered backoff and subscribes again;
- after a reconnect, reads the jobs it follows over HTTP and yields what changed meanwhile
  (`TaskUpdate.resync` is True on those);
- yields each version of a job at most once, in increasing order (older or repeated
  versions are dropped);
- pings every few minutes, so that an idle connection is not closed after 10 minutes.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from typing import Any

from .client import JobsClient
from .errors import ApiError, error_for
from .models import Job, TaskUpdate

PING_INTERVAL_S = 240.0


class SubscriptionRefused(ApiError):
    """The service refused the subscription (bad topic, not allowed, unknown job)."""


def _topic(job_id: str | None, type: str | None, owner: str | None) -> dict[str, str]:
    given = {k: v for k, v in {"job_id": job_id, "type": type, "owner": owner}.items() if v}
    if len(given) > 1:
        raise ValueError("name at most one of job_id, type or owner")
    return given


async def subscribe(
    ws_url: str,
    token: str,
    *,
    job_id: str | None = None,
    type: str | None = None,
    owner: str | None = None,
    client: JobsClient | None = None,
    max_backoff_s: float = 10.0,
    ping_interval_s: float = PING_INTERVAL_S,
) -> AsyncIterator[TaskUpdate]:
    """Updates of one job, of a type or an owner (services), or of all own jobs (users).

    With `client`, the followed jobs are read over HTTP first and after every reconnect
    (those updates have `resync` set), so nothing that happened before or between
    connections is missed."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    topic = _topic(job_id, type, owner)
    url = f"{ws_url.rstrip('/')}/?token={token}"
    seen: dict[str, int] = {}
    gone: set[str] = set()  # removed jobs: nothing to resync
    attempt = 0
    while True:
        try:
            async with connect(url, open_timeout=30, ping_interval=None, max_size=256 * 1024) as socket:
                await socket.send(json.dumps({"action": "subscribe", **topic}))
                reply = json.loads(await asyncio.wait_for(socket.recv(), timeout=30))
                if reply.get("type") == "error":
                    error = error_for(400, reply)
                    raise SubscriptionRefused(error.message, status=0, code=error.code, details=error.details)
                attempt = 0
                # At the start and after every reconnect: what changed while nobody listened.
                if client is not None:
                    following = {k: v for k, v in seen.items() if k not in gone}
                    for update in await asyncio.to_thread(_resync, client, topic, following):
                        if update.version > seen.get(update.job_id, 0):
                            seen[update.job_id] = update.version
                            gone.update([update.job_id] if update.removed else [])
                            yield update
                async for update in _updates(socket, ping_interval_s):
                    if update.version > seen.get(update.job_id, 0):
                        seen[update.job_id] = update.version
                        gone.update([update.job_id] if update.removed else [])
                        yield update
        except InvalidStatus as refused:
            status = refused.response.status_code
            if status in (401, 403):
                raise SubscriptionRefused("the token was refused", status=status, code="unauthorized") from None
        except (ConnectionClosed, OSError, TimeoutError):
            pass
        attempt += 1
        await asyncio.sleep(random.uniform(0, min(max_backoff_s, 0.25 * 2**attempt)))


async def _updates(socket: Any, ping_interval_s: float) -> AsyncIterator[TaskUpdate]:
    while True:
        try:
            raw = await asyncio.wait_for(socket.recv(), timeout=ping_interval_s)
        except TimeoutError:
            await socket.send(json.dumps({"action": "ping"}))
            continue
        message = json.loads(raw)
        if message.get("type") in ("task_update", "task_removed"):
            yield TaskUpdate.from_wire(message)


def _resync(client: JobsClient, topic: dict[str, str], seen: dict[str, int]) -> list[TaskUpdate]:
    """The followed jobs as they are now: the ones seen before, and the newest of the topic."""
    jobs: dict[str, Job | None] = {job_id: None for job_id in seen}
    if "job_id" in topic:
        jobs[topic["job_id"]] = None
    else:
        filters = {"type": topic["type"]} if "type" in topic else {"owner": topic["owner"]} if "owner" in topic else {}
        for listed in client.list_jobs(limit=100, **filters).data:
            jobs[listed.id] = listed
    updates = []
    for job_id, known in jobs.items():
        job: Job | None = known or client.get_job(job_id)
        if job is None:
            updates.append(TaskUpdate(job_id, seen.get(job_id, 0) + 1, removed="deleted", complete=True, resync=True))
        else:
            updates.append(TaskUpdate.from_job(job))
    return updates
