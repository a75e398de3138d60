"""The client's queue and recovery calls against a fake service on httpx.MockTransport: the
exact method, path, query and body each sends, how answers are parsed, which calls loop
while the service says `more`, and which are retried after a lost connection."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from jobs_client import (
    Conflict,
    Duplicate,
    FifoSharded,
    HistoryMinute,
    Job,
    JobsClient,
    NotRetryable,
    Queue,
    QueueCounts,
    Redrive,
    RetryPolicy,
    TransportError,
)

AT = "2026-03-01T12:00:00.000Z"
MOMENT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
JOB = {"id": "j1", "type": "t", "state": "pending", "version": 2, "processor": "svc", "priority": 3, "schedule": None}

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def queue_wire(type: str = "t", **fields: Any) -> dict[str, Any]:
    counts = {"idle": 1, "pending": 2, "running": 3, "finished": 4, "error": 5, "cancelled": 6}
    return {"type": type, "paused": False, "fifo": False, "counts": counts, "oldest_pending_at": AT, "modified": AT} | fields


def error(status: int, code: str, **details: Any) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": f"{code} happened", "details": details}})


class Fake:
    """A scripted service: answers per (method, path), in turn, the last one repeated; records
    every request."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Answer]] = {}
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path: str, *answers: Answer) -> Fake:
        self.routes[(method, path)] = list(answers)
        return self

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answers = self.routes.get((request.method, request.url.raw_path.decode().split("?")[0]))
        if not answers:
            return error(404, "not_found")
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer(request) if callable(answer) else answer

    def client(self, attempts: int = 4) -> JobsClient:
        return JobsClient(
            "http://jobs.test",
            "tok",
            transport=httpx.MockTransport(self.handle),
            retry=RetryPolicy(max_attempts=attempts),
            sleep=lambda _s: None,
        )

    def sent(self) -> list[tuple[str, str, dict[str, str], Any]]:
        """(method, raw path, query, JSON body or None) of each request."""
        return [
            (
                r.method,
                r.url.raw_path.decode().split("?")[0],
                dict(r.url.params),
                json.loads(r.content) if r.content else None,
            )
            for r in self.requests
        ]


def ok(body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body)


def lost() -> httpx.ConnectError:
    return httpx.ConnectError("connection refused")


# -- queues -----------------------------------------------------------------------------


def test_list_queues_sends_its_filters_and_answers_queue_objects():
    fake = Fake().on(
        "GET", "/v1/queues", ok({"data": [queue_wire("a", paused=True, oldest_pending_at=None)], "next_cursor": "c2"})
    )
    page = fake.client().list_queues(prefix="a", limit=5, cursor="c1")
    assert fake.sent() == [("GET", "/v1/queues", {"prefix": "a", "limit": "5", "cursor": "c1"}, None)]
    assert page.next_cursor == "c2"
    assert page.data == [
        Queue("a", paused=True, fifo=False, counts=QueueCounts(1, 2, 3, 4, 5, 6), oldest_pending_at=None, modified=MOMENT)
    ]
    assert page.data[0].counts.total == 21


def test_iter_queues_reads_every_page_with_the_prefix():
    fake = Fake().on(
        "GET",
        "/v1/queues",
        ok({"data": [queue_wire("a1"), queue_wire("a2")], "next_cursor": "c2"}),
        ok({"data": [queue_wire("a3")], "next_cursor": None}),
    )
    assert [q.type for q in fake.client().iter_queues(prefix="a")] == ["a1", "a2", "a3"]
    assert [query for _, _, query, _ in fake.sent()] == [
        {"prefix": "a", "limit": "100"},
        {"prefix": "a", "limit": "100", "cursor": "c2"},
    ]


def test_get_queue_parses_it_and_a_queue_never_used_is_none():
    fake = Fake().on("GET", "/v1/queues/t", ok(queue_wire(fifo=True)))
    found = fake.client().get_queue("t")
    assert found is not None and found.fifo and found.counts.error == 5
    assert found.oldest_pending_at == MOMENT
    assert found.lag(datetime(2026, 3, 1, 12, 2, 5, tzinfo=UTC)) == timedelta(seconds=125)
    assert found.lag(datetime(2026, 3, 1, 11, 59, tzinfo=UTC)) == timedelta(0)  # clocks a little apart
    assert fake.client().get_queue("never") is None


def test_a_queue_name_is_one_path_segment_whatever_it_holds():
    fake = Fake().on("GET", "/v1/queues/a%2Fb%23c%3Fd", ok(queue_wire("a/b#c?d")))
    found = fake.client().get_queue("a/b#c?d")
    assert found is not None and found.type == "a/b#c?d"


