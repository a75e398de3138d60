"""Connections and subscriptions of the WebSocket API, and who may follow what.

The connections table holds one item per connection and one per subscription:

| item         | PK          | SK          | topic (index `topic-subscribers`)          |
|--------------|-------------|-------------|--------------------------------------------|
| connection   | `C#<id>`    | `CONN`      | -                                          |
| subscription | `C#<id>`    | `S#<topic>` | `owner#<owner>`, `job_id#<id>`, `type#<type>`, `work#<type>` |

A subscribe is one atomic write: the connection's count of subscriptions goes up (on the
condition that the connection is registered and under its cap) together with the put of the
subscription (on the condition that it is new). Every item expires with its connection (API
Gateway closes a connection after 2 hours; `$disconnect` is best effort), and a post answered
410 deletes the connection at once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from msgspec import Struct

from ..clock import Clock, SystemClock, epoch_seconds
from ..errors import Forbidden, InvalidRequest, NotFound
from ..model import Principal, Role
from ..settings import LiveSettings
from ..store import Expr, TableStore, TransactionCanceled, Write
from .messages import Topic

TOPIC_INDEX = "topic-subscribers"
CONNECTION_SK = "CONN"
SUBSCRIPTION_PREFIX = "S#"
# API Gateway closes every WebSocket connection after 2 hours; items outlive it a little.
CONNECTION_LIFETIME = timedelta(hours=2, minutes=5)

# The rules of the connections table, each condition beside what its failure means.
# Subscribe, on the connection: registered, and under its cap of subscriptions.
COUNT_UP = "attribute_exists(#PK) AND (attribute_not_exists(#subscriptions) OR #subscriptions < :most)"
# Subscribe, on the subscription: new (a second subscribe of a topic changes nothing).
NEW_SUBSCRIPTION = "attribute_not_exists(#PK)"
# Unsubscribe: the subscription exists; the connection's count comes down with it.
HAS_SUBSCRIPTION = "attribute_exists(#PK)"
COUNT_DOWN = "attribute_exists(#PK) AND #subscriptions > :zero"


class Subscriber(Struct, frozen=True):
    connection_id: str
    sub: str
    role: Role
    expires_at: int
    # A scoped service's queues (its token's claim), None: every queue.
    queues: tuple[str, ...] | None = None

    def may_see(self, owner: str | None, job_type: str | None = None) -> bool:
        """A user never receives another user's updates, nor a scoped service another
        queue's, whatever it subscribed to (a service may follow an owner)."""
        if self.role is Role.USER:
            return owner is not None and owner == self.sub
        return job_type is None or Principal(self.sub, self.role, self.queues).reaches(job_type)


def connection_pk(connection_id: str) -> str:
    return f"C#{connection_id}"


def _subscriber_of(item: dict[str, Any]) -> Subscriber | None:
    """A subscription item as the fan-out needs it; None for a damaged one, which must not
    stop the updates of every other subscriber of its topic."""
    try:
        queues = item.get("queues")
        scope = tuple(str(q) for q in queues) if isinstance(queues, list) else None
        return Subscriber(str(item["connection_id"]), str(item["sub"]), Role(str(item["role"])), int(item["expires_at"]),
                          scope)  # fmt: skip
    except (KeyError, ValueError, TypeError):
        return None


def allowed_topic(principal: Principal, topic: Topic | None) -> Topic:
    """The topic the caller may follow: a user only its own jobs (all of them by default)."""
    if principal.role is Role.USER:
        if topic is None:
            return Topic("owner", principal.sub)
        if topic.kind in ("type", "work") or (topic.kind == "owner" and topic.value != principal.sub):
            raise Forbidden("users subscribe to their own jobs only")
        return topic
    if topic is None:
        raise InvalidRequest.fields({"job_id": "name one of job_id, type, owner or work"})
    if topic.kind in ("type", "work") and not principal.reaches(topic.value):
        raise Forbidden(f"this token does not reach queue {topic.value}", {"type": topic.value})
    return topic


