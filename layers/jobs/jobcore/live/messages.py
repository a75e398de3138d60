"""The messages subscribers get: one `task_update` (or `task_removed`) per change of a job,
built from a stream record's old and new images."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from msgspec import Struct

from ..keys import is_job_key
from ..model import Job
from ..settings import MAX_MESSAGE_BYTES
from ..store import deserialize

# The REMOVE records the TTL process writes carry this identity (DynamoDB docs).
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


class Topic(Struct, frozen=True):
    """What a subscription follows: one job, every job of an owner or of a type, or a queue's
    notices of claimable work (what an idle worker waits for)."""

    kind: str  # job_id | owner | type | work
    value: str

    @property
    def key(self) -> str:
        return f"{self.kind}#{self.value}"

    def to_wire(self) -> dict[str, str]:
        return {self.kind: self.value}


class Change(Struct, frozen=True):
    """One change of one job, from one stream record."""

    job_id: str
    owner: str | None
    type: str
    version: int
    message: dict[str, Any]

    def topics(self) -> list[str]:
        found = [Topic("job_id", self.job_id).key, Topic("type", self.type).key]
        if self.owner:
            found.append(Topic("owner", self.owner).key)
        return found


def _changed(new: Job, old: Job | None, name: str) -> Any:
    """The value of `name` if this change set it, else None."""
    value = getattr(new, name)
    return value if old is None or value != getattr(old, name) else None


def task_update(new: Job, old: Job | None) -> dict[str, Any]:
    """The contract's `task_update` for the change from `old` to `new`.

    `new_title` and `new_status` carry the value this change set (null when unchanged);
    `message_to_append` the message this change appended: a status post that appends a
    message and moves progress is one update."""
    appended = new.msg_count > (old.msg_count if old else 0)
    return {
        "type": "task_update",
        "job_id": new.id,
        "version": new.version,
        "state": new.state.value,
        "new_title": _changed(new, old, "title"),
        "new_status": _changed(new, old, "status"),
        "progress": new.progress,
        "speeds": new.speeds,
        "message_to_append": new.last_message if appended else None,
        "complete": new.complete,
        "modified": new.modified,
    }


def task_removed(old: Job, *, expired: bool) -> dict[str, Any]:
    """The job is gone: TTL expired it, or it was deleted. Its version follows the last one,
    so a client that drops versions it has seen still takes it."""
    return {"type": "task_removed", "job_id": old.id, "version": old.version + 1, "reason": "expired" if expired else "deleted"}


def change_of(record: Mapping[str, Any]) -> Change | None:
    """The change a stream record of the jobs table describes; None for items that are not
    jobs (message log entries, guards, idempotency records, queue names)."""
    images = record.get("dynamodb") or {}
    if not is_job_key(images.get("Keys") or {}):
        return None
    new = Job.from_item(deserialize(images["NewImage"])) if images.get("NewImage") else None
    old = Job.from_item(deserialize(images["OldImage"])) if images.get("OldImage") else None
    if record.get("eventName") == "REMOVE":
        if old is None:
            raise ValueError("a REMOVE record without its old image")
        expired = record.get("userIdentity") == TTL_IDENTITY
        return Change(old.id, old.owner, old.type, old.version + 1, task_removed(old, expired=expired))
    if new is None:
        raise ValueError(f"a {record.get('eventName')} record without its new image")
    return Change(new.id, new.owner, new.type, new.version, task_update(new, old))


class WorkNotice(Struct, frozen=True):
    """A job of `queue` became claimable at `at` (now, or later for a delayed job)."""

    queue: str
    at: str

    @property
    def topic(self) -> str:
        return Topic("work", self.queue).key

    def to_wire(self) -> dict[str, str]:
        return {"type": "work_available", "queue": self.queue, "at": self.at}


def work_notice_of(record: Mapping[str, Any]) -> WorkNotice | None:
    """The notice a stream record of the jobs table gives idle workers: a job entered its
    queue's claimable set (created pending, retried, aborted, failed with a retry left,
    redriven, made pending by a patch) or moved in it. A lease that runs out writes nothing,
    so it has no notice: workers poll for those, slowly."""
    images = record.get("dynamodb") or {}
    if record.get("eventName") == "REMOVE" or not is_job_key(images.get("Keys") or {}) or not images.get("NewImage"):
        return None
    new = deserialize(images["NewImage"])
    if new.get("state") != "pending" or "QSK" not in new or not new.get("available_at"):
        return None
    old = deserialize(images["OldImage"]) if images.get("OldImage") else {}
    if old.get("state") == "pending" and old.get("QSK") == new["QSK"]:
        return None  # claimable before, as now (a status post, a title)
    return WorkNotice(str(new["type"]), str(new["available_at"]))


def encode(message: dict[str, Any], max_bytes: int = MAX_MESSAGE_BYTES) -> bytes:
    """The message as sent. One that would pass API Gateway's frame limit is sent without its
    free-text fields and with `"truncated": true`: the client reads the job over HTTP instead."""
    data = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(data) <= max_bytes:
        return data
    slim = {**message, "new_title": None, "new_status": None, "message_to_append": None, "speeds": [], "truncated": True}
    if isinstance(slim.get("progress"), dict):
        slim["progress"] = {**slim["progress"], "title": None}
    return json.dumps(slim, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
