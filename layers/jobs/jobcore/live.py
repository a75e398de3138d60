"""Live updates: WebSocket connections, their subscriptions, and the fan-out of job changes.

The connections table holds one item per connection and one per subscription:

| item         | PK          | SK          | topic (index `topic-connections`)   |
|--------------|-------------|-------------|-------------------------------------|
| connection   | `C#<id>`    | `CONN`      | -                                   |
| subscription | `C#<id>`    | `S#<topic>` | `owner#<owner>`, `job#<id>`, `type#<type>` |

A change of a job reaches the subscribers of its job, its owner and its type: three
Queries on the topic index (cached for the batch), never a Scan. Every item expires with
its connection (API Gateway closes a connection after 2 hours; `$disconnect` is best effort),
and a post answered 410 deletes the connection at once.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from .clock import Clock, SystemClock, epoch_seconds
from .errors import Forbidden, InvalidRequest, JobsError, NotFound
from .model import Job, Principal, Role
from .service import JobService
from .store import ConnectionGone, Expr, SocketGateway, TableStore, deserialize
from .validation import Reader

TOPIC_INDEX = "topic-connections"
CONNECTION_SK = "CONN"
SUBSCRIPTION_PREFIX = "S#"
# API Gateway closes every WebSocket connection after 2 hours; items outlive it a little.
CONNECTION_LIFETIME = timedelta(hours=2, minutes=5)
# API Gateway's limit for one WebSocket frame and for one @connections post.
MAX_MESSAGE_BYTES = 128 * 1024
MAX_SUBSCRIPTIONS = 50
SUBSCRIBE_FIELDS = frozenset({"action", "job_id", "type", "owner"})
TOPIC_KINDS = ("job_id", "type", "owner")
# The REMOVE records the TTL process writes carry this identity (DynamoDB docs).
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


@dataclass(frozen=True)
class LiveSettings:
    connections_table: str
    websocket_endpoint: str | None = None
    max_subscriptions: int = MAX_SUBSCRIPTIONS
    max_message_bytes: int = MAX_MESSAGE_BYTES
    # Posts of one change run in parallel on this many threads.
    post_parallelism: int = 32

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LiveSettings:
        source = os.environ if env is None else env
        table = source.get("JOBS_CONNECTIONS_TABLE_NAME")
        if not table:
            raise RuntimeError("JOBS_CONNECTIONS_TABLE_NAME is not set")
        return cls(connections_table=table, websocket_endpoint=source.get("JOBS_WEBSOCKET_ENDPOINT") or None)


@dataclass(frozen=True)
class Topic:
    """What a subscription follows: one job, every job of an owner, or of a type."""

    kind: str  # job_id | owner | type
    value: str

    @property
    def key(self) -> str:
        return f"{self.kind}#{self.value}"

    def to_wire(self) -> dict[str, str]:
        return {self.kind: self.value}


@dataclass(frozen=True)
class Subscriber:
    connection_id: str
    sub: str
    role: Role
    expires_at: int

    def may_see(self, owner: str | None) -> bool:
        """A user never receives another user's updates, whatever it subscribed to."""
        return self.role is not Role.USER or (owner is not None and owner == self.sub)


def connection_pk(connection_id: str) -> str:
    return f"C#{connection_id}"


def _subscriber_of(item: Mapping[str, Any]) -> Subscriber | None:
    """A subscription item as the fan-out needs it; None for a damaged one, which must not
    stop the updates of every other subscriber of its topic."""
    try:
        return Subscriber(str(item["connection_id"]), str(item["sub"]), Role(str(item["role"])), int(item["expires_at"]))
    except (KeyError, ValueError, TypeError):
        return None


