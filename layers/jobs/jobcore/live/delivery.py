"""Delivery: each stream record's change posted to every socket of every subscriber, and
each queue's notice of claimable work to the workers waiting on it.

One FanOutBatch per stream batch: subscribers found once per topic (one Query each, in
parallel), connections found gone skipped, and per job the order of versions kept (a failed
change fails the later ones of its job, which the event source mapping then delivers again
from the failed one on). A work notice goes out once per queue per batch (again only for an
earlier time), ahead of the record's change, and is best effort: a worker that misses one
finds the job at its next slow poll.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from msgspec import Struct, field

from ..errors import JobsError
from ..store import ConnectionGone, SocketGateway
from .messages import Change, WorkNotice, change_of, encode, work_notice_of
from .subscriptions import Subscriber, Subscriptions

logger = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """Some posts of one change failed for a reason other than a gone connection."""


class FanOutReport(Struct):
    sent: int = 0
    gone: int = 0
    failed: int = 0
    queries: int = 0
    notices: int = 0


class FanOutBatch(Struct):
    live: Subscriptions
    send: Callable[[str, bytes], None]
    pool: ThreadPoolExecutor
    max_message_bytes: int
    report: FanOutReport = field(default_factory=FanOutReport)
    _subscribers: dict[str, list[Subscriber]] = field(default_factory=dict)
    _gone: set[str] = field(default_factory=set)
    _failed_jobs: set[str] = field(default_factory=set)
    _noticed: dict[str, str] = field(default_factory=dict)  # queue -> earliest `at` sent
    _lock: threading.Lock = field(default_factory=threading.Lock)  # posts run on many threads

    def recipients(self, change: Change) -> list[str]:
        missing = [t for t in change.topics() if t not in self._subscribers]
        for topic, found in zip(missing, self.pool.map(self.live.subscribers, missing), strict=True):
            self._subscribers[topic] = found
            self.report.queries += 1
        connections: dict[str, None] = {}
        for topic in change.topics():
            for subscriber in self._subscribers[topic]:
                if subscriber.connection_id not in self._gone and subscriber.may_see(change.owner, change.type):
                    connections[subscriber.connection_id] = None
        return list(connections)

    def notify_work(self, notice: WorkNotice) -> int:
        """Tell the workers waiting on the queue that a job is claimable (at `notice.at`)."""
        sent = self._noticed.get(notice.queue)
        if sent is not None and sent <= notice.at:
            return 0
        self._noticed[notice.queue] = notice.at
        try:
            if notice.topic not in self._subscribers:
                self._subscribers[notice.topic] = self.live.subscribers(notice.topic)
                self.report.queries += 1
            waiting = [s.connection_id for s in self._subscribers[notice.topic]
                       if s.connection_id not in self._gone and s.may_see(None, notice.queue)]  # fmt: skip
            data = encode(notice.to_wire(), self.max_message_bytes)
            outcomes = list(self.pool.map(lambda c: self._post(c, data), waiting))
        except Exception:  # best effort: a lost notice costs a worker one slow poll, never the updates
            logger.warning("work notice not sent", exc_info=True, extra={"queue": notice.queue})
            return 0
        sent_count = sum(1 for o in outcomes if o is True)
        self.report.notices += sent_count
        return sent_count

    def deliver(self, record: Mapping[str, Any]) -> int:
        """Send one record's change to every socket of every subscriber (and its queue's work
        notice first, if it made a job claimable); returns the count of updates sent."""
        notice = work_notice_of(record)
        if notice is not None:
            self.notify_work(notice)
        change = change_of(record)
        if change is None:
            return 0
        if change.job_id in self._failed_jobs:
            raise DeliveryFailed(f"an earlier change of job {change.job_id} failed; keeping its order")
        try:
            data = encode(change.message, self.max_message_bytes)
            outcomes = list(self.pool.map(lambda c: self._post(c, data), self.recipients(change)))
        except Exception:
            self._failed_jobs.add(change.job_id)
            raise
        failures = [o for o in outcomes if isinstance(o, JobsError)]
        if failures:
            self._failed_jobs.add(change.job_id)
            self.report.failed += len(failures)
            raise DeliveryFailed(f"{len(failures)} post(s) of job {change.job_id} v{change.version} failed: {failures[0]}")
        return sum(1 for o in outcomes if o is True)

    def _post(self, connection_id: str, data: bytes) -> bool | JobsError:
        try:
            self.send(connection_id, data)
        except ConnectionGone:
            with self._lock:
                self._gone.add(connection_id)
                self.report.gone += 1
            self.live.disconnect(connection_id)
            return False
        except JobsError as error:
            return error
        with self._lock:
            self.report.sent += 1
        return True


class FanOut:
    """Builds a FanOutBatch per invocation over one warm gateway and thread pool."""

    def __init__(self, live: Subscriptions, gateway: SocketGateway | Callable[[str, bytes], None]) -> None:
        self.live = live
        self.send = gateway.post if isinstance(gateway, SocketGateway) else gateway
        self.pool = ThreadPoolExecutor(max_workers=live.settings.post_parallelism, thread_name_prefix="fan-out")

    def batch(self) -> FanOutBatch:
        return FanOutBatch(self.live, self.send, self.pool, self.live.settings.max_message_bytes)
