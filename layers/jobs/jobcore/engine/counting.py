"""Queue counts and per-minute history, kept up to date from the jobs table's stream.

Each stream batch turns its records into deltas: a job's old image leaves its (queue, state),
its new image enters one; a minute's history counts the jobs created, started, finished,
failed and retried in it. Per batch, each queue's counts item takes at most one write, and
each (queue, minute) history item at most one.

The stream delivers at least once: Lambda retries a batch after an error or a timeout, or
a part of it (bisected, or from a failed record on), with records beyond it. So every item
keeps, per stream shard, the highest sequence number it has counted (`seq:<shard>`), and a
batch adds only the records above it, in one write conditional on the mark it read: a
batch delivered twice, or a retry that starts in the middle of one, counts each record once.
The shard comes with each invocation (the event source mapping's tumbling window); records
of one shard arrive in order (one batch at a time per shard: ParallelizationFactor 1).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from msgspec import Struct, field

from .. import keys
from ..clock import epoch_seconds, to_iso
from ..model import JobState
from ..store import ConditionFailed, Expr, Item, deserialize
from .context import Family

STATES = tuple(s.value for s in JobState)
HISTORY = ("created", "started", "finished", "failed", "retried")
HISTORY_DAYS = 7
# Shards are kept in a mark for the stream's retention and a little more, then forgotten.
MARK_KEPT_S = 25 * 3600
MAX_ATTEMPTS = 8


class Effect(Struct, frozen=True):
    """What one record changes: counts per (queue, state), history per (queue, minute)."""

    sequence: int
    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    history: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)


def minute_of(seconds: float) -> str:
    return to_iso(datetime.fromtimestamp(int(seconds) // 60 * 60, UTC))


def effect_of(record: Mapping[str, Any]) -> Effect | None:
    """The counts and history one stream record of the jobs table changes (None: not a job)."""
    images = record.get("dynamodb") or {}
    if not keys.is_job_key(images.get("Keys") or {}):
        return None
    old = deserialize(images["OldImage"]) if images.get("OldImage") else None
    new = deserialize(images["NewImage"]) if images.get("NewImage") else None
    # An item without a queue and a state (written by hand, or by a bug) is not counted: it
    # must not stop the shard, whose batches are retried until they succeed.
    old = old if _countable(old) else None
    new = new if _countable(new) else None
    effect = Effect(int(images["SequenceNumber"]))
    for image, sign in ((old, -1), (new, 1)):
        if image is not None:
            place = (str(image["type"]), str(image["state"]))
            effect.counts[place] = effect.counts.get(place, 0) + sign
    for place in [k for k, v in effect.counts.items() if not v]:
        del effect.counts[place]
    if new is not None:
        happened = _happened(old, new)
        if happened:
            at = images.get("ApproximateCreationDateTime") or 0
            effect.history[(str(new["type"]), minute_of(float(at)))] = dict.fromkeys(happened, 1)
    return effect


def _countable(image: Item | None) -> bool:
    return image is not None and image.get("state") in STATES and isinstance(image.get("type"), str) and bool(image["type"])


def _number(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _happened(old: Item | None, new: Item) -> list[str]:
    """Which of the history's events a change is."""
    before, after = (old or {}).get("state"), new.get("state")
    found = []
    if old is None:
        found.append("created")
    if after == JobState.RUNNING.value and _number(new.get("attempts")) > _number((old or {}).get("attempts")):
        found.append("started")
    if after != before:
        if after == JobState.FINISHED.value:
            found.append("finished")
        elif after == JobState.ERROR.value:
            found.append("failed")
        elif after == JobState.PENDING.value and before in (JobState.ERROR.value, JobState.CANCELLED.value):
            found.append("retried")  # a retry or a redrive
        elif (
            after == JobState.PENDING.value
            and before == JobState.RUNNING.value
            and new.get("failed_at") != (old or {}).get("failed_at")
        ):
            found.append("retried")  # a failed attempt, back in the queue
    return found


def _mark_name(shard: str) -> str:
    return f"seq:{shard}"


def _mark(sequence: int, now_s: int) -> str:
    """A shard's mark: its highest counted sequence number (40 digits: DynamoDB's longest),
    and when it was written."""
    return f"{sequence:040d}|{now_s}"