class LiveService:
    """Connections and subscriptions (the WebSocket routes)."""

    def __init__(
        self,
        connections: TableStore,
        settings: LiveSettings,
        *,
        jobs: Callable[[], JobService] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.connections = connections
        self.settings = settings
        self.jobs = jobs  # built only when a subscription names a job
        self.clock = clock or SystemClock()

    def _expires_at(self) -> int:
        return epoch_seconds(self.clock.now() + CONNECTION_LIFETIME)

    # -- connections ----------------------------------------------------------------------
    def connect(self, connection_id: str, principal: Principal) -> None:
        self.connections.put(
            {
                "PK": connection_pk(connection_id),
                "SK": CONNECTION_SK,
                "sub": principal.sub,
                "role": principal.role.value,
                "connected_at": epoch_seconds(self.clock.now()),
                "expires_at": self._expires_at(),
            }
        )

    def _items_of(self, connection_id: str) -> list[dict[str, Any]]:
        e = Expr()
        found: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while True:
            page, start = self.connections.query(
                f"{e.n('PK')} = {e.v(connection_pk(connection_id))}", e, start_key=start, consistent=True
            )
            found += page
            if start is None:
                return found

    def disconnect(self, connection_id: str) -> int:
        """Forget a connection and its subscriptions; returns how many items went."""
        keys = [{"PK": i["PK"], "SK": i["SK"]} for i in self._items_of(connection_id)]
        return self.connections.batch_delete(keys) if keys else 0

    # -- subscriptions --------------------------------------------------------------------
    def topic_of(self, principal: Principal, body: Any, *, check_job: bool) -> Topic:
        """The topic a subscribe or unsubscribe message names, if the caller may follow it.

        A job id of another user's job is refused exactly as a missing one (not_found)."""
        r = Reader(body, SUBSCRIBE_FIELDS)
        named = {kind: r.string(kind, max_chars=256) for kind in TOPIC_KINDS}
        r.done()
        given = {kind: value for kind, value in named.items() if value}
        if len(given) > 1:
            raise InvalidRequest.fields({kind: "name one of job_id, type or owner" for kind in given})
        if principal.role is Role.USER:
            if "type" in given or given.get("owner", principal.sub) != principal.sub:
                raise Forbidden("users subscribe to their own jobs only")
            if not given:
                return Topic("owner", principal.sub)
        elif not given:
            raise InvalidRequest.fields({"job_id": "name one of job_id, type or owner"})
        kind, value = next(iter(given.items()))
        if kind == "job_id" and check_job:
            if self.jobs is None:
                raise RuntimeError("subscribing to a job needs the jobs service")
            self.jobs().get(principal, value)  # not_found for a missing job or another user's
        return Topic(kind, value)

    def subscribe(self, connection_id: str, principal: Principal, body: Any) -> Topic:
        topic = self.topic_of(principal, body, check_job=True)
        items = self._items_of(connection_id)
        connection = next((i for i in items if i["SK"] == CONNECTION_SK), None)
        if connection is None:
            raise NotFound(f"connection {connection_id} is not registered; reconnect")
        sort_key = SUBSCRIPTION_PREFIX + topic.key
        subscriptions = {i["SK"] for i in items if i["SK"].startswith(SUBSCRIPTION_PREFIX)}
        if sort_key not in subscriptions and len(subscriptions) >= self.settings.max_subscriptions:
            raise InvalidRequest(
                f"a connection holds at most {self.settings.max_subscriptions} subscriptions; unsubscribe first",
                {"limit": self.settings.max_subscriptions},
            )
        self.connections.put(
            {
                "PK": connection_pk(connection_id),
                "SK": sort_key,
                "topic": topic.key,
                "connection_id": connection_id,
                "sub": principal.sub,
                "role": principal.role.value,
                "expires_at": int(connection["expires_at"]),
            }
        )
        return topic

    def unsubscribe(self, connection_id: str, principal: Principal, body: Any) -> Topic:
        topic = self.topic_of(principal, body, check_job=False)
        self.connections.delete({"PK": connection_pk(connection_id), "SK": SUBSCRIPTION_PREFIX + topic.key})
        return topic

    def subscribers(self, topic_key: str) -> list[Subscriber]:
        """Live subscribers of one topic: one Query on the topic index (paged)."""
        e = Expr()
        now = epoch_seconds(self.clock.now())
        condition = f"{e.n('topic')} = {e.v(topic_key)}"
        found: list[Subscriber] = []
        start: dict[str, Any] | None = None
        while True:
            page, start = self.connections.query(condition, e, index=TOPIC_INDEX, start_key=start)
            for item in page:
                subscriber = _subscriber_of(item)
                # TTL deletes lag; an item past its expiry is already gone for us.
                if subscriber is not None and subscriber.expires_at > now:
                    found.append(subscriber)
            if start is None:
                return found


# ==========================================================================================
# changes of jobs, as subscribers see them
# ==========================================================================================
@dataclass(frozen=True)
class Change:
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
    """The contract's `task_update` for the change from `old` to `new` (API.md).

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
    return {
        "type": "task_removed",
        "job_id": old.id,
        "version": old.version + 1,
        "reason": "expired" if expired else "deleted",
    }


def change_of(record: Mapping[str, Any]) -> Change | None:
    """The change a stream record of the jobs table describes; None for items that are not
    jobs (message log entries, guards, idempotency records, queue names)."""
    images = record.get("dynamodb") or {}
    keys = images.get("Keys") or {}
    if (keys.get("SK") or {}).get("S") != "JOB":
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


def encode(message: dict[str, Any], max_bytes: int = MAX_MESSAGE_BYTES) -> bytes:
    """The message as sent. One that would pass API Gateway's frame limit is sent without
    its free-text fields and with `"truncated": true`: the client reads the job and its
    messages over HTTP instead (docs/live-updates.md)."""
    data = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(data) <= max_bytes:
        return data
    slim = {**message, "new_title": None, "new_status": None, "message_to_append": None, "speeds": [], "truncated": True}
    if isinstance(slim.get("progress"), dict):
        slim["progress"] = {**slim["progress"], "title": None}
    return json.dumps(slim, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# ==========================================================================================
# the fan-out
# ==========================================================================================
class DeliveryFailed(Exception):
    """Some posts of one change failed for a reason other than a gone connection."""


@dataclass
class FanOutReport:
    sent: int = 0
    gone: int = 0
    failed: int = 0
    queries: int = 0


@dataclass
class FanOutBatch:
    """One stream batch: subscribers found once per topic, connections found gone skipped,
    and per job the order of versions kept (a failed change fails the later ones of its job,
    which the event source mapping then delivers again from the failed one on)."""

    live: LiveService
    send: Callable[[str, bytes], None]
    pool: ThreadPoolExecutor
    max_message_bytes: int = MAX_MESSAGE_BYTES
    report: FanOutReport = field(default_factory=FanOutReport)
    _subscribers: dict[str, list[Subscriber]] = field(default_factory=dict)
    _gone: set[str] = field(default_factory=set)
    _failed_jobs: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)  # posts run on many threads

    def recipients(self, change: Change) -> list[str]:
        missing = [t for t in change.topics() if t not in self._subscribers]
        for topic, found in zip(missing, self.pool.map(self.live.subscribers, missing), strict=True):
            self._subscribers[topic] = found
            self.report.queries += 1
        connections: dict[str, None] = {}
        for topic in change.topics():
            for subscriber in self._subscribers[topic]:
                if subscriber.connection_id not in self._gone and subscriber.may_see(change.owner):
                    connections[subscriber.connection_id] = None
        return list(connections)

    def deliver(self, record: Mapping[str, Any]) -> int:
        """Send one record's change to every socket of every subscriber; returns the count."""
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

    def __init__(self, live: LiveService, gateway: SocketGateway | Callable[[str, bytes], None]) -> None:
        self.live = live
        self.send = gateway.post if isinstance(gateway, SocketGateway) else gateway
        self.pool = ThreadPoolExecutor(max_workers=live.settings.post_parallelism, thread_name_prefix="fan-out")

    def batch(self) -> FanOutBatch:
        return FanOutBatch(self.live, self.send, self.pool, self.live.settings.max_message_bytes)
