"""The job engine: every operation of the contract, in families that share one context.

    engine = Engine(store, settings)
    engine.leasing.claim(principal, command)

Each family is a module of its own: creating, leasing (start, claim, extend, abort,
complete, fail), progress (status, cancel), listing (reads), admin (patch, delete, sweep),
batch, queues (counts, settings, history), recovery (retry, redrive, purge), counting (the
stream's deltas to queue counts and history), message_log (a status post's log entry, and
its repair from the stream), schedules (recurring jobs and their scheduler).
Every write of a job goes through `writes.write` under a rule of `rules.py`.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..clock import Clock, SystemClock
from ..observability import Counter, Recorder
from ..settings import Settings
from ..store import TableStore
from .admin import Admin
from .batch import Batches
from .context import Context
from .counting import Counting
from .creating import Creating
from .leasing import Leasing
from .listing import Listing
from .message_log import MessageLog
from .progress import Progress
from .queues import Queues
from .recovery import Recovery

if TYPE_CHECKING:
    from .schedules import Schedules


class Engine:
    """The families of operations over one table. Thread-safe: no per-request state."""

    def __init__(
        self,
        store: TableStore,
        settings: Settings,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        count: Counter | None = None,
        cursor_key: Callable[[], bytes] | None = None,
    ) -> None:
        self.ctx = Context(store, settings, clock or SystemClock(), rng or random.Random(), count or Recorder(),
                           cursor_key_source=cursor_key)  # fmt: skip
        self.creating = Creating(self.ctx)
        self.leasing = Leasing(self.ctx)
        self.progress = Progress(self.ctx)
        self.listing = Listing(self.ctx)
        self.admin = Admin(self.ctx)
        self.batches = Batches(self.ctx)
        self.queues = Queues(self.ctx)
        self.recovery = Recovery(self.ctx)
        self.counting = Counting(self.ctx)
        self.message_log = MessageLog(self.ctx)

    @functools.cached_property
    def schedules(self) -> Schedules:
        # Imported on first use: cron parsing and time zones (~25 ms of a cold start) serve
        # the schedule routes and the scheduler only.
        from .schedules import Schedules

        return Schedules(self.ctx)


__all__ = ["Context", "Engine"]
