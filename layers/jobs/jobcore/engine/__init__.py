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
from .context import Context

if TYPE_CHECKING:
    from .admin import Admin
    from .batch import Batches
    from .counting import Counting
    from .creating import Creating
    from .leasing import Leasing
    from .listing import Listing
    from .message_log import MessageLog
    from .progress import Progress
    from .queues import Queues
    from .recovery import Recovery
    from .schedules import Schedules


class Engine:
    """The families of operations over one table. Thread-safe: no per-request state.

    Each family is built, and its module imported, on first use: a function's cold start
    loads only the families its route calls (a GET of one job: listing, not leasing, batch,
    recovery or schedules' cron parsing)."""

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
        self.ctx = Context(store, settings, SystemClock() if clock is None else clock, random.Random() if rng is None else rng,
                           Recorder() if count is None else count, cursor_key)  # fmt: skip

    @functools.cached_property
    def creating(self) -> Creating:
        from .creating import Creating

        return Creating(self.ctx)

    @functools.cached_property
    def leasing(self) -> Leasing:
        from .leasing import Leasing

        return Leasing(self.ctx)

    @functools.cached_property
    def progress(self) -> Progress:
        from .progress import Progress

        return Progress(self.ctx)

    @functools.cached_property
    def listing(self) -> Listing:
        from .listing import Listing

        return Listing(self.ctx)

    @functools.cached_property
    def admin(self) -> Admin:
        from .admin import Admin

        return Admin(self.ctx)

    @functools.cached_property
    def batches(self) -> Batches:
        from .batch import Batches

        return Batches(self.ctx)

    @functools.cached_property
    def queues(self) -> Queues:
        from .queues import Queues

        return Queues(self.ctx)

    @functools.cached_property
    def recovery(self) -> Recovery:
        from .recovery import Recovery

        return Recovery(self.ctx)

    @functools.cached_property
    def counting(self) -> Counting:
        from .counting import Counting

        return Counting(self.ctx)

    @functools.cached_property
    def message_log(self) -> MessageLog:
        from .message_log import MessageLog

        return MessageLog(self.ctx)

    @functools.cached_property
    def schedules(self) -> Schedules:
        from .schedules import Schedules

        return Schedules(self.ctx)


__all__ = ["Context", "Engine"]