def test_pause_resume_and_set_queue_patch_only_what_they_set():
    fake = Fake().on("PATCH", "/v1/queues/t", ok(queue_wire(paused=True)))
    client = fake.client()
    assert client.pause_queue("t").paused
    client.resume_queue("t")
    client.set_queue("t", fifo=True)
    client.set_queue("t", paused=True, fifo=False)
    assert [(m, p, b) for m, p, _, b in fake.sent()] == [
        ("PATCH", "/v1/queues/t", {"paused": True}),
        ("PATCH", "/v1/queues/t", {"paused": False}),
        ("PATCH", "/v1/queues/t", {"fifo": True}),
        ("PATCH", "/v1/queues/t", {"paused": True, "fifo": False}),
    ]
    with pytest.raises(ValueError):
        client.set_queue("t")
    assert len(fake.requests) == 4


def test_a_queues_shards_are_read_and_an_older_service_sending_none_means_one():
    fake = Fake().on(
        "GET",
        "/v1/queues",
        ok({"data": [queue_wire("hot", shards=16), queue_wire("old"), queue_wire("null", shards=None)], "next_cursor": None}),
    )
    fake.on("GET", "/v1/queues/hot", ok(queue_wire("hot", shards=16)))
    client = fake.client()
    assert [q.shards for q in client.list_queues().data] == [16, 1, 1]
    found = client.get_queue("hot")
    assert found is not None and found.shards == 16
    assert Queue("t").shards == 1


def test_set_queue_sends_shards_and_answers_the_queue_the_service_sent():
    fake = Fake().on("PATCH", "/v1/queues/t", ok(queue_wire(shards=16)))
    client = fake.client()
    assert client.set_queue("t", shards=16).shards == 16
    client.set_queue("t", paused=False, shards=1)
    assert [(m, p, b) for m, p, _, b in fake.sent()] == [
        ("PATCH", "/v1/queues/t", {"shards": 16}),
        ("PATCH", "/v1/queues/t", {"paused": False, "shards": 1}),
    ]


@pytest.mark.parametrize("shards", [0, 65, -1, True, False, 2.0, "4"])
def test_set_queue_refuses_shards_outside_1_to_64_before_sending(shards: Any):
    fake = Fake().on("PATCH", "/v1/queues/t", ok(queue_wire()))
    with pytest.raises(ValueError, match="shards"):
        fake.client().set_queue("t", shards=shards)
    assert fake.requests == []


def test_set_queue_with_nothing_to_set_names_the_three_settings():
    fake = Fake()
    with pytest.raises(ValueError, match="paused, fifo, shards"):
        fake.client().set_queue("t")
    assert fake.requests == []


def test_a_fifo_queue_refusing_shards_is_the_services_conflict():
    fake = Fake().on("PATCH", "/v1/queues/t", error(409, "fifo_sharded"))
    with pytest.raises(FifoSharded) as refused:
        fake.client().set_queue("t", shards=4)
    assert isinstance(refused.value, Conflict)
    assert len(fake.requests) == 1  # a 409 is an answer, not retried


def test_queue_history_sends_the_window_and_parses_each_minute():
    minutes = [
        {"minute": "2026-03-01T12:00:00.000Z", "created": 3, "started": 2, "finished": 1, "failed": 0, "retried": 0},
        {"minute": "2026-03-01T12:01:00.000Z", "created": 0, "started": 0, "finished": 0, "failed": 1, "retried": 1},
    ]
    fake = Fake().on("GET", "/v1/queues/t/history", ok({"data": minutes}))
    client = fake.client()
    history = client.queue_history("t", start=MOMENT, end=datetime(2026, 3, 1, 13, 0))
    assert history == [
        HistoryMinute(MOMENT, created=3, started=2, finished=1),
        HistoryMinute(datetime(2026, 3, 1, 12, 1, tzinfo=UTC), failed=1, retried=1),
    ]
    client.queue_history("t")
    assert [q for _, _, q, _ in fake.sent()] == [{"from": "2026-03-01T12:00:00.000Z", "to": "2026-03-01T13:00:00.000Z"}, {}]


# -- retry, redrive, purge ----------------------------------------------------------------


def test_retry_job_posts_without_a_body_and_answers_the_job():
    fake = Fake().on("POST", "/v1/jobs/j1/retry", ok(JOB))
    job = fake.client().retry_job("j1")
    assert (job.id, job.priority) == ("j1", 3)
    assert fake.sent() == [("POST", "/v1/jobs/j1/retry", {}, None)]
    assert "Content-Type" not in fake.requests[0].headers


def test_retry_job_errors_are_typed_and_a_duplicate_names_the_existing_job():
    fake = Fake().on("POST", "/v1/jobs/j1/retry", error(409, "not_retryable"), error(409, "duplicate", existing_id="j0"))
    client = fake.client()
    with pytest.raises(NotRetryable):
        client.retry_job("j1")
    with pytest.raises(Duplicate) as caught:
        client.retry_job("j1")
    assert caught.value.existing_id == "j0"


