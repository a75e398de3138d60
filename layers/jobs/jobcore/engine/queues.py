"""Queues as objects: their counts by state (kept by the stream, see counting.py), lag,
settings (paused, fifo, shards) and per-minute history; reading one costs at most two requests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from msgspec import Struct

from .. import keys
from ..clock import parse_iso, to_iso
from ..commands.queues import GetQueue, ListQueues, PatchQueue, QueueHistory
from ..cursors import open_cursor, seal
from ..errors import FifoSharded, InvalidRequest, NotFound
from ..model import Principal
from ..store import ConditionFailed, Expr, Item
from .context import Family, registered_levels, shard_counts
from .counting import HISTORY, STATES, minute_of
from .listing import Page
from .scope import require_queue

HISTORY_MAX_BACK = timedelta(hours=24)


class Queue(Struct, frozen=True):
    type: str
    paused: bool
    fifo: bool
    shards: int
    counts: dict[str, int]
    oldest_pending_at: str | None
    modified: str | None

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.type, "paused": self.paused, "fifo": self.fifo, "shards": self.shards, "counts": self.counts,
                "oldest_pending_at": self.oldest_pending_at, "modified": self.modified}  # fmt: skip


def queue_of(item: Item, oldest: str | None) -> Queue:
    return Queue(
        type=str(item["type"] if "type" in item else item["SK"]),
        paused=bool(item.get("paused", False)),
        fifo=bool(item.get("fifo", False)),
        shards=shard_counts(item)[0],
        counts={state: max(0, int(item.get(f"n_{state}", 0))) for state in STATES},
        oldest_pending_at=oldest,
        modified=item.get("modified"),
    )


class Queues(Family):
    def oldest_claimable(self, job_type: str, item: Item) -> str | None:
        """When the oldest claimable job of the queue became claimable: one Query of one item
        per priority level the queue has registered, and per shard (`item` is its queue item)."""
        bound = keys.visible_key(to_iso(self.ctx.clock.now()), keys.KEY_HIGH)
        oldest: list[str] = []
        span = shard_counts(item)[1]
        for level in registered_levels(item):
            for shard in range(span):
                e = Expr()
                partition = keys.queue_partition(job_type, level, shard)
                condition = f"{e.n('QPK')} = {e.v(partition)} AND {e.n('QSK')} <= {e.v(bound)}"
                found, _ = self.ctx.store.query(condition, e, index=keys.QUEUE_INDEX, limit=1)
                oldest += [str(found[0]["QSK"]).split("#", 1)[0]] if found else []
        return min(oldest) if oldest else None

    def get(self, principal: Principal, command: GetQueue) -> Queue:
        require_queue(principal, command.type)
        item = self.ctx.store.get(keys.queue_name_key(command.type))
        if item is None:
            raise NotFound(f"queue {command.type} not found")
        return queue_of(item, self.oldest_claimable(command.type, item))

    def page(self, principal: Principal, command: ListQueues) -> Page[Queue]:
        """Queues by name: one Query for the page, and one per queue for its lag."""
        scope = f"queues|{principal.sub}|{command.prefix}"
        start = open_cursor(self.ctx.cursor_key(), scope, command.cursor) if command.cursor else None
        e = Expr()
        condition = f"{e.n('PK')} = {e.v(keys.QUEUES_PK)}"
        if command.prefix:
            condition += f" AND begins_with({e.n('SK')}, {e.v(command.prefix)})"
        items, next_start = self.ctx.store.page(condition, e, limit=command.limit, start_key=start)
        queues = [queue_of(item, self.oldest_claimable(str(item["SK"]), item)) for item in items
                  if principal.reaches(str(item["SK"]))]  # fmt: skip
        return Page(queues, seal(self.ctx.cursor_key(), scope, next_start) if next_start else None)

    def patch(self, principal: Principal, command: PatchQueue) -> Queue:
        """Set paused, fifo and shards. A queue never used becomes one (its settings outlive
        its jobs). Every shard count ever set is kept too (readers walk the highest), and a
        fifo queue keeps one shard: strict order cannot hold over several."""
        require_queue(principal, command.type)
        e = Expr()
        sets = [f"{e.n('type')} = {e.v(command.type)}", f"{e.n('modified')} = {e.v(to_iso(self.ctx.clock.now()))}"]
        conditions: list[str] = []
        if command.paused is not None:
            sets.append(f"{e.n('paused')} = {e.v(command.paused)}")
        if command.fifo is not None:
            sets.append(f"{e.n('fifo')} = {e.v(command.fifo)}")
            if command.fifo and command.shards is None:
                conditions.append(f"(attribute_not_exists({e.n('shards')}) OR {e.n('shards')} = {e.v(1)})")
        update = "SET " + ", ".join(sets)
        if command.shards is not None:
            sets.append(f"{e.n('shards')} = {e.v(command.shards)}")
            update = "SET " + ", ".join(sets) + f" ADD {e.n('shard_counts')} {e.v({command.shards})}"
            if command.shards > 1 and command.fifo is None:
                conditions.append(f"(attribute_not_exists({e.n('fifo')}) OR {e.n('fifo')} = {e.v(False)})")
        try:
            item = self.ctx.store.update(keys.queue_name_key(command.type), update,
                                         condition=" AND ".join(conditions) or None, expr=e)  # fmt: skip
        except ConditionFailed:
            raise FifoSharded(f"queue {command.type}: a fifo queue takes one shard (set fifo false, or shards 1, first)",
                           {"type": command.type}) from None  # fmt: skip
        self.ctx.queue_settings.forget(command.type)
        return queue_of(item, self.oldest_claimable(command.type, item))

    def history(self, principal: Principal, command: QueueHistory) -> list[dict[str, Any]]:
        """Per-minute counts between from and to (default: the last hour), oldest first,
        minutes with nothing as zeros. One Query."""
        require_queue(principal, command.type)
        now = self.ctx.clock.now()
        to = command.to or now
        start = command.from_ or to - timedelta(hours=1)
        if start < now - HISTORY_MAX_BACK:
            raise InvalidRequest.fields({"from": "at most 24 hours back"})
        if start > to:
            raise InvalidRequest.fields({"from": "after to"})
        if to - start > HISTORY_MAX_BACK:  # a far future `to` would be millions of minutes
            raise InvalidRequest.fields({"to": "at most 24 hours after from"})
        first, last = minute_of(start.timestamp()), minute_of(to.timestamp())
        e = Expr()
        condition = (f"{e.n('PK')} = {e.v(keys.history_pk(command.type))} AND "
                     f"{e.n('SK')} BETWEEN {e.v(first)} AND {e.v(last)}")  # fmt: skip
        found = {str(i["SK"]): i for page in self.ctx.store.pages(condition, e, page_size=1500) for i in page}
        minutes = []
        moment = parse_iso(first)
        end = parse_iso(last)
        while moment <= end:
            at = to_iso(moment)
            item = found.get(at, {})
            minutes.append({"minute": at, **{name: max(0, int(item.get(name, 0))) for name in HISTORY}})
            moment += timedelta(minutes=1)
        return minutes
