"""Batches, patch, delete, delete all and clean."""

from __future__ import annotations

import pytest

from jobcore.errors import AlreadyFinished, BatchConflict, InvalidRequest, LeaseHeld, NotFound, VersionMismatch
from jobcore.model import JobState, Principal, Role
from tests.conftest import TABLE_NAME

MISSING = "01JDA3Q0Z8M6W4K2T9R7P5N3B1"


def snapshot(dynamodb) -> list[dict]:
    items = dynamodb.scan(TableName=TABLE_NAME)["Items"]
    return sorted(items, key=lambda i: (i["PK"]["S"], i["SK"]["S"]))


def test_batch_applies_everything_at_once(service, svc, clock):
    to_update = service.create(svc, {"type": "b", "state": "idle"}).job
    to_delete = service.create(svc, {"type": "b", "state": "idle"}).job
    needed = service.create(svc, {"type": "b"}).job
    clock.advance(1)
    service.post_status(svc, to_delete.id, {"message_to_append": "bye"})
    clock.advance(1)
    result = service.batch(
        svc,
        {
            "create": [{"type": "b", "title": "new"}, {"type": "c"}],
            "update": [{"id": to_update.id, "version": 1, "title": "renamed", "state": "pending"}],
            "delete": [{"id": to_delete.id}],
            "depends": [{"id": needed.id, "version": 1}],
        },
    )
    assert [j.title for j in result.created] == ["new", None]
    assert result.deleted == [to_delete.id]
    updated = service.get(svc, to_update.id)
    assert (updated.title, updated.state, updated.version) == ("renamed", JobState.PENDING, 2)
    assert updated.to_wire() == result.updated[0].to_wire()
    with pytest.raises(NotFound):
        service.get(svc, to_delete.id)
    with pytest.raises(NotFound):
        service.messages(svc, to_delete.id, {})
    assert service.get(svc, needed.id).version == 1  # a dependency is only checked
    assert set(service.queue_names({})) >= {"b", "c"}
    # The update made it claimable.
    claimed = {service.claim(svc, "b", {}).id, service.claim(svc, "b", {}).id, service.claim(svc, "b", {}).id}
    assert to_update.id in claimed


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"create": [{"type": "t"}] * 101}, "body"),
        ({"create": [{"type": "t"}, {"title": "no type"}]}, "create[1].type"),
        ({"update": [{"id": MISSING}]}, "update[0].version"),
        ({"delete": [{"id": MISSING}], "depends": [{"id": MISSING}]}, "body"),
        ({"delete": "x"}, "delete"),
        ({"update": [{"id": MISSING, "version": 1, "colour": "red"}]}, "update[0].colour"),
    ],
)
def test_bad_batches_are_400(service, svc, dynamodb, body, field):
    before = snapshot(dynamodb)
    with pytest.raises(InvalidRequest) as caught:
        service.batch(svc, body)
    assert field in caught.value.details["fields"]
    assert snapshot(dynamodb) == before


def test_batch_names_every_failed_constraint_and_writes_nothing(service, svc, clock, dynamodb):
    stale = service.create(svc, {"type": "b", "state": "idle"}).job
    running = service.create(svc, {"type": "b"}).job
    finished = service.create(svc, {"type": "b", "state": "idle"}).job
    clock.advance(1)
    service.patch(svc, stale.id, {"title": "v2"})
    service.start(svc, running.id, {"timeout_ms": 60_000})
    service.complete(svc, finished.id, {})
    unique = service.create(svc, {"type": "b", "ref_id": "u", "unique": True}).job
    clock.advance(1)
    before = snapshot(dynamodb)
    with pytest.raises(BatchConflict) as caught:
        service.batch(
            svc,
            {
                "create": [{"type": "b", "title": "would be new"}, {"type": "b", "ref_id": "u", "unique": True}],
                "update": [
                    {"id": MISSING, "version": 1, "title": "x"},
                    {"id": running.id, "version": 2, "title": "x"},
                    {"id": finished.id, "version": 2, "title": "x"},
                ],
                "delete": [{"id": stale.id, "version": 1}],
                "depends": [{"id": "01JDA3Q0Z8M6W4K2T9R7P5N3B2"}],
            },
        )
    failures = caught.value.details["failures"]
    assert caught.value.status == 409 and caught.value.code == "batch_conflict"
    twin = next(f for f in failures if f["op"] == "create")
    assert (twin["reason"], twin["existing_id"]) == ("duplicate", unique.id)
    assert {(f["op"], f["id"], f["reason"]) for f in failures if f["op"] != "create"} == {
        ("update", MISSING, "not_found"),
        ("update", running.id, "lease_held"),
        ("update", finished.id, "already_finished"),
        ("delete", stale.id, "version_mismatch"),
        ("depends", "01JDA3Q0Z8M6W4K2T9R7P5N3B2", "not_found"),
    }
    assert snapshot(dynamodb) == before


