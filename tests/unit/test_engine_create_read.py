"""Create, read, list and the read-only listings of the engine."""

from __future__ import annotations

from datetime import timedelta

import pytest

from jobcore.clock import to_iso
from jobcore.errors import DependencyFailed, InvalidRequest, NotFinished, NotFound, PayloadTooLarge
from jobcore.model import JobState, Principal, Role
from jobcore.schema import job_schema
from tests.conftest import TABLE_NAME


def table_items(dynamodb) -> list[dict]:
    return dynamodb.scan(TableName=TABLE_NAME)["Items"]


def test_create_defaults(service, svc, clock):
    job = service.create(svc, {"type": "email"}).job
    assert job.state is JobState.PENDING
    assert (job.attempts, job.version, job.max_retries) == (0, 1, 5)
    assert job.available_at == job.created == job.modified == to_iso(clock.now())
    assert job.processor == svc.sub
    assert not job.complete and not job.cancel_requested
    assert job.speeds == [] and job.depends_on == []


def test_create_with_every_field(service, svc, clock):
    body = {
        "type": "render",
        "ref_id": "r-1",
        "owner": "User#alice",
        "title": "Render",
        "params": {"frames": [1, 2.5, None], "deep": {"a": {"b": "c"}}},
        "ttl_ms": 60_000,
        "delay_ms": 5_000,
        "max_retries": 2,
        "state": "idle",
        "initial_status": "queued",
    }
    job = service.create(svc, body).job
    now = clock.now()
    assert job.params == body["params"]
    assert job.execute_until == to_iso(now + timedelta(seconds=60))
    assert job.available_at == to_iso(now + timedelta(seconds=5))
    assert (job.state, job.status, job.title, job.max_retries, job.owner, job.ref_id) == (
        JobState.IDLE,
        "queued",
        "Render",
        2,
        "User#alice",
        "r-1",
    )
    assert service.get(svc, job.id).to_wire() == job.to_wire()


def test_create_available_at_and_null_max_retries(service, svc, clock):
    job = service.create(svc, {"type": "t", "available_at": "2030-01-01T00:00:00+02:00", "max_retries": None}).job
    assert job.available_at == "2029-12-31T22:00:00.000Z"
    assert job.max_retries is None


def test_wire_view_has_exactly_the_contract_fields(service, svc):
    job = service.create(svc, {"type": "t"}).job
    schema = job_schema()
    assert set(job.to_wire()) == set(schema["required"])
    assert "lease_token" not in job.to_wire()
    assert set(job.to_wire(with_lease_token=True)) == set(schema["required"]) | {"lease_token"}
    assert job.to_wire()["state"] in schema["properties"]["state"]["enum"]


def test_every_bad_field_is_named_at_once(service, svc, dynamodb):
    with pytest.raises(InvalidRequest) as caught:
        service.create(svc, {"ttl_ms": -1, "max_retries": 0, "state": "running", "colour": "red", "delay_ms": "x"})
    fields = caught.value.details["fields"]
    assert set(fields) == {"type", "ttl_ms", "max_retries", "state", "colour", "delay_ms"}
    assert fields["colour"] == "unknown field"
    assert table_items(dynamodb) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "a#b"}, "type"),
        ({"type": "a/b"}, "type"),
        ({"type": ""}, "type"),
        ({"type": "t", "delay_ms": 1, "available_at": "2030-01-01T00:00:00Z"}, "available_at"),
        ({"type": "t", "unique": True}, "ref_id"),
        ({"type": "t", "available_at": "yesterday"}, "available_at"),
        ({"type": "t", "available_at": "2030-01-01T00:00:00"}, "available_at"),
        ({"type": "t", "depends_on": ["nope"]}, "depends_on"),
        ({"type": "t", "title": "x" * 513}, "title"),
    ],
)
def test_bad_create_fields(service, svc, body, field):
    with pytest.raises(InvalidRequest) as caught:
        service.create(svc, body)
    assert field in caught.value.details["fields"]


def test_a_body_that_is_not_an_object_is_refused(service, svc):
    with pytest.raises(InvalidRequest):
        service.create(svc, ["type", "t"])  # type: ignore[arg-type]


def test_params_over_the_limit_are_413_and_nothing_is_written(service, svc, settings, dynamodb):
    big = "x" * settings.limits.params_bytes
    with pytest.raises(PayloadTooLarge) as caught:
        service.create(svc, {"type": "t", "params": big})
    assert caught.value.status == 413 and caught.value.details["limit_bytes"] == settings.limits.params_bytes
    assert table_items(dynamodb) == []


