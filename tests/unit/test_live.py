"""Live updates: subscriptions and their authorization, stream records to `task_update`
messages, and the fan-out (one Query per topic, 410s forget the connection, a failure
fails only its record and keeps each job's order)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from jobcore import keys
from jobcore.errors import Forbidden, InvalidRequest, NotFound
from jobcore.live.messages import TTL_IDENTITY, change_of, encode
from jobcore.live.subscriptions import Subscriptions, connection_pk
from jobcore.model import Principal, Role
from jobcore.settings import LiveSettings
from jobcore.store import TableStore, serialize
from jobcore.stream import fan_out_handler
from tests.conftest import CONNECTIONS_TABLE as CONNECTIONS
from tests.support.counting import RequestCounter
from tests.support.jobs import Jobs
from tests.support.live import LiveRoutes


class Stream:
    """Stream records of the jobs table, built from the job item before and after a write."""

    def __init__(self, service: Jobs) -> None:
        self.service = service
        self.sequence = 0

    def item(self, job_id: str) -> dict[str, Any] | None:
        return self.service.store.get(keys.job_key(job_id))

    def record(self, name: str, old: dict[str, Any] | None, new: dict[str, Any] | None, *, ttl: bool = False) -> dict[str, Any]:
        self.sequence += 1
        source = new or old
        assert source is not None
        images: dict[str, Any] = {
            "Keys": serialize({"PK": source["PK"], "SK": source["SK"]}),
            "SequenceNumber": str(self.sequence).zfill(21),
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        if new is not None:
            images["NewImage"] = serialize(new)
        if old is not None:
            images["OldImage"] = serialize(old)
        record = {"eventID": str(self.sequence), "eventName": name, "eventSource": "aws:dynamodb", "dynamodb": images}
        if ttl:
            record["userIdentity"] = dict(TTL_IDENTITY)
        return record

    def create(self, principal: Principal, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        job = self.service.create(principal, body).job
        return job.id, self.record("INSERT", None, self.item(job.id))

    def change(self, job_id: str, write: Callable[[], Any]) -> dict[str, Any]:
        old = self.item(job_id)
        write()
        return self.record("MODIFY", old, self.item(job_id))


@pytest.fixture
def stream(service: Jobs) -> Stream:
    return Stream(service)


def connect(live_service: LiveRoutes, connection_id: str, principal: Principal, *subscriptions: dict[str, Any]) -> None:
    live_service.connect(connection_id, principal)
    for body in subscriptions:
        live_service.subscribe(connection_id, principal, {"action": "subscribe", **body})


def count_to_three(stream: Stream, svc: Principal, owner: str) -> tuple[str, list[dict[str, Any]]]:
    job_id, created = stream.create(svc, {"type": "count", "owner": owner, "title": "Counting"})
    records = [created]
    for n in (1, 2, 3):
        text = f"Count is now {n}"
        body = {"new_status": text, "message_to_append": text, "progress": {"current": n, "maximum": 3}}
        records.append(stream.change(job_id, lambda body=body: stream.service.post_status(svc, job_id, body)))
    records.append(stream.change(job_id, lambda: stream.service.post_status(svc, job_id, {"complete": True})))
    return job_id, records


# -- messages ------------------------------------------------------------------------------
def test_a_status_post_with_a_message_and_progress_is_one_update(stream, svc):
    job_id, records = count_to_three(stream, svc, "User#1234")
    updates = [change_of(r).message for r in records]
    assert [u["version"] for u in updates] == [1, 2, 3, 4, 5]
    assert updates[0] == {
        "type": "task_update",
        "job_id": job_id,
        "version": 1,
        "state": "pending",
        "new_title": "Counting",
        "new_status": None,
        "progress": None,
        "speeds": [],
        "message_to_append": None,
        "complete": False,
        "modified": updates[0]["modified"],
    }
    assert [u["message_to_append"] for u in updates[1:]] == ["Count is now 1", "Count is now 2", "Count is now 3", None]
    assert [u["new_status"] for u in updates[1:]] == ["Count is now 1", "Count is now 2", "Count is now 3", None]
    assert updates[3]["progress"] == {"title": None, "current": 3, "maximum": 3}
    assert updates[1]["new_title"] is None  # unchanged by that post
    assert (updates[-1]["state"], updates[-1]["complete"]) == ("finished", True)


def test_message_items_and_other_items_are_not_changes(stream, svc):
    job_id, _ = stream.create(svc, {"type": "count"})
    message = stream.record("INSERT", None, {**keys.message_key(job_id, "2026-01-01T00:00:00.000Z"), "message": "hi"})
    assert change_of(message) is None


def test_a_removal_says_whether_ttl_expired_the_job(stream, svc):
    job_id, _ = stream.create(svc, {"type": "count", "owner": "User#1"})
    old = stream.item(job_id)
    expired = change_of(stream.record("REMOVE", old, None, ttl=True))
    deleted = change_of(stream.record("REMOVE", old, None))
    assert expired.message == {"type": "task_removed", "job_id": job_id, "version": 2, "reason": "expired"}
    assert deleted.message["reason"] == "deleted"
    assert expired.owner == "User#1"


def test_a_message_over_the_frame_limit_is_sent_slim_and_marked_truncated():
    message = {
        "type": "task_update",
        "job_id": "j",
        "version": 3,
        "new_status": "s" * 5000,
        "message_to_append": "m" * 5000,
        "new_title": "t",
        "speeds": [{"title": "x"}],
        "progress": {"title": "p" * 100, "current": 1, "maximum": 2},
    }
    assert json.loads(encode(message, 20_000)) == message
    slim = json.loads(encode(message, 1000))
    assert len(encode(message, 1000)) < 1000
    assert slim["truncated"] is True
    assert (slim["version"], slim["job_id"], slim["progress"]["current"]) == (3, "j", 1)
    assert slim["message_to_append"] is None and slim["new_status"] is None


# -- subscriptions ----------------------------------------------------------------------------
def test_users_subscribe_to_their_own_jobs_only(live_service, stream, svc, alice, bob):
    own, _ = stream.create(svc, {"type": "count", "owner": alice.sub})
    others, _ = stream.create(svc, {"type": "count", "owner": bob.sub})
    live_service.connect("c1", alice)
    assert live_service.subscribe("c1", alice, {"action": "subscribe"}).key == f"owner#{alice.sub}"
    assert live_service.subscribe("c1", alice, {"job_id": own}).key == f"job_id#{own}"
    assert live_service.subscribe("c1", alice, {"owner": alice.sub}).key == f"owner#{alice.sub}"
    with pytest.raises(NotFound) as foreign:
        live_service.subscribe("c1", alice, {"job_id": others})
    with pytest.raises(NotFound) as missing:
        live_service.subscribe("c1", alice, {"job_id": "01JDA3Q0Z8M6W4K2T9R7P5N3B1"})
    assert type(foreign.value) is type(missing.value)
    assert foreign.value.message.replace(others, "X") == missing.value.message.replace("01JDA3Q0Z8M6W4K2T9R7P5N3B1", "X")
    for body in ({"owner": bob.sub}, {"type": "count"}):
        with pytest.raises(Forbidden):
            live_service.subscribe("c1", alice, body)


def test_services_subscribe_by_job_type_or_owner_and_name_exactly_one(live_service, stream, svc):
    job_id, _ = stream.create(svc, {"type": "count"})
    live_service.connect("c1", svc)
    assert live_service.subscribe("c1", svc, {"type": "count"}).key == "type#count"
    assert live_service.subscribe("c1", svc, {"owner": "User#9"}).key == "owner#User#9"
    assert live_service.subscribe("c1", svc, {"job_id": job_id}).key == f"job_id#{job_id}"
    with pytest.raises(NotFound):
        live_service.subscribe("c1", svc, {"job_id": "nope"})
    with pytest.raises(InvalidRequest) as two:
        live_service.subscribe("c1", svc, {"type": "count", "owner": "User#9"})
    assert set(two.value.details["fields"]) == {"type", "owner"}
    with pytest.raises(InvalidRequest):
        live_service.subscribe("c1", svc, {"action": "subscribe"})
    with pytest.raises(InvalidRequest) as unknown:
        live_service.subscribe("c1", svc, {"type": "count", "colour": "red"})
    assert unknown.value.details["fields"] == {"colour": "unknown field"}


def test_subscriptions_per_connection_are_capped_and_unsubscribe_frees_one(dynamodb, service, clock, svc):
    settings = LiveSettings(CONNECTIONS, max_subscriptions=2)
    capped = LiveRoutes(Subscriptions(TableStore(dynamodb, CONNECTIONS), settings, clock=clock))
    capped.connect("c1", svc)
    capped.subscribe("c1", svc, {"type": "a"})
    capped.subscribe("c1", svc, {"type": "b"})
    capped.subscribe("c1", svc, {"type": "b"})  # the same topic again is no new subscription
    with pytest.raises(InvalidRequest) as full:
        capped.subscribe("c1", svc, {"type": "c"})
    assert full.value.details == {"limit": 2}
    capped.unsubscribe("c1", svc, {"type": "a"})
    capped.subscribe("c1", svc, {"type": "c"})
    assert {s.connection_id for s in capped.subscribers("type#c")} == {"c1"}
    assert capped.subscribers("type#a") == []


def test_a_connection_that_never_connected_cannot_subscribe(live_service, svc):
    with pytest.raises(NotFound):
        live_service.subscribe("ghost", svc, {"type": "a"})


def test_disconnect_forgets_the_connection_and_its_subscriptions(live_service, dynamodb, svc):
    connect(live_service, "c1", svc, {"type": "a"}, {"type": "b"})
    assert live_service.disconnect("c1") == 3
    assert live_service.subscribers("type#a") == []
    raw = dynamodb.query(
        TableName=CONNECTIONS, KeyConditionExpression="PK = :pk", ExpressionAttributeValues={":pk": {"S": connection_pk("c1")}}
    )
    assert raw["Items"] == []


def test_subscriptions_past_their_connections_lifetime_are_not_served(live_service, clock, svc):
    connect(live_service, "c1", svc, {"type": "a"})
    clock.advance((2 * 3600 + 4 * 60) * 1000)
    assert [s.connection_id for s in live_service.subscribers("type#a")] == ["c1"]
    clock.advance(2 * 60 * 1000)  # past 2 h 5 min: API Gateway closed it, whatever TTL has done yet
    assert live_service.subscribers("type#a") == []


# -- the fan-out ------------------------------------------------------------------------------
def test_counting_to_three_reaches_every_socket_of_the_owner_and_nobody_else(fan_out, live_service, sockets, stream, svc):
    user, other = Principal("User#1234", Role.USER), Principal("User#5678", Role.USER)
    connect(live_service, "phone", user, {})
    connect(live_service, "laptop", user, {})
    connect(live_service, "stranger", other, {})
    connect(live_service, "dashboard", svc, {"type": "count"})
    _, records = count_to_three(stream, svc, user.sub)
    assert fan_out_handler({"Records": records}, None) == {"batchItemFailures": []}
    for socket in ("phone", "laptop", "dashboard"):
        assert sockets.versions(socket) == [1, 2, 3, 4, 5]
    assert [m["message_to_append"] for m in sockets.received["phone"]][1:] == [
        "Count is now 1",
        "Count is now 2",
        "Count is now 3",
        None,
    ]
    assert sockets.received["phone"][-1]["complete"] is True
    assert "stranger" not in sockets.received


def test_a_user_following_a_job_stops_getting_it_once_the_job_changes_owner(fan_out, live_service, sockets, stream, svc, alice):
    job_id, _ = stream.create(svc, {"type": "count", "owner": alice.sub})
    connect(live_service, "a", alice, {"job_id": job_id}, {})
    moved = stream.change(job_id, lambda: stream.service.patch(svc, job_id, {"owner": "User#bob"}, if_match=None))
    fan_out_handler({"Records": [moved]}, None)
    assert "a" not in sockets.received


def test_a_socket_following_a_job_twice_gets_each_change_once(fan_out, live_service, sockets, stream, svc, alice):
    job_id, created = stream.create(svc, {"type": "count", "owner": alice.sub})
    connect(live_service, "a", alice, {"job_id": job_id}, {})
    connect(live_service, "s", svc, {"job_id": job_id}, {"type": "count"}, {"owner": alice.sub})
    fan_out_handler({"Records": [created]}, None)
    assert sockets.versions("a") == sockets.versions("s") == [1]


def test_a_gone_socket_is_forgotten_and_the_others_still_get_the_change(fan_out, live_service, sockets, stream, svc, alice):
    connect(live_service, "vanished", alice, {})
    connect(live_service, "alive", alice, {})
    sockets.gone.add("vanished")
    _, records = count_to_three(stream, svc, alice.sub)
    assert fan_out_handler({"Records": records}, None) == {"batchItemFailures": []}
    assert sockets.versions("alive") == [1, 2, 3, 4, 5]
    assert [s.connection_id for s in live_service.subscribers(f"owner#{alice.sub}")] == ["alive"]
    batch = fan_out.batch()
    batch.deliver(records[0])
    assert batch.report.gone == 0  # forgotten: no post to it any more


def test_a_failing_post_fails_its_record_and_later_ones_of_its_job_only(fan_out, live_service, sockets, stream, svc, alice, bob):
    connect(live_service, "flaky", alice, {})
    connect(live_service, "fine", bob, {})
    job_a, created_a = stream.create(svc, {"type": "count", "owner": alice.sub})
    job_b, created_b = stream.create(svc, {"type": "count", "owner": bob.sub})
    later_a = stream.change(job_a, lambda: stream.service.post_status(svc, job_a, {"new_status": "x"}))
    later_b = stream.change(job_b, lambda: stream.service.post_status(svc, job_b, {"new_status": "y"}))
    sockets.failing.add("flaky")
    result = fan_out_handler({"Records": [created_a, created_b, later_a, later_b]}, None)
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    assert failed == {created_a["dynamodb"]["SequenceNumber"], later_a["dynamodb"]["SequenceNumber"]}
    assert sockets.versions("fine") == [1, 2]


def test_a_malformed_record_fails_alone(fan_out, live_service, sockets, stream, svc, alice):
    connect(live_service, "a", alice, {})
    _, good = stream.create(svc, {"type": "count", "owner": alice.sub})
    poison = stream.record("MODIFY", None, {"PK": "JOB#bad", "SK": "JOB", "version": "not a number"})
    result = fan_out_handler({"Records": [poison, good]}, None)
    assert result == {"batchItemFailures": [{"itemIdentifier": poison["dynamodb"]["SequenceNumber"]}]}
    assert sockets.versions("a") == [1]


def test_a_batch_whose_every_record_fails_fails_the_invocation(fan_out, stream):
    """Lambda then retries the batch and counts an error, as with powertools' batch utility."""
    from jobcore.stream import EveryRecordFailed

    poison = [stream.record("MODIFY", None, {"PK": f"JOB#bad{n}", "SK": "JOB", "version": "x"}) for n in range(2)]
    with pytest.raises(EveryRecordFailed):
        fan_out_handler({"Records": poison}, None)
    assert fan_out_handler({"Records": []}, None) == {"batchItemFailures": []}  # nothing to fail


