"""Work notices: what an idle worker waiting on the WebSocket is woken by. A job entering its
queue's claimable set sends `work_available` to the queue's `work` subscribers, once per
queue per stream batch; nothing else does."""

from __future__ import annotations

from typing import Any

import pytest

from jobcore.errors import Forbidden
from jobcore.live.messages import work_notice_of
from jobcore.model import Principal, Role
from jobcore.stream import fan_out_handler
from tests.unit.test_live import Stream, connect


@pytest.fixture
def stream(service: Any) -> Stream:
    return Stream(service)


def notices(sockets: Any, connection: str) -> list[dict[str, Any]]:
    return [m for m in sockets.received.get(connection, []) if m["type"] == "work_available"]


def test_each_way_into_the_claimable_set_is_a_notice_and_nothing_else_is(stream, svc, clock):
    service = stream.service
    job_id, created = stream.create(svc, {"type": "mail"})
    assert work_notice_of(created) is not None
    notice = work_notice_of(created)
    assert notice is not None and (notice.queue, notice.at) == ("mail", service.get(svc, job_id).available_at)
    _, idle = stream.create(svc, {"type": "mail", "state": "idle"})
    assert work_notice_of(idle) is None  # not claimable until made pending
    clock.advance(1)
    leased = service.claim(svc, "mail", {"timeout_ms": 60_000})
    assert leased is not None and leased.id == job_id
    token = {"lease_token": leased.lease_token}
    # A claim takes the job out of the claimable set; heartbeats and status posts keep it out.
    old = stream.item(job_id)
    heartbeat = stream.change(job_id, lambda: service.extend(svc, job_id, {**token, "timeout_ms": 60_000}))
    assert work_notice_of(heartbeat) is None
    assert work_notice_of(stream.record("MODIFY", old, stream.item(job_id))) is None
    clock.advance(1)
    failed = stream.change(job_id, lambda: service.fail(svc, job_id, {**token, "error": {"code": "x", "message": "y"},
                                                                      "retry_in_ms": 5_000}))  # fmt: skip
    later = work_notice_of(failed)
    assert later is not None and later.at == service.get(svc, job_id).available_at  # claimable in 5 s: wake then
    posted = stream.change(job_id, lambda: service.post_status(svc, job_id, {"new_status": "waiting"}))
    assert work_notice_of(posted) is None  # pending before and after, at the same place in the queue
    clock.advance(6_000)  # past the retry's backoff
    again = service.claim(svc, "mail", {"timeout_ms": 60_000})
    assert again is not None
    aborted = stream.change(job_id, lambda: service.abort(svc, job_id, {"lease_token": again.lease_token}))
    assert work_notice_of(aborted) is not None
    removed = stream.record("REMOVE", stream.item(job_id), None)
    assert work_notice_of(removed) is None


def test_workers_of_a_queue_get_one_notice_per_batch_and_nobody_else_does(fan_out, live_service, sockets, stream, svc):
    scoped = Principal("svc-scoped", Role.SERVICE, ("other",))
    connect(live_service, "worker-1", svc, {"work": "mail"})
    connect(live_service, "worker-2", svc, {"work": "mail"}, {"work": "sms"})
    connect(live_service, "watcher", svc, {"type": "mail"})
    connect(live_service, "elsewhere", scoped, {"work": "other"})
    records = [stream.create(svc, {"type": "mail"})[1] for _ in range(5)] + [stream.create(svc, {"type": "sms"})[1]]
    assert fan_out_handler({"Records": records}, None) == {"batchItemFailures": []}
    first_at = work_notice_of(records[0])
    assert first_at is not None
    assert notices(sockets, "worker-1") == [{"type": "work_available", "queue": "mail", "at": first_at.at}]
    assert sorted(n["queue"] for n in notices(sockets, "worker-2")) == ["mail", "sms"]
    assert notices(sockets, "watcher") == [] and len(sockets.received["watcher"]) == 5  # updates, no notices
    assert "elsewhere" not in sockets.received


def test_an_earlier_time_in_the_same_batch_is_sent_again(fan_out, live_service, sockets, stream, svc):
    connect(live_service, "worker", svc, {"work": "mail"})
    delayed = stream.create(svc, {"type": "mail", "delay_ms": 60_000})[1]
    now = stream.create(svc, {"type": "mail"})[1]
    later = stream.create(svc, {"type": "mail", "delay_ms": 30_000})[1]
    assert fan_out_handler({"Records": [delayed, now, later]}, None) == {"batchItemFailures": []}
    sent = [n["at"] for n in notices(sockets, "worker")]
    assert len(sent) == 2 and sent[1] < sent[0]  # the delayed one, then the one claimable now


def test_a_failing_notice_never_fails_the_records_updates(fan_out, live_service, sockets, stream, svc, alice, monkeypatch):
    connect(live_service, "worker", svc, {"work": "mail"})
    connect(live_service, "phone", alice, {})
    subscribers = live_service.subscriptions.subscribers

    def broken(topic: str) -> Any:
        if topic.startswith("work#"):
            raise RuntimeError("the connections table is away")
        return subscribers(topic)

    monkeypatch.setattr(live_service.subscriptions, "subscribers", broken)
    records = [stream.create(svc, {"type": "mail", "owner": alice.sub})[1]]
    assert fan_out_handler({"Records": records}, None) == {"batchItemFailures": []}
    assert [m["type"] for m in sockets.received["phone"]] == ["task_update"]


def test_only_services_that_reach_the_queue_wait_for_its_work(live_service, svc, alice, admin):
    live_service.connect("c1", alice)
    with pytest.raises(Forbidden):
        live_service.subscribe("c1", alice, {"work": "mail"})
    scoped = Principal("svc-scoped", Role.SERVICE, ("mail.*",))
    live_service.connect("c2", scoped)
    assert live_service.subscribe("c2", scoped, {"work": "mail.eu"}).key == "work#mail.eu"
    with pytest.raises(Forbidden):
        live_service.subscribe("c2", scoped, {"work": "sms"})
    live_service.connect("c3", admin)
    assert live_service.subscribe("c3", admin, {"work": "sms"}).to_wire() == {"work": "sms"}
