"""What every family of operations shares: the store, the settings, the clock, chance, and
the counter of domain events."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import datetime

from msgspec import Struct, field

from .. import keys
from ..clock import Clock, epoch_seconds, to_iso
from ..observability import Counter
from ..settings import Limits, Settings
from ..store import Item, TableStore

# A pause binds every claim that starts 2 s or more after the PATCH answered: a container
# trusts what it read for less than that.
SETTINGS_CACHE_S = 1.5
# Creates pick a shard from a queue's shard count read at most this long ago: a stale count
# only spreads new jobs over fewer or more shards for that long, and readers walk every
# shard the queue ever had (`span`), so nothing is missed.
SHARDS_CACHE_S = 30.0


class QueueSettings(Struct, frozen=True):
    paused: bool = False
    fifo: bool = False
    # The priority levels the queue has used, most urgent first: a claim looks at them in
    # this order, and never at a level no job was put in.
    levels: tuple[int, ...] = ()
    # How many shards new jobs are spread over, and how many shards readers walk: every
    # count the queue ever had is kept (an ADD to a set), so lowering it strands no job.
    shards: int = 1
    span: int = 1


def shard_counts(item: Item) -> tuple[int, int]:
    """A queue item's shard count and span (the highest count it ever had)."""
    try:
        shards = min(max(1, int(item.get("shards", 1))), keys.QUEUE_SHARDS_MAX)
    except (TypeError, ValueError, ArithmeticError):
        shards = 1
    raw = item.get("shard_counts")
    listed = raw if isinstance(raw, (set, frozenset, list, tuple)) else ()
    counts = [int(c) for c in listed if 1 <= int(c) <= keys.QUEUE_SHARDS_MAX]
    return shards, max([shards, *counts])


def registered_levels(item: Item) -> tuple[int, ...]:
    """The priority levels a queue's jobs were created in or moved to, most urgent first.
    Every write that puts a job in a level registers it first (engine/creating.py) and
    nothing removes it, so a level not listed holds no job."""
    raw = item.get("levels")
    listed = raw if isinstance(raw, (set, frozenset, list, tuple)) else ()
    return tuple(sorted({keys.priority_of({"priority": level}) for level in listed}))


class QueueSettingsCache(Struct):
    """Each queue's settings, read at most every SETTINGS_CACHE_S per container (its shard
    count, for creates, every SHARDS_CACHE_S)."""

    store: TableStore
    clock: Clock
    # Per queue: when its item was read, what it said, and whether all of it is still trusted
    # (False after this container registered a level: only the shard count is).
    _entries: dict[str, tuple[datetime, QueueSettings, bool]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, job_type: str) -> QueueSettings:
        return self.read(job_type)[0]

    def shards_for_create(self, job_type: str) -> int:
        """How many shards a new job of the queue is spread over."""
        with self._lock:
            cached = self._entries.get(job_type)
        if cached is not None and (self.clock.now() - cached[0]).total_seconds() < SHARDS_CACHE_S:
            return cached[1].shards
        return self.read(job_type, fresh=True)[0].shards

    def read(self, job_type: str, *, fresh: bool = False) -> tuple[QueueSettings, bool]:
        """The queue's settings, and whether they were read from the table by this call
        (`fresh`: always) rather than taken from the cache."""
        now = self.clock.now()
        with self._lock:
            cached = None if fresh else self._entries.get(job_type)
        if cached is not None and cached[2] and (now - cached[0]).total_seconds() < SETTINGS_CACHE_S:
            return cached[1], False
        item = self.store.get(keys.queue_name_key(job_type)) or {}
        shards, span = shard_counts(item)
        found = QueueSettings(bool(item.get("paused", False)), bool(item.get("fifo", False)), registered_levels(item),
                              shards, span)  # fmt: skip
        with self._lock:
            self._entries[job_type] = (now, found, True)
        return found, True

    def forget(self, job_type: str, *, keep_shards: bool = False) -> None:
        """Read the queue's settings afresh next time; `keep_shards`: creates may go on
        with the shard count read (only the levels changed)."""
        with self._lock:
            cached = self._entries.pop(job_type, None)
            if keep_shards and cached is not None:
                self._entries[job_type] = (cached[0], cached[1], False)


class Context:
    """What the families share (the engine builds it). A plain class, not a record: it
    builds its settings cache."""

    def __init__(self, store: TableStore, settings: Settings, clock: Clock, rng: random.Random, count: Counter,
                 cursor_key_source: Callable[[], bytes] | None) -> None:  # fmt: skip
        self.store = store
        self.settings = settings
        self.clock = clock
        self.rng = rng
        self.count = count
        # Queue names and priority levels this container has registered already (see creating.queue_name_write).
        self.known_queues: set[tuple[str, int]] = set()
        # The key that seals list cursors, resolved when a listing first needs it.
        self.cursor_key_source = cursor_key_source
        self.queue_settings = QueueSettingsCache(store, clock)

    def cursor_key(self) -> bytes:
        key = self.cursor_key_source() if self.cursor_key_source else self.settings.cursor_key
        if not key:
            raise RuntimeError("no key to seal list cursors: set JOBS_CURSOR_KEY or JOBS_CURSOR_SECRET_PARAMETER")
        return key

    @property
    def limits(self) -> Limits:
        return self.settings.limits


class Family:
    """A family of operations over the shared context; the engine builds each on first use.
    A plain class, not a record: it holds a service, and tests replace one of its operations
    on an instance (a Struct has no instance dictionary)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx


def now_values(now: datetime) -> dict[str, object]:
    """The values every condition may name for "now"."""
    return {":now": to_iso(now), ":now_s": epoch_seconds(now)}