def test_the_fan_out_queries_each_topic_once_per_batch(fan_out, live_service, dynamodb, stream, svc, alice):
    for n in range(5):
        connect(live_service, f"c{n}", alice, {})
    _, records = count_to_three(stream, svc, alice.sub)
    counter = RequestCounter().attach(dynamodb)
    fan_out_handler({"Records": records}, None)
    # job, type and owner topics, and the queue's work topic (the create made work): four
    # Queries for the five changes of the batch.
    assert counter.calls == {"Query": 4}
    assert counter.items_read == 5


def test_a_damaged_subscription_item_does_not_stop_the_others(fan_out, live_service, dynamodb, sockets, stream, svc, alice):
    connect(live_service, "a", alice, {})
    damaged = {"PK": "C#broken", "SK": f"S#owner#{alice.sub}", "topic": f"owner#{alice.sub}", "role": "wizard"}
    dynamodb.put_item(TableName=CONNECTIONS, Item=serialize(damaged))
    _, created = stream.create(svc, {"type": "count", "owner": alice.sub})
    assert fan_out_handler({"Records": [created]}, None) == {"batchItemFailures": []}
    assert sockets.versions("a") == [1]


def test_the_documented_messages_have_the_fields_the_fan_out_sends(stream, svc):
    import re

    from localcloud.template import PROJECT_ROOT

    documented = [
        json.loads(block) for block in re.findall(r"```json\n(.*?)```", (PROJECT_ROOT / "docs/live-updates.md").read_text(), re.S)
    ]
    by_type = {message["type"]: message for message in documented}
    job_id, created = stream.create(svc, {"type": "count", "owner": "User#1"})
    assert set(change_of(created).message) == set(by_type["task_update"])
    removed = change_of(stream.record("REMOVE", stream.item(job_id), None, ttl=True))
    assert set(removed.message) == set(by_type["task_removed"])