def test_depends_on_must_exist(service, svc):
    first = service.create(svc, {"type": "t"}).job
    job = service.create(svc, {"type": "t", "depends_on": [first.id, first.id]}).job
    assert job.depends_on == [first.id]
    missing = "01JDA3Q0Z8M6W4K2T9R7P5N3B1"
    with pytest.raises(DependencyFailed) as caught:
        service.create(svc, {"type": "t", "depends_on": [first.id, missing]})
    assert caught.value.details["failures"] == [{"id": missing, "reason": "not_found"}]


def test_unique_create_returns_the_unfinished_job(service, svc, clock):
    first = service.create(svc, {"type": "t", "ref_id": "r", "unique": True})
    again = service.create(svc, {"type": "t", "ref_id": "r", "unique": True, "params": {"other": 1}})
    assert first.created and not again.created and again.job.id == first.job.id
    other_type = service.create(svc, {"type": "u", "ref_id": "r", "unique": True})
    assert other_type.created
    plain = service.create(svc, {"type": "t", "ref_id": "r"})
    assert plain.created  # only unique creates look for a twin
    clock.advance(1)
    service.complete(svc, first.job.id, {"result": 1})
    after = service.create(svc, {"type": "t", "ref_id": "r", "unique": True})
    assert after.created and after.job.id != first.job.id


def test_a_stale_guard_does_not_block(service, svc, dynamodb):
    first = service.create(svc, {"type": "t", "ref_id": "r", "unique": True}).job
    # The job vanishes without releasing its guard (a crash between the two writes).
    dynamodb.delete_item(TableName=TABLE_NAME, Key={"PK": {"S": f"JOB#{first.id}"}, "SK": {"S": "JOB"}})
    again = service.create(svc, {"type": "t", "ref_id": "r", "unique": True})
    assert again.created and again.job.id != first.id


def test_deleting_a_unique_job_releases_its_guard(service, svc):
    first = service.create(svc, {"type": "t", "ref_id": "r", "unique": True}).job
    service.delete(svc, first.id)
    assert service.create(svc, {"type": "t", "ref_id": "r", "unique": True}).created


def test_idempotency_key(service, svc, dynamodb):
    body = {"type": "t", "params": {"n": 1}}
    first = service.create(svc, body, idempotency_key="k1")
    again = service.create(svc, dict(body), idempotency_key="k1")
    assert first.created and again.job.id == first.job.id
    assert len(service.list_jobs(svc, {}).data) == 1
    with pytest.raises(InvalidRequest) as caught:
        service.create(svc, {"type": "t", "params": {"n": 2}}, idempotency_key="k1")
    assert "Idempotency-Key" in caught.value.details["fields"]
    other = Principal("svc-b", Role.SERVICE)
    assert service.create(other, body, idempotency_key="k1").job.id != first.job.id


def test_get_hides_missing_foreign_and_expired_jobs(service, svc, alice, bob, admin, clock, settings):
    job = service.create(svc, {"type": "t", "owner": alice.sub}).job
    assert service.get(alice, job.id).id == job.id
    assert service.get(admin, job.id).id == job.id
    for principal, job_id in ((bob, job.id), (svc, "01JDA3Q0Z8M6W4K2T9R7P5N3B1"), (svc, "not-an-id")):
        with pytest.raises(NotFound):
            service.get(principal, job_id)
    clock.advance(1)
    service.complete(svc, job.id, {})
    clock.advance(settings.retention_ms + 1000)
    with pytest.raises(NotFound):
        service.get(svc, job.id)


def test_result(service, svc, alice, bob, clock):
    job = service.create(svc, {"type": "t", "owner": alice.sub}).job
    with pytest.raises(NotFinished):
        service.result(alice, job.id)
    clock.advance(1)
    service.complete(svc, job.id, {"result": {"answer": 42}})
    assert service.result(alice, job.id) == {"answer": 42}
    with pytest.raises(NotFound):
        service.result(bob, job.id)


def make_jobs(service, svc, clock, specs):
    jobs = []
    for spec in specs:
        clock.advance(10)
        jobs.append(service.create(svc, spec).job)
    return jobs


def ids(page):
    return [job.id for job in page.data]