def _parse_mark(value: Any) -> tuple[int, int]:
    text = str(value or "")
    number, _, written = text.partition("|")
    return (int(number), int(written or 0)) if number.isdigit() else (-1, 0)


class Counting(Family):
    def apply(self, records: Iterable[Mapping[str, Any]], shard: str) -> int:
        """Count a batch of one shard's records; returns the items written."""
        effects = [e for e in (effect_of(r) for r in records) if e is not None]
        counts: dict[str, list[tuple[int, dict[str, int]]]] = defaultdict(list)
        history: dict[tuple[str, str], list[tuple[int, dict[str, int]]]] = defaultdict(list)
        for effect in effects:
            by_queue: dict[str, dict[str, int]] = defaultdict(dict)
            for (queue, state), delta in effect.counts.items():
                by_queue[queue][f"n_{state}"] = by_queue[queue].get(f"n_{state}", 0) + delta
            for queue, deltas in by_queue.items():
                counts[queue].append((effect.sequence, deltas))
            for place, events in effect.history.items():
                history[place].append((effect.sequence, events))
        targets: dict[tuple[str, str], tuple[dict[str, str], list[tuple[int, dict[str, int]]], dict[str, Any]]] = {}
        for queue, entries in counts.items():
            targets[("counts", queue)] = (keys.queue_name_key(queue), entries, {"type": queue})
        for (queue, minute), entries in history.items():
            expires = epoch_seconds(datetime.fromisoformat(minute.replace("Z", "+00:00"))) + HISTORY_DAYS * 86400
            targets[("history", f"{queue}\x00{minute}")] = (keys.history_key(queue, minute), entries,
                                                           {"type": queue, "minute": minute, "expires_at": expires})  # fmt: skip
        if not targets:
            return 0
        found = {(i["PK"], i["SK"]): i for i in self.ctx.store.batch_get([t[0] for t in targets.values()])}
        written = 0
        for key, entries, fixed in targets.values():
            written += self._add(key, entries, fixed, shard, found.get((key["PK"], key["SK"])))
        return written

    def _add(self, key: dict[str, str], entries: list[tuple[int, dict[str, int]]], fixed: dict[str, Any], shard: str,
             item: Item | None) -> int:  # fmt: skip
        """One item's share of the batch: the records above its mark, in one conditional write."""
        now_s = epoch_seconds(self.ctx.clock.now())
        for _ in range(MAX_ATTEMPTS):
            seen = (item or {}).get(_mark_name(shard))
            counted, _ = _parse_mark(seen)
            fresh = [(sequence, deltas) for sequence, deltas in entries if sequence > counted]
            if not fresh:
                return 0
            totals: dict[str, int] = defaultdict(int)
            for _, deltas in fresh:
                for name, delta in deltas.items():
                    totals[name] += delta
            e = Expr()
            adds = [f"{e.n(name)} {e.v(delta)}" for name, delta in sorted(totals.items()) if delta]
            sets = [f"{e.n(_mark_name(shard))} = {e.v(_mark(max(s for s, _ in fresh), now_s))}",
                    f"{e.n('modified')} = {e.v(to_iso(self.ctx.clock.now()))}"]  # fmt: skip
            sets += [f"{e.n(name)} = {e.v(value)}" for name, value in fixed.items()]
            stale = [name for name, value in (item or {}).items()
                     if name.startswith("seq:") and name != _mark_name(shard)
                     and _parse_mark(value)[1] < now_s - MARK_KEPT_S]  # fmt: skip
            update = "SET " + ", ".join(sets)
            if adds:
                update += " ADD " + ", ".join(adds)
            if stale:
                update += " REMOVE " + ", ".join(e.n(name) for name in stale)
            mark = e.n(_mark_name(shard))
            condition = f"attribute_not_exists({mark})" if seen is None else f"{mark} = {e.v(seen)}"
            try:
                self.ctx.store.update(key, update, condition=condition, expr=e)
                return 1
            except ConditionFailed as failed:
                item = failed.item  # another delivery of this shard counted meanwhile: again, from its mark
        raise RuntimeError(f"counts of {key} kept changing under this batch")
