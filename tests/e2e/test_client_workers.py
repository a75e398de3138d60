"""The worker runtime against the local cloud: a pool of worker processes drains a queue
whose handler fails, refuses and hangs; a worker killed mid-job loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jobs_client import ApiError, Job, JobsClient, JobState

from tests.e2e.conftest import DEADLINE_S, LocalService, wait_for

WORKER = Path(__file__).parent / "fixtures" / "workers" / "chaos_worker.py"


@pytest.fixture
def client(local_service: LocalService) -> Iterator[JobsClient]:
    with JobsClient(local_service.http_url, local_service.token("service", "svc-pool")) as service_client:
        yield service_client


class Workers:
    """Worker processes started by a test; every one is stopped when the test ends."""

    def __init__(self, local: LocalService, tmp_path: Path) -> None:
        self.local, self.tmp_path = local, tmp_path
        self.processes: dict[str, subprocess.Popen[str]] = {}

    def start(self, name: str, queue: str, **env: str) -> subprocess.Popen[str]:
        log = (self.tmp_path / f"{name}.log").open("w")
        process = subprocess.Popen(
            [sys.executable, str(WORKER)],
            env={
                **os.environ,
                "JOBS_URL": self.local.http_url,
                "JOBS_TOKEN": self.local.token("service", "svc-pool"),
                "QUEUE": queue,
                "WORKER_NAME": name,
                **env,
            },
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        self.processes[name] = process
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready", self.log(name)
        return process

    def log(self, name: str) -> str:
        return (self.tmp_path / f"{name}.log").read_text()[-3000:]

    def stop(self, name: str) -> dict[str, Any]:
        """SIGTERM, as a platform stops a worker; returns the stats it printed."""
        process = self.processes.pop(name)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=DEADLINE_S)
        assert process.returncode == 0, self.log(name)
        return dict(json.loads(output.strip().splitlines()[-1]))

    def kill_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
            process.wait(timeout=DEADLINE_S)


@pytest.fixture
def workers(local_service: LocalService, tmp_path: Path) -> Iterator[Workers]:
    started = Workers(local_service, tmp_path)
    try:
        yield started
    finally:
        started.kill_all()


def jobs_of(client: JobsClient, queue: str) -> dict[int, Job]:
    return {job.params["n"]: job for job in client.iter_jobs(type=queue)}


def test_a_pool_of_four_workers_drains_200_jobs_that_fail_refuse_and_hang(client, workers):
    queue = f"pool-{uuid.uuid4().hex[:8]}"

    def mode(n: int) -> str:
        if n == 2:
            return "hang"
        if n % 9 == 1:
            return "fatal"
        return "flaky" if n % 3 == 0 else "ok"

    modes = {n: mode(n) for n in range(200)}
    for n, job_mode in modes.items():
        client.create_job(queue, params={"n": n, "mode": job_mode})
    names = [f"pool-worker-{i}" for i in range(4)]
    for i, name in enumerate(names):
        # Half the pool leases up to 3 jobs per claim: jobs in hand stay within CONCURRENCY.
        # Leases of 8 s (a heartbeat every 2.7 s, under MAX_RUN_S, which the heartbeat checks):
        # on a loaded 2-core machine a request can take seconds, and a 5 s lease lost to a
        # slow heartbeat ran an ok job twice.
        workers.start(name, queue, CONCURRENCY="4", LEASE_MS="8000", MAX_RUN_S="3", MAX_JOBS="3" if i % 2 else "1")

    observer_failures: list[int] = []

    def all_done() -> dict[int, Job] | None:
        try:
            found = jobs_of(client, queue)
        except ApiError as error:
            # Watching is not what is tested: on a loaded 2-core machine a listing may outlast
            # its function's 10 s timeout while 16 workers write (a 500, as in AWS). Look again.
            if error.status < 500:
                raise
            observer_failures.append(error.status)
            return None
        return found if len(found) == 200 and all(j.state.terminal for j in found.values()) else None

    done = wait_for(all_done, timeout=2 * DEADLINE_S, interval=2, message="every job to end")
    assert len(observer_failures) < 10, observer_failures
    stats = [workers.stop(name) for name in names]

    for n, job in done.items():
        expected = modes[n]
        if expected == "fatal":
            assert (job.state, job.attempts, job.error.code) == (JobState.ERROR, 1, "fatal"), job
        else:
            assert job.state is JobState.FINISHED, job
            assert job.result["doubled"] == 2 * n
            assert job.attempts == (1 if expected == "ok" else 2), (expected, job)
    hung = done[2]
    # The hung attempt's worker gave the lease up; a worker claimed it again and finished it.
    assert hung.result["by"] in names
    assert sum(s["abandoned"] for s in stats) == 1
    assert sum(s["completed"] for s in stats) == sum(1 for m in modes.values() if m != "fatal")
    flaky = sum(1 for m in modes.values() if m == "flaky")
    fatal = sum(1 for m in modes.values() if m == "fatal")
    assert sum(s["failed"] for s in stats) == flaky + fatal
    assert sum(s["lost"] for s in stats) == 0


def test_a_worker_killed_mid_job_loses_nothing(client, workers):
    queue = f"kill-{uuid.uuid4().hex[:8]}"
    ids = [client.create_job(queue, params={"n": n, "mode": "slow", "steps": 6, "step_s": 0.2}).id for n in range(3)]
    # 8 s leases: long enough for heartbeats on a loaded machine (the victim must run twice,
    # not three times), short enough for the rescuer to take the job soon after the kill.
    workers.start("doomed", queue, CONCURRENCY="1", LEASE_MS="8000")

    def mid_job() -> Job | None:
        running = [client.get_job(job_id) for job_id in ids]
        return next(
            (j for j in running if j and j.state is JobState.RUNNING and j.progress and (j.progress.current or 0) >= 2), None
        )

    victim = wait_for(mid_job, timeout=DEADLINE_S, message="a job half done")
    workers.processes["doomed"].send_signal(signal.SIGKILL)
    workers.processes.pop("doomed").wait(timeout=DEADLINE_S)
    workers.start("rescuer", queue, CONCURRENCY="1", LEASE_MS="15000")

    def all_finished() -> list[Job] | None:
        found = [client.get_job(job_id) for job_id in ids]
        return found if all(j and j.state is JobState.FINISHED for j in found) else None  # type: ignore[misc]

    finished = {j.id: j for j in wait_for(all_finished, timeout=120, message="every job finished")}
    assert finished[victim.id].attempts == 2
    assert finished[victim.id].result["by"] == "rescuer"
    assert all(job.result["doubled"] == 2 * job.params["n"] for job in finished.values())
    assert workers.stop("rescuer")["completed"] >= 1


def test_cancelling_a_running_job_stops_its_handler_and_the_worker_goes_on(client, workers):
    queue = f"cancel-{uuid.uuid4().hex[:8]}"
    long_job = client.create_job(queue, params={"n": 1, "mode": "slow", "steps": 200, "step_s": 0.1})
    workers.start("canceller", queue, CONCURRENCY="1", LEASE_MS="15000")
    wait_for(
        lambda: (j := client.get_job(long_job.id)) and j.progress and (j.progress.current or 0) >= 2,
        timeout=DEADLINE_S,
        message="the long job under way",
    )
    assert client.cancel_job(long_job.id).cancel_requested is True
    ended = wait_for(
        lambda: (j := client.get_job(long_job.id)) and j.state.terminal and j,
        timeout=DEADLINE_S,
        message="the job to end",
    )
    assert ended.state is JobState.CANCELLED
    assert ended.progress.current < 200  # stopped, not run to the end
    after = client.create_job(queue, params={"n": 2, "mode": "ok"})
    finished = wait_for(
        lambda: (j := client.get_job(after.id)) and j.state is JobState.FINISHED and j, timeout=DEADLINE_S, message="the next job"
    )
    assert finished.result["doubled"] == 4
    stats = workers.stop("canceller")
    assert (stats["aborted"], stats["completed"]) == (1, 1)


def test_sigterm_lets_a_short_job_finish_and_hands_a_long_one_back(client, workers):
    queue = f"term-{uuid.uuid4().hex[:8]}"
    short = client.create_job(queue, params={"n": 1, "mode": "slow", "steps": 8, "step_s": 0.25})
    long = client.create_job(queue, params={"n": 2, "mode": "slow", "steps": 400, "step_s": 0.25})
    workers.start("terminated", queue, CONCURRENCY="2", LEASE_MS="10000")

    def both_running() -> bool:
        jobs = [client.get_job(short.id), client.get_job(long.id)]
        return all(j and j.state is JobState.RUNNING and j.progress and (j.progress.current or 0) >= 1 for j in jobs)

    wait_for(both_running, timeout=DEADLINE_S, message="both jobs under way")
    stats = workers.stop("terminated")  # SIGTERM: 5 s of grace, then the rest is handed back
    finished, handed_back = client.get_job(short.id), client.get_job(long.id)
    assert finished is not None and finished.state is JobState.FINISHED
    assert handed_back is not None and handed_back.state is JobState.PENDING  # claimable now, not after its lease
    assert handed_back.progress.current < 400
    assert (stats["completed"], stats["aborted"]) == (1, 1)
