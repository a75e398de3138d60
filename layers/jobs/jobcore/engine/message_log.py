"""A job's message log: one item per appended message, beside the job (`MSG#<at>`).

A status post that appends a message writes the job first (one conditional UpdateItem that
also sets `last_message` and counts it), then the log entry (one PutItem keyed by the job's
new `modified` stamp): two writes of one unit each, where a transaction of the two cost four.
The job's write is the commit: its stream record carries the message. If the entry's write
fails, or the function stops between the two, the stream's counting consumer writes it
(`repair`), so a message the job took is never lost; both writers put the very same item, so
writing it twice changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from .. import keys
from ..clock import epoch_seconds, parse_iso, plus_ms
from ..store import Item, deserialize
from .context import Context, Family

logger = logging.getLogger(__name__)


def entry(job_id: str, at: str, message: str, retention_ms: int) -> Item:
    """The log item of a message appended by the write stamped `at` (its expiry from the
    stamp, not a clock, so every writer of it writes the same item)."""
    expires = epoch_seconds(plus_ms(parse_iso(at), retention_ms))
    return {**keys.message_key(job_id, at), "message": message, "at": at, "expires_at": expires}


def append(ctx: Context, job_id: str, at: str, message: str) -> bool:
    """Write the entry after the job took the message; False if that failed (the stream's
    consumer will write it)."""
    try:
        ctx.store.put(entry(job_id, at, message, ctx.settings.message_retention_ms))
    except Exception:  # the job's write committed the message: answer, never a 5xx the caller would repeat
        logger.warning("message log entry deferred to the stream", exc_info=True, extra={"job_id": job_id, "at": at})
        ctx.count("MessageLogDeferred")
        return False
    return True


class MessageLog(Family):
    def repair(self, records: Iterable[Mapping[str, Any]]) -> int:
        """For each stream record of a job that appended a message: its log entry, if missing
        and the job still exists. Returns how many entries it wrote."""
        return _repair(self.ctx, records)


def _repair(ctx: Context, records: Iterable[Mapping[str, Any]]) -> int:
    written = 0
    for record in records:
        images = record.get("dynamodb") or {}
        if not keys.is_job_key(images.get("Keys") or {}) or not images.get("NewImage"):
            continue
        new = deserialize(images["NewImage"])
        old = deserialize(images["OldImage"]) if images.get("OldImage") else {}
        if int(new.get("msg_count", 0)) <= int(old.get("msg_count", 0)) or new.get("last_message") is None:
            continue
        job_id, at = str(new["id"]), str(new["modified"])
        if ctx.store.get(keys.message_key(job_id, at), consistent=False) is not None:
            continue
        # Missing: the request stopped between its two writes (or the entry is not visible
        # yet to this read, and is written twice, the same). A job deleted since keeps no log.
        if ctx.store.get(keys.job_key(job_id)) is None:
            continue
        ctx.store.put(entry(job_id, at, str(new["last_message"]), ctx.settings.message_retention_ms))
        ctx.count("MessageLogRepaired")
        written += 1
    return written
