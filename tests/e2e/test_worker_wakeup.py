"""An idle worker waits for work on the WebSocket, not in a long poll, against the local
cloud: a create wakes it through the stream fan-out's notice, a delayed job wakes it when it
becomes claimable, and without a WebSocket it long-polls as before.

Each worker here has a safety poll of 10 minutes, far past the test's deadline: a job done
in time was claimed because a notice (or a due time it announced) woke the worker.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from jobs_client import Job, JobsClient, JobState
from jobs_client.worker import JobContext, Worker

from tests.e2e.conftest import DEADLINE_S, LocalService, free_port, wait_for

NEVER_S = 600.0  # the safety poll: never within a test


class RecordingClient(JobsClient):
    """Remembers each claim's `wait_ms` and whether it leased a job."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.claims: list[tuple[int | None, bool]] = []
        self._lock = threading.Lock()

    def claim(self, type: str, **kwargs: Any) -> Job | None:  # type: ignore[override]
        job = super().claim(type, **kwargs)
        with self._lock:
            self.claims.append((kwargs.get("wait_ms"), job is not None))
        return job

    def empty_claims(self, *, wait_ms: int) -> int:
        with self._lock:
            return sum(1 for wait, leased in self.claims if wait == wait_ms and not leased)


@dataclass
class Running:
    worker: Worker
    client: RecordingClient
    thread: threading.Thread
    done: list[str] = field(default_factory=list)


@pytest.fixture
def start_worker(local_service: LocalService) -> Iterator[Any]:
    started: list[Running] = []

    def start(queue: str, **options: Any) -> Running:
        client = RecordingClient(local_service.http_url, local_service.token("service", "svc-wake"))
        running = Running(None, client, None)  # type: ignore[arg-type]

        def handle(ctx: JobContext) -> dict[str, str]:
            running.done.append(ctx.job.id)
            return {"ok": "yes"}

        running.worker = Worker(client, queue, handle, lease_ms=30_000, **options)
        running.thread = threading.Thread(target=running.worker.run, kwargs={"install_signal_handlers": False}, daemon=True)
        running.thread.start()
        started.append(running)
        return running

    yield start
    for running in started:
        running.worker.stop()
        running.thread.join(timeout=DEADLINE_S)
        running.client.close()
        assert not running.thread.is_alive(), "a worker did not stop"


@pytest.fixture
def service(local_service: LocalService) -> Iterator[JobsClient]:
    with JobsClient(local_service.http_url, local_service.token("service", "svc-wake")) as client:
        yield client


def idle_on_the_socket(running: Running) -> None:
    """Connected, and a claim that did not wait came back empty: the slot now waits for a
    notice (a long poll begun before the socket connected may come first)."""
    wait_for(lambda: running.worker.waker is not None and running.worker.waker.connected, message="the socket")
    wait_for(lambda: running.client.empty_claims(wait_ms=0) > 0, message="an empty claim without a wait")


def test_a_create_wakes_an_idle_worker_through_its_notice(start_worker, service, local_service):
    queue = f"wake-{uuid.uuid4().hex[:8]}"
    running = start_worker(queue, ws_url=local_service.ws_url, safety_poll_s=NEVER_S, wait_ms=20_000)
    idle_on_the_socket(running)
    before = len(running.client.claims)
    job = service.create_job(queue, title="wake up")
    wait_for(lambda: job.id in running.done, message="the job to run")
    assert wait_for(lambda: service.get_job(job.id).state is JobState.FINISHED, message="the job to finish")
    assert running.worker.waker is not None and running.worker.waker.notices >= 1
    # Connected, the worker does not long-poll: each claim since asked for no wait.
    assert {wait for wait, _ in running.client.claims[before:]} == {0}


def test_a_delayed_job_wakes_the_worker_when_it_becomes_claimable(start_worker, service, local_service):
    queue = f"later-{uuid.uuid4().hex[:8]}"
    running = start_worker(queue, ws_url=local_service.ws_url, safety_poll_s=NEVER_S)
    idle_on_the_socket(running)
    job = service.create_job(queue, delay_ms=2_000)
    wait_for(lambda: job.id in running.done, message="the delayed job to run")
    finished = wait_for(lambda: (j := service.get_job(job.id)).state is JobState.FINISHED and j, message="finished")
    assert finished.started is not None and job.available_at is not None
    assert finished.started >= job.available_at  # not before its time


def test_without_a_websocket_the_worker_long_polls(start_worker, service):
    queue = f"poll-{uuid.uuid4().hex[:8]}"
    running = start_worker(queue, ws_url=f"ws://127.0.0.1:{free_port()}", safety_poll_s=NEVER_S, wait_ms=2_000)
    job = service.create_job(queue)
    wait_for(lambda: job.id in running.done, message="the job to run")
    assert running.worker.waker is not None and not running.worker.waker.connected
    assert {wait for wait, _ in running.client.claims} == {2_000}


def test_a_worker_waiting_on_the_socket_stops_at_once(start_worker, local_service):
    running = start_worker(f"stop-{uuid.uuid4().hex[:8]}", ws_url=local_service.ws_url, safety_poll_s=NEVER_S)
    idle_on_the_socket(running)
    running.worker.stop()
    running.thread.join(timeout=DEADLINE_S)
    assert not running.thread.is_alive()
    assert running.worker.waker is not None and not running.worker.waker.connected