def test_redrive_sends_only_what_is_given():
    fake = Fake().on("POST", "/v1/queues/t/redrive", ok({"retried": 4, "skipped": 1, "more": True}))
    client = fake.client()
    assert client.redrive("t", states=["error", "cancelled"], error_code="E_TIMEOUT", limit=50) == Redrive(4, 1, True)
    client.redrive("t")
    assert [b for _, _, _, b in fake.sent()] == [{"states": ["error", "cancelled"], "error_code": "E_TIMEOUT", "limit": 50}, {}]


def test_redrive_all_calls_while_there_is_more_and_reports_running_totals():
    fake = Fake().on(
        "POST",
        "/v1/queues/t/redrive",
        ok({"retried": 10, "skipped": 0, "more": True}),
        ok({"retried": 10, "skipped": 2, "more": True}),
        ok({"retried": 3, "skipped": 0, "more": False}),
    )
    seen: list[Redrive] = []
    totals = fake.client().redrive_all("t", states=["error"], limit=10, on_progress=seen.append)
    assert totals == Redrive(23, 2, False)
    assert seen == [Redrive(10, 0, True), Redrive(20, 2, True), Redrive(23, 2, False)]
    assert all(b == {"states": ["error"], "limit": 10} for _, _, _, b in fake.sent())


def test_redrive_all_stops_when_a_call_retried_nothing():
    # Every call starts at the oldest end again: the same skipped jobs would be seen forever.
    fake = Fake().on("POST", "/v1/queues/t/redrive", ok({"retried": 0, "skipped": 10, "more": True}))
    assert fake.client().redrive_all("t", limit=10) == Redrive(0, 10, True)
    assert len(fake.requests) == 1


def test_purge_queue_deletes_while_there_is_more():
    fake = Fake().on(
        "DELETE",
        "/v1/queues/t/jobs",
        ok({"deleted": 100, "more": True}),
        ok({"deleted": 7, "more": False}),
    )
    progress: list[int] = []
    assert fake.client().purge_queue("t", state="finished", on_progress=progress.append) == 107
    assert progress == [100, 107]
    assert fake.sent() == [("DELETE", "/v1/queues/t/jobs", {"state": "finished"}, None)] * 2


def test_purge_queue_page_is_one_call_and_sends_no_state_unless_given():
    fake = Fake().on("DELETE", "/v1/queues/t/jobs", ok({"deleted": 3, "more": True}))
    assert fake.client().purge_queue_page("t") == (3, True)
    assert fake.sent() == [("DELETE", "/v1/queues/t/jobs", {}, None)]


def test_purge_queue_stops_when_a_call_deleted_nothing():
    fake = Fake().on("DELETE", "/v1/queues/t/jobs", ok({"deleted": 0, "more": True}))
    assert fake.client().purge_queue("t") == 0
    assert len(fake.requests) == 1


# -- what is retried after a lost connection ----------------------------------------------

IDEMPOTENT: dict[str, tuple[str, str, Any, Callable[[JobsClient], Any]]] = {
    "get queue": ("GET", "/v1/queues/t", queue_wire(), lambda c: c.get_queue("t")),
    "pause": ("PATCH", "/v1/queues/t", queue_wire(), lambda c: c.pause_queue("t")),
    "history": ("GET", "/v1/queues/t/history", {"data": []}, lambda c: c.queue_history("t")),
    "purge": ("DELETE", "/v1/queues/t/jobs", {"deleted": 0, "more": False}, lambda c: c.purge_queue("t")),
    "get jobs": ("GET", "/v1/jobs", {"data": [], "next_cursor": None}, lambda c: c.get_jobs(["a"])),
}
NOT_IDEMPOTENT: dict[str, tuple[str, str, Any, Callable[[JobsClient], Any]]] = {
    "retry": ("POST", "/v1/jobs/j1/retry", JOB, lambda c: c.retry_job("j1")),
    "redrive": ("POST", "/v1/queues/t/redrive", {"retried": 1, "skipped": 0, "more": False}, lambda c: c.redrive("t")),
}


@pytest.mark.parametrize("name", sorted(IDEMPOTENT))
def test_idempotent_queue_calls_are_retried_after_a_lost_connection_or_a_gateway_error(name):
    method, path, body, call = IDEMPOTENT[name]
    fake = Fake().on(method, path, lost(), httpx.Response(502, text="Bad Gateway"), ok(body))
    call(fake.client())
    assert len(fake.requests) == 3