def test_list_newest_first_with_each_filter(service, svc, clock):
    a1, a2, b1, b2 = make_jobs(
        service,
        svc,
        clock,
        [
            {"type": "a", "ref_id": "x", "owner": "User#1"},
            {"type": "a", "ref_id": "y", "owner": "User#2", "state": "idle"},
            {"type": "b", "ref_id": "x", "owner": "User#1"},
            {"type": "b", "ref_id": "y"},
        ],
    )
    assert ids(service.list_jobs(svc, {})) == [b2.id, b1.id, a2.id, a1.id]
    assert ids(service.list_jobs(svc, {"type": "a"})) == [a2.id, a1.id]
    assert ids(service.list_jobs(svc, {"type": "a", "ref_id": "x"})) == [a1.id]
    assert ids(service.list_jobs(svc, {"ref_id": "x"})) == [b1.id, a1.id]
    assert ids(service.list_jobs(svc, {"owner": "User#1"})) == [b1.id, a1.id]
    assert ids(service.list_jobs(svc, {"owner": "User#1", "type": "b"})) == [b1.id]
    assert ids(service.list_jobs(svc, {"state": "idle"})) == [a2.id]
    assert ids(service.list_jobs(svc, {"created_from": a2.created, "created_to": b1.created})) == [b1.id, a2.id]
    assert ids(service.list_jobs(svc, {"created_from": b2.created})) == [b2.id]
    assert ids(service.list_jobs(svc, {"created_to": a1.created})) == [a1.id]


def test_users_see_only_own_jobs_whatever_the_filter(service, svc, alice, clock):
    mine, _ = make_jobs(service, svc, clock, [{"type": "a", "owner": alice.sub}, {"type": "a", "owner": "User#bob"}])
    assert ids(service.list_jobs(alice, {})) == [mine.id]
    assert ids(service.list_jobs(alice, {"owner": "User#bob"})) == []
    assert ids(service.list_jobs(alice, {"type": "a"})) == [mine.id]


@pytest.mark.parametrize(
    "query", [{"limit": "0"}, {"limit": "101"}, {"limit": "ten"}, {"state": "sleeping"}, {"cursor": "garbage"}, {"x": "1"}]
)
def test_bad_list_queries(service, svc, query):
    with pytest.raises(InvalidRequest):
        service.list_jobs(svc, query)