def test_batch_duplicate_unique_create_is_a_conflict(service, svc, dynamodb):
    service.create(svc, {"type": "b", "ref_id": "u", "unique": True})
    before = snapshot(dynamodb)
    with pytest.raises(BatchConflict) as caught:
        service.batch(svc, {"create": [{"type": "b"}, {"type": "b", "ref_id": "u", "unique": True}]})
    assert [f["reason"] for f in caught.value.details["failures"]] == ["duplicate"]
    assert snapshot(dynamodb) == before


def test_a_duplicate_created_between_check_and_transaction_is_caught(service, svc, dynamodb, monkeypatch):
    service.create(svc, {"type": "b", "ref_id": "u", "unique": True})
    monkeypatch.setattr(service.store, "batch_get", lambda keys: [])  # the check sees no guard
    before = snapshot(dynamodb)
    with pytest.raises(BatchConflict) as caught:
        service.batch(svc, {"create": [{"type": "b", "ref_id": "u", "unique": True}]})
    assert [f["reason"] for f in caught.value.details["failures"]] == ["duplicate"]
    assert snapshot(dynamodb) == before


def test_distinct_unique_creates_in_one_batch(service, svc):
    body = {"create": [{"type": "b", "ref_id": "u", "unique": True}, {"type": "c", "ref_id": "u", "unique": True}]}
    assert len(service.batch(svc, body).created) == 2


def test_the_same_item_twice_in_a_batch_is_400(service, svc):
    job = service.create(svc, {"type": "b"}).job
    for body in (
        {"create": [{"type": "b", "ref_id": "u", "unique": True}, {"type": "b", "ref_id": "u", "unique": True}]},
        {"create": [{"type": "b", "depends_on": [job.id]}], "depends": [{"id": job.id}]},
    ):
        with pytest.raises(InvalidRequest):
            service.batch(svc, body)


def test_a_change_between_check_and_transaction_is_caught(service, svc, clock, dynamodb, monkeypatch):
    job = service.create(svc, {"type": "b", "state": "idle"}).job
    stale_read = service.store.batch_get
    seen = stale_read([{"PK": f"JOB#{job.id}", "SK": "JOB"}])
    clock.advance(1)
    service.patch(svc, job.id, {"title": "changed meanwhile"})
    monkeypatch.setattr(service.store, "batch_get", lambda keys: seen)
    before = snapshot(dynamodb)
    with pytest.raises(BatchConflict) as caught:
        service.batch(svc, {"create": [{"type": "b"}], "update": [{"id": job.id, "version": 1, "title": "x"}]})
    assert caught.value.details["failures"] == [{"op": "update", "id": job.id, "reason": "version_mismatch"}]
    assert snapshot(dynamodb) == before