@pytest.mark.parametrize("name", sorted(NOT_IDEMPOTENT))
def test_retry_and_redrive_are_not_retried_after_a_lost_connection(name):
    method, path, body, call = NOT_IDEMPOTENT[name]
    fake = Fake().on(method, path, lost(), ok(body))
    with pytest.raises(TransportError):
        call(fake.client())
    assert len(fake.requests) == 1


@pytest.mark.parametrize("name", sorted(NOT_IDEMPOTENT))
def test_retry_and_redrive_are_retried_when_throttled(name):
    method, path, body, call = NOT_IDEMPOTENT[name]
    fake = Fake().on(method, path, error(429, "throttled"), ok(body))
    call(fake.client())
    assert len(fake.requests) == 2


# -- jobs: by ids, priority, type ---------------------------------------------------------


def test_get_jobs_asks_in_chunks_of_a_hundred_and_keeps_the_order():
    ids = [f"j{n:03d}" for n in range(150)]

    def answer(request: httpx.Request) -> httpx.Response:
        asked = request.url.params["ids"].split(",")
        found = [JOB | {"id": i} for i in asked if i != "j042"]  # a missing job is left out
        return ok({"data": found, "next_cursor": None})

    fake = Fake().on("GET", "/v1/jobs", answer)
    jobs = fake.client().get_jobs(ids)
    assert [j.id for j in jobs] == [i for i in ids if i != "j042"]
    assert [q for _, _, q, _ in fake.sent()] == [{"ids": ",".join(ids[:100])}, {"ids": ",".join(ids[100:])}]


def test_get_jobs_of_no_ids_asks_nothing_and_refuses_a_bare_string():
    fake = Fake()
    client = fake.client()
    assert client.get_jobs([]) == []
    with pytest.raises(TypeError):
        client.get_jobs("j1")
    with pytest.raises(ValueError):
        client.get_jobs(["a,b"])
    assert fake.requests == []


def test_create_takes_a_priority_and_patch_moves_a_job_or_sets_its_priority():
    fake = Fake().on("POST", "/v1/jobs", ok(JOB, 201)).on("PATCH", "/v1/jobs/j1", ok(JOB))
    client = fake.client()
    client.create_job("t", priority=1)
    client.create_unique_job("t", "r1", priority=4)
    client.create_job("t")
    client.patch_job("j1", type="other", priority=1, if_match=2)
    assert [b for _, _, _, b in fake.sent()] == [
        {"type": "t", "priority": 1},
        {"type": "t", "ref_id": "r1", "priority": 4, "unique": True},
        {"type": "t"},
        {"type": "other", "priority": 1},
    ]
    assert fake.requests[-1].headers["If-Match"] == "2"


def test_a_job_without_priority_or_schedule_gets_the_defaults():
    bare = Job.from_wire({"id": "j", "type": "t", "state": "idle", "version": 1})
    assert (bare.priority, bare.schedule) == (2, None)
    full = Job.from_wire({"id": "j", "type": "t", "state": "idle", "version": 1, "priority": 4, "schedule": "*/5 * * * *"})
    assert (full.priority, full.schedule) == (4, "*/5 * * * *")


# -- claiming more ------------------------------------------------------------------------
def test_claim_many_of_one_queue_or_the_first_of_several():
    leased = {**JOB, "state": "running", "lease_token": "1-a"}
    fake = Fake().on("POST", "/v1/queues/a/claim", ok({"data": [leased, {**leased, "id": "j2", "lease_token": "1-b"}]}))
    fake.on("POST", "/v1/claim", httpx.Response(204))
    client = fake.client()
    assert [j.lease_token for j in client.claim_many("a", max_jobs=3, timeout_ms=1000)] == ["1-a", "1-b"]
    assert client.claim_many(["b", "a"], max_jobs=2, timeout_ms=1000, wait_ms=500) == []
    assert fake.sent() == [
        ("POST", "/v1/queues/a/claim", {}, {"timeout_ms": 1000, "max_jobs": 3}),
        ("POST", "/v1/claim", {}, {"timeout_ms": 1000, "wait_ms": 500, "max_jobs": 2, "types": ["b", "a"]}),
    ]


def test_a_worker_of_several_queues_rotates_their_order_at_each_claim():
    from jobs_client import Worker

    fake = Fake().on("POST", "/v1/claim", httpx.Response(204))
    worker = Worker(fake.client(), ["a", "b", "c"], lambda ctx: None, wait_ms=0)
    for _ in range(4):
        assert worker._claim() is None
    orders = [body["types"] for _, _, _, body in fake.sent()]
    assert orders == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]


@pytest.mark.parametrize("queues", [[], ["a", "a"], [f"q{n}" for n in range(11)]])
def test_a_worker_refuses_a_list_of_queues_it_cannot_serve(queues):
    from jobs_client import Worker

    with pytest.raises(ValueError):
        Worker(Fake().client(), queues, lambda ctx: None)