class Subscriptions:
    """Connections and subscriptions (the WebSocket routes)."""

    def __init__(
        self,
        connections: TableStore,
        settings: LiveSettings,
        *,
        check_job: Callable[[Principal, str], object] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.connections = connections
        self.settings = settings
        self.check_job = check_job  # not_found for a missing job or another user's
        self.clock = clock or SystemClock()

    def _expires_at(self) -> int:
        return epoch_seconds(self.clock.now() + CONNECTION_LIFETIME)

    def connect(self, connection_id: str, principal: Principal) -> None:
        self.connections.put(
            {
                "PK": connection_pk(connection_id),
                "SK": CONNECTION_SK,
                "sub": principal.sub,
                "role": principal.role.value,
                "connected_at": epoch_seconds(self.clock.now()),
                "expires_at": self._expires_at(),
                "subscriptions": 0,
            }
        )

    def disconnect(self, connection_id: str) -> int:
        """Forget a connection and its subscriptions; returns how many items went."""
        e = Expr()
        condition = f"{e.n('PK')} = {e.v(connection_pk(connection_id))}"
        found = [item for page in self.connections.pages(condition, e, consistent=True) for item in page]
        keys = [{"PK": i["PK"], "SK": i["SK"]} for i in found]
        return self.connections.batch_delete(keys) if keys else 0

    def subscribe(self, connection_id: str, principal: Principal, requested: Topic | None) -> Topic:
        topic = allowed_topic(principal, requested)
        if topic.kind == "job_id":
            if self.check_job is None:
                raise RuntimeError("subscribing to a job needs the jobs engine")
            self.check_job(principal, topic.value)
        count, put = Expr(), Expr()
        count.names.update({"#PK": "PK", "#subscriptions": "subscriptions"})
        count.values.update({":most": self.settings.max_subscriptions, ":one": 1, ":zero": 0})
        put.names["#PK"] = "PK"
        subscription: dict[str, Any] = {
            "PK": connection_pk(connection_id),
            "SK": SUBSCRIPTION_PREFIX + topic.key,
            "topic": topic.key,
            "connection_id": connection_id,
            "sub": principal.sub,
            "role": principal.role.value,
            "expires_at": self._expires_at(),
        }
        if principal.scoped and principal.queues is not None:
            subscription["queues"] = list(principal.queues)
        writes = [
            Write("update", key={"PK": connection_pk(connection_id), "SK": CONNECTION_SK},
                  update="SET #subscriptions = if_not_exists(#subscriptions, :zero) + :one", condition=COUNT_UP, expr=count),
            Write("put", item=subscription, condition=NEW_SUBSCRIPTION, expr=put),
        ]  # fmt: skip
        try:
            self.connections.transact(writes)
        except TransactionCanceled as canceled:
            connection, existing = canceled.reasons[0], canceled.reasons[1] if len(canceled.reasons) > 1 else None
            if existing is not None and existing.code == "ConditionalCheckFailed":
                return topic  # subscribed already
            if connection is not None and connection.item is None:
                raise NotFound(f"connection {connection_id} is not registered; reconnect") from None
            raise InvalidRequest(
                f"a connection holds at most {self.settings.max_subscriptions} subscriptions; unsubscribe first",
                {"limit": self.settings.max_subscriptions},
            ) from None
        return topic

    def unsubscribe(self, connection_id: str, principal: Principal, requested: Topic | None) -> Topic:
        topic = allowed_topic(principal, requested)
        remove, count = Expr(), Expr()
        remove.names["#PK"] = "PK"
        count.names.update({"#PK": "PK", "#subscriptions": "subscriptions"})
        count.values.update({":one": 1, ":zero": 0})
        writes = [
            Write("delete", key={"PK": connection_pk(connection_id), "SK": SUBSCRIPTION_PREFIX + topic.key},
                  condition=HAS_SUBSCRIPTION, expr=remove),
            Write("update", key={"PK": connection_pk(connection_id), "SK": CONNECTION_SK},
                  update="SET #subscriptions = #subscriptions - :one", condition=COUNT_DOWN, expr=count),
        ]  # fmt: skip
        try:
            self.connections.transact(writes)
        except TransactionCanceled as canceled:
            if canceled.reasons and canceled.reasons[0].code == "ConditionalCheckFailed":
                return topic  # not subscribed: nothing to do
            # The connection is gone (or its count is off): the subscription goes alone.
            self.connections.delete({"PK": connection_pk(connection_id), "SK": SUBSCRIPTION_PREFIX + topic.key})
        return topic

    def subscribers(self, topic_key: str) -> list[Subscriber]:
        """Live subscribers of one topic: one Query on the topic index (paged)."""
        e = Expr()
        now = epoch_seconds(self.clock.now())
        condition = f"{e.n('topic')} = {e.v(topic_key)}"
        found: list[Subscriber] = []
        for page in self.connections.pages(condition, e, index=TOPIC_INDEX):
            for item in page:
                subscriber = _subscriber_of(item)
                # TTL deletes lag; an item past its expiry is already gone for us.
                if subscriber is not None and subscriber.expires_at > now:
                    found.append(subscriber)
        return found