@pytest.mark.parametrize(("total", "limit"), [(7, 3), (9, 3), (3, 20), (0, 5)])
def test_paging_walks_every_job_once(service, svc, clock, total, limit):
    created = make_jobs(service, svc, clock, [{"type": "p"}] * total)
    seen, cursor, pages = [], None, 0
    while True:
        query = {"type": "p", "limit": str(limit), **({"cursor": cursor} if cursor else {})}
        page = service.list_jobs(svc, query)
        seen += ids(page)
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [j.id for j in reversed(created)]
    assert pages == max(1, -(-total // limit))
    assert len(service.list_jobs(svc, {"limit": "100"}).data) == total


@pytest.mark.parametrize("query", [{"type": "few"}, {}], ids=["one queue", "every queue"])
def test_a_filter_that_keeps_few_jobs_answers_short_pages_and_misses_none(service, svc, clock, monkeypatch, query):
    """The listing indexes hold keys only: the state filter applies to the jobs read. A request
    looks at LOOKED_MAX keys at most, then answers what it kept with a cursor."""
    from jobcore.engine import listing

    monkeypatch.setattr(listing, "LOOKED_MAX", 5)
    old = make_jobs(service, svc, clock, [{"type": "few"}] * 2)
    for job in old:
        service.complete(svc, job.id, {})
    make_jobs(service, svc, clock, [{"type": "few"}] * 12)  # newer, pending: filtered out
    pages, seen, cursor = [], [], None
    while True:
        page = service.list_jobs(svc, {**query, "state": "finished", "limit": "3", **({"cursor": cursor} if cursor else {})})
        pages.append(len(page.data))
        seen += ids(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [j.id for j in reversed(old)]
    assert pages[0] == 0 and len(pages) > 2  # short pages with a cursor, not one long request
    assert sum(pages) == 2


def test_a_cursor_of_another_listing_is_refused(service, svc, clock):
    make_jobs(service, svc, clock, [{"type": "p", "owner": "User#1"}] * 3)
    cursor = service.list_jobs(svc, {"type": "p", "limit": "1"}).next_cursor
    assert cursor
    with pytest.raises(InvalidRequest):
        service.list_jobs(svc, {"owner": "User#1", "cursor": cursor})


def test_list_default_limit_is_20(service, svc, clock):
    make_jobs(service, svc, clock, [{"type": "p"}] * 21)
    page = service.list_jobs(svc, {})
    assert len(page.data) == 20 and page.next_cursor


def test_expired_jobs_are_not_listed(service, svc, clock, settings):
    job = service.create(svc, {"type": "p"}).job
    clock.advance(1)
    service.complete(svc, job.id, {})
    assert ids(service.list_jobs(svc, {})) == [job.id]
    clock.advance(settings.retention_ms + 1000)
    assert ids(service.list_jobs(svc, {})) == []


def test_messages_oldest_first_paged(service, svc, alice, bob, clock):
    job = service.create(svc, {"type": "t", "owner": alice.sub, "state": "idle"}).job
    for n in range(5):
        clock.advance(1)
        service.post_status(svc, job.id, {"message_to_append": f"m{n}"})
    first = service.messages(alice, job.id, {"limit": "3"})
    assert [m.message for m in first.data] == ["m0", "m1", "m2"] and first.next_cursor
    rest = service.messages(alice, job.id, {"limit": "3", "cursor": first.next_cursor})
    assert [m.message for m in rest.data] == ["m3", "m4"] and rest.next_cursor is None
    assert [m.at for m in first.data + rest.data] == sorted(m.at for m in first.data + rest.data)
    with pytest.raises(NotFound):
        service.messages(bob, job.id, {})


def test_queues_by_name_in_pages(service, svc):
    for name in ("b", "a", "c", "a"):
        service.create(svc, {"type": name})
    page = service.queues({"limit": "2"})
    assert [q.type for q in page.data] == ["a", "b"] and page.next_cursor
    assert [q.type for q in service.queues({"cursor": page.next_cursor}).data] == ["c"]


def test_queue_jobs_shows_claimable_oldest_first(service, svc, clock):
    old, new, _delayed, _idle, running = make_jobs(
        service,
        svc,
        clock,
        [{"type": "q"}, {"type": "q"}, {"type": "q", "delay_ms": 60_000}, {"type": "q", "state": "idle"}, {"type": "q"}],
    )
    clock.advance(1)
    leased = service.start(svc, running.id, {"timeout_ms": 10_000})
    assert [j.id for j in service.queue_jobs("q", {}).data] == [old.id, new.id]
    with_leased = [j.id for j in service.queue_jobs("q", {"include_leased": "true"}).data]
    assert with_leased == [old.id, new.id, leased.id]
    page = service.queue_jobs("q", {"limit": "1"})
    assert [j.id for j in page.data] == [old.id]
    assert [j.id for j in service.queue_jobs("q", {"limit": "1", "cursor": page.next_cursor}).data] == [new.id]


def test_a_listing_with_no_owner_or_type_pages_through_every_partition_newest_first(service, svc, clock):
    from jobcore import keys

    made = []
    for n in range(25):
        made.append(service.create(svc, {"type": f"t{n % 3}", "ref_id": "same" if n % 5 == 0 else None}).job.id)
        clock.advance(1 if n % 4 else 0)  # some share a millisecond
    assert len({keys.all_partition(job_id) for job_id in made}) > 1
    seen: list[str] = []
    cursor = None
    merged_cursor = service.list_jobs(svc, {"limit": "7"}).next_cursor
    while True:
        page = service.list_jobs(svc, {"limit": "7", **({"cursor": cursor} if cursor else {})})
        seen += [j.id for j in page.data]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted(made, reverse=True)
    only_ref = service.list_jobs(svc, {"ref_id": "same", "limit": "100"}).data
    assert [j.id for j in only_ref] == sorted(made[::5], reverse=True)
    with pytest.raises(InvalidRequest):  # a cursor of the merged listing is no other listing's
        service.list_jobs(svc, {"type": "t0", "cursor": merged_cursor})


def test_a_reversed_time_range_is_an_empty_page(service, svc):
    service.create(svc, {"type": "t"})
    page = service.list_jobs(svc, {"created_from": "2030-01-01T00:00:00Z", "created_to": "2020-01-01T00:00:00Z"})
    assert (page.data, page.next_cursor) == ([], None)