def test_patch(service, svc, clock):
    job = service.create(svc, {"type": "p", "state": "idle", "owner": "User#1"}).job
    assert service.claim(svc, "p", {}) is None
    clock.advance(1)
    patched = service.patch(svc, job.id, {"title": "t", "status": "s", "params": {"a": 1}, "state": "pending"}, if_match=1)
    assert (patched.title, patched.status, patched.params, patched.state, patched.version) == (
        "t",
        "s",
        {"a": 1},
        JobState.PENDING,
        2,
    )
    clock.advance(1)
    back = service.patch(svc, job.id, {"state": "idle", "owner": "User#2", "title": None})
    assert back.state is JobState.IDLE and back.title is None
    assert service.claim(svc, "p", {}) is None
    assert service.list_jobs(Principal("User#1", Role.USER), {}).data == []
    assert [j.id for j in service.list_jobs(Principal("User#2", Role.USER), {}).data] == [job.id]
    with pytest.raises(VersionMismatch) as caught:
        service.patch(svc, job.id, {"title": "late"}, if_match=1)
    assert caught.value.details["version"] == 3
    clock.advance(1)
    service.patch(svc, job.id, {"state": "pending"})
    clock.advance(1)
    assert service.claim(svc, "p", {}).id == job.id


def test_patch_refusals(service, svc, clock):
    running = service.create(svc, {"type": "p"}).job
    done = service.create(svc, {"type": "p", "state": "idle"}).job
    clock.advance(1)
    service.start(svc, running.id, {})
    service.complete(svc, done.id, {})
    with pytest.raises(LeaseHeld):
        service.patch(svc, running.id, {"title": "x"})
    with pytest.raises(AlreadyFinished):
        service.patch(svc, done.id, {"title": "x"})
    with pytest.raises(NotFound):
        service.patch(svc, MISSING, {"title": "x"})
    for body in ({"state": "running"}, {"colour": "red"}, {"title": 5}):
        with pytest.raises(InvalidRequest):
            service.patch(svc, done.id, body)


def test_delete_removes_the_job_its_guard_and_its_messages(service, svc, clock, dynamodb):
    job = service.create(svc, {"type": "d", "ref_id": "r", "unique": True, "state": "idle"}).job
    clock.advance(1)
    service.post_status(svc, job.id, {"message_to_append": "hello"})
    deleted = service.delete(svc, job.id)
    assert deleted.id == job.id and deleted.title is None
    remaining = dynamodb.query(
        TableName=TABLE_NAME, KeyConditionExpression="PK = :pk", ExpressionAttributeValues={":pk": {"S": f"JOB#{job.id}"}}
    )
    assert remaining["Items"] == []
    assert service.create(svc, {"type": "d", "ref_id": "r", "unique": True}).created
    with pytest.raises(NotFound):
        service.delete(svc, job.id)


def test_delete_all_pages_until_done(service, svc, dynamodb):
    for n in range(30):
        service.create(svc, {"type": "x", "ref_id": f"r{n}", "unique": n % 2 == 0})
    first = service.delete_all(max_items=20)
    assert first.more and 0 < first.deleted < 30
    total = first.deleted
    while True:
        step = service.delete_all(max_items=20)
        total += step.deleted
        if not step.more:
            break
    assert total == 30
    # Only the queue's own item stays: its settings, counts and the priority levels it used.
    assert [(i["PK"]["S"], i["SK"]["S"]) for i in snapshot(dynamodb)] == [("QUEUES", "x")]


def test_clean_deletes_what_has_expired_and_past_deadline_only(service, svc, clock, settings):
    old_done = service.create(svc, {"type": "c", "state": "idle", "ref_id": "u", "unique": True}).job
    clock.advance(1)
    service.complete(svc, old_done.id, {})
    clock.advance(settings.retention_ms)
    young_done = service.create(svc, {"type": "c", "state": "idle"}).job
    clock.advance(1)
    service.complete(svc, young_done.id, {})
    late_pending = service.create(svc, {"type": "c", "ttl_ms": 1000}).job
    late_running = service.create(svc, {"type": "c", "ttl_ms": 1000}).job
    fresh = service.create(svc, {"type": "c"}).job
    clock.advance(1)
    service.start(svc, late_running.id, {"timeout_ms": 60_000})
    clock.advance(5000)
    outcome = service.clean()
    assert (outcome.deleted, outcome.more) == (2, False)
    for gone in (old_done, late_pending):
        with pytest.raises(NotFound):
            service.get(svc, gone.id)
    for kept in (young_done, late_running, fresh):
        assert service.get(svc, kept.id).id == kept.id
