"""JobsClient, subscribe() and the `jobs` command line against the local cloud."""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from jobs_client import (
    BatchConflict,
    InvalidRequest,
    JobsClient,
    JobState,
    LeaseLost,
    NotFinished,
    NotFound,
    Progress,
    Speed,
    TaskUpdate,
    Unauthorized,
    VersionMismatch,
    subscribe,
)

from tests.e2e.conftest import DEADLINE_S, LocalService


@pytest.fixture
def client(local_service: LocalService) -> Iterator[JobsClient]:
    with JobsClient(local_service.http_url, local_service.token("service", "svc-client")) as service_client:
        yield service_client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_creating_reading_and_listing(client, local_service):
    queue = unique("api")
    job = client.create_job(queue, owner="User#api", title="T", params={"x": 1}, max_retries=2, ttl_ms=60_000)
    assert (job.type, job.owner, job.title, job.params) == (queue, "User#api", "T", {"x": 1})
    assert (job.max_retries, job.state) == (2, JobState.PENDING)
    assert job.execute_until is not None and job.created is not None
    first, created = client.create_unique_job(queue, "ref-1")
    again, created_again = client.create_unique_job(queue, "ref-1")
    assert (created, created_again, again.id) == (True, False, first.id)
    assert client.create_job(queue, idempotency_key="k-1").id == client.create_job(queue, idempotency_key="k-1").id
    assert client.get_job(job.id) == job
    assert client.get_job("01JDA3Q0Z8M6W4K2T9R7P5N3B1") is None
    for n in range(5):
        client.create_job(queue, params={"n": n})
    page = client.list_jobs(type=queue, limit=3)
    assert len(page.data) == 3 and page.next_cursor
    every = list(client.iter_jobs(type=queue, page_size=3))
    assert len(every) == 8 and len({j.id for j in every}) == 8
    assert [j.id for j in every] == sorted((j.id for j in every), reverse=True)  # newest first
    user = JobsClient(local_service.http_url, local_service.token("user", "User#api"))
    assert [j.id for j in user.iter_jobs()] == [job.id]
    assert queue in [q.type for q in client.iter_queues()]
    assert len(list(client.iter_queue_jobs(queue))) == 8  # all pending, all claimable
    assert client.get_schema()["type"] == "object"


def test_the_lease_lifecycle(client):
    queue = unique("lease")
    assert client.claim(queue, timeout_ms=5000) is None
    job = client.create_job(queue, params={"n": 1})
    leased = client.claim(queue, timeout_ms=5000, worker="w1")
    assert leased is not None and leased.id == job.id and leased.lease_token
    extended = client.extend(job.id, leased.lease_token, timeout_ms=10_000)
    assert extended.cancel_requested is False
    posted = client.post_status(
        job.id,
        new_status="half",
        progress=Progress("p", 1, 2),
        speeds=[Speed("s", 1.5, "x/s", "1.5 x/s")],
        message_to_append="hello",
        lease_token=leased.lease_token,
        extend_ms=5000,
    )
    assert (posted.status, posted.progress, posted.speeds[0].as_text) == ("half", Progress("p", 1, 2), "1.5 x/s")
    with pytest.raises(NotFinished):
        client.get_result(job.id)
    again = client.abort(job.id, leased.lease_token)
    assert again.state is JobState.PENDING
    second = client.start_job(job.id, timeout_ms=5000, worker="w2")
    with pytest.raises(LeaseLost) as lost:
        client.complete(job.id, lease_token=leased.lease_token, result=1)
    assert lost.value.status == 409 and lost.value.correlation_id
    done = client.complete(job.id, lease_token=second.lease_token, result={"ok": True})
    assert done.state is JobState.FINISHED and client.get_result(job.id) == {"ok": True}
    assert [m.message for m in client.iter_messages(job.id)] == ["hello"]

    failing = client.create_job(queue)
    lease = client.claim(queue, timeout_ms=5000)
    assert lease is not None and lease.id == failing.id
    ended = client.fail(failing.id, lease.lease_token, code="bad", message="no", retry=False)
    assert (ended.state, ended.error.code) == (JobState.ERROR, "bad")


def test_changing_cancelling_deleting_and_batches(client):
    queue = unique("change")
    job = client.create_job(queue, state="idle")
    patched = client.patch_job(job.id, if_match=job.version, title="new")
    assert patched.title == "new"
    with pytest.raises(VersionMismatch):
        client.patch_job(job.id, if_match=job.version, title="stale")
    assert client.cancel_job(job.id).state is JobState.CANCELLED
    assert client.delete_job(job.id).id == job.id
    assert client.get_job(job.id) is None
    result = client.batch(create=[{"type": queue, "ref_id": "a", "unique": True}, {"type": queue}])
    assert len(result.created) == 2
    with pytest.raises(BatchConflict) as conflict:
        client.batch(create=[{"type": queue, "ref_id": "a", "unique": True}], delete=[{"id": "01JDA3Q0Z8M6W4K2T9R7P5N3B1"}])
    assert {f["op"] for f in conflict.value.failures} == {"create", "delete"}
    with pytest.raises(InvalidRequest) as invalid:
        client.create_job(queue, max_retries=-3)
    assert "max_retries" in invalid.value.details["fields"]
    assert client.clean_jobs() >= 0


def test_a_bad_token_is_a_typed_error(local_service):
    with JobsClient(local_service.http_url, "not-a-token") as anonymous, pytest.raises(Unauthorized) as caught:
        anonymous.list_jobs()
    assert caught.value.status == 401


def connection_ids(local_service: LocalService, topic: str) -> list[str]:
    endpoint = re.search(r"DynamoDB\s+(http://\S+)", local_service.logs())
    assert endpoint
    dynamodb = boto3.client(
        "dynamodb", endpoint_url=endpoint.group(1), region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    found = dynamodb.query(
        TableName="ConnectionsTable",
        IndexName="topic-subscribers",
        KeyConditionExpression="topic = :t",
        ExpressionAttributeValues={":t": {"S": topic}},
    )
    return [item["connection_id"]["S"] for item in found["Items"]]


def test_subscribe_resyncs_after_a_reconnect_and_never_repeats_a_version(client, local_service):
    job = client.create_job(unique("live"), owner="User#live")
    token = local_service.token("user", "User#live")
    management = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=local_service.ws_url.replace("ws://", "http://"),
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )

    async def follow() -> list[TaskUpdate]:
        seen: list[TaskUpdate] = []
        with JobsClient(local_service.http_url, token) as user:
            updates = subscribe(local_service.ws_url, token, job_id=job.id, client=user, max_backoff_s=0.5)
            seen.append(await asyncio.wait_for(anext(updates), timeout=DEADLINE_S))  # the job as it is, over HTTP
            await asyncio.to_thread(client.post_status, job.id, new_status="one")
            seen.append(await asyncio.wait_for(anext(updates), timeout=DEADLINE_S))
            # The service drops the connection; while it is away the job moves on.
            (connection,) = await asyncio.to_thread(connection_ids, local_service, f"job_id#{job.id}")
            await asyncio.to_thread(management.delete_connection, ConnectionId=connection)
            await asyncio.to_thread(client.post_status, job.id, new_status="two")
            await asyncio.to_thread(client.post_status, job.id, new_status="three", complete=True)
            while not seen[-1].complete:
                seen.append(await asyncio.wait_for(anext(updates), timeout=DEADLINE_S))
            await updates.aclose()
        return seen

    seen = asyncio.run(follow())
    versions = [u.version for u in seen]
    assert versions == sorted(set(versions)), versions
    assert seen[0].resync and seen[0].version == 1
    assert seen[1].new_status == "one" and not seen[1].resync
    assert seen[-1].complete and seen[-1].version == 4
    assert any(u.resync for u in seen[2:]), "the reconnect read the job over HTTP"


def run_in_terminal(command: list[str], env: dict[str, str], until: Any, timeout: float = 60) -> tuple[int, str]:
    """Run a command in a pseudo-terminal (as a person would), calling until(output_so_far)."""
    import pty

    leader, follower = pty.openpty()
    process = subprocess.Popen(command, stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True)
    os.close(follower)
    output = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the terminal closed: the command is done
                    break
                if not chunk:
                    break
                output += chunk
                until(output.decode(errors="replace"))
            elif process.poll() is not None:
                break
        return process.wait(timeout=DEADLINE_S), output.decode(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        os.close(leader)


def test_watch_shows_a_progress_bar_that_reaches_100_percent(client, local_service):
    job = client.create_job(unique("watch"), owner="User#watcher", title="Counting to 4")
    lease = client.start_job(job.id, timeout_ms=30_000)
    env = {
        **os.environ,
        "JOBS_URL": local_service.http_url,
        "JOBS_WS_URL": local_service.ws_url,
        "JOBS_TOKEN": local_service.token("user", "User#watcher"),
        "COLUMNS": "120",
        "TERM": "xterm-256color",
    }
    env.pop("NO_COLOR", None)
    posted: list[int] = []

    def drive(screen: str) -> None:
        # Once the bar is on screen, count to 4, one step each time the screen shows the last.
        if "Counting to 4" not in screen or len(posted) > 4:
            return
        step = len(posted) + 1
        if step == 1 or f"Count is now {step - 1}" in screen:
            if step <= 4:
                client.post_status(
                    job.id,
                    progress={"current": step, "maximum": 4},
                    new_status=f"Count is now {step}",
                    message_to_append=f"Count is now {step}",
                    lease_token=lease.lease_token,
                )
            else:
                client.complete(job.id, lease_token=lease.lease_token, result="done")
            posted.append(step)

    code, screen = run_in_terminal([sys.executable, "-m", "jobs_client", "watch", job.id], env, drive)
    assert code == 0, screen
    assert "100%" in screen
    assert "Count is now 4" in screen and "finished" in screen
    assert "\x1b[" in screen  # drawn for a terminal (cursor moves and colours), not plain text


def test_the_command_line_prints_json_and_fails_with_the_contracts_message(client, local_service):
    env = {**os.environ, "JOBS_URL": local_service.http_url, "JOBS_TOKEN": local_service.token("service", "svc-cli")}
    queue = unique("cli")
    created = subprocess.run(
        [sys.executable, "-m", "jobs_client", "--json", "submit", queue, "--params", '{"n": 3}', "--owner", "User#cli"],
        env=env, capture_output=True, text=True, timeout=DEADLINE_S, check=False,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    job = json.loads(created.stdout)
    assert (job["type"], job["params"], job["owner"], job["state"]) == (queue, {"n": 3}, "User#cli", "pending")
    missing = subprocess.run(
        [sys.executable, "-m", "jobs_client", "cancel", "01JDA3Q0Z8M6W4K2T9R7P5N3B1"],
        env=env, capture_output=True, text=True, timeout=DEADLINE_S, check=False,
    )  # fmt: skip
    assert missing.returncode == 1
    assert "not_found" in missing.stderr
    with pytest.raises(NotFound):
        client.cancel_job("01JDA3Q0Z8M6W4K2T9R7P5N3B1")


def jobs_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "jobs_client", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=DEADLINE_S, check=False)


def test_the_command_line_claims_completes_fails_lists_and_shows(local_service):
    env = {**os.environ, "JOBS_URL": local_service.http_url, "JOBS_TOKEN": local_service.token("service", "svc-cli")}
    queue = unique("cli-flow")
    assert jobs_cli(env, "--json", "claim", queue).returncode == 3  # nothing to claim
    ids = [json.loads(jobs_cli(env, "--json", "submit", queue, "--title", f"job {n}").stdout)["id"] for n in range(2)]

    first = json.loads(jobs_cli(env, "--json", "claim", queue, "--timeout-ms", "60000").stdout)
    done = jobs_cli(env, "--json", "complete", first["id"], "--lease-token", first["lease_token"], "--result", '{"ok": 1}')
    assert done.returncode == 0 and json.loads(done.stdout)["state"] == "finished"
    second = json.loads(jobs_cli(env, "--json", "claim", queue).stdout)
    failed = jobs_cli(env, "--json", "fail", second["id"], "--lease-token", second["lease_token"], "--code", "bad", "--no-retry")
    assert json.loads(failed.stdout)["error"] == {"code": "bad", "message": ""}
    assert {first["id"], second["id"]} == set(ids)

    listed = json.loads(jobs_cli(env, "--json", "list", "--type", queue).stdout)
    assert {j["id"]: j["state"] for j in listed} == {first["id"]: "finished", second["id"]: "error"}
    table = jobs_cli(env, "list", "--type", queue)
    assert table.returncode == 0 and "finished" in table.stdout and "error" in table.stdout
    shown = json.loads(jobs_cli(env, "--json", "show", first["id"]).stdout)
    assert shown["job"]["result"] == {"ok": 1} and shown["messages"] == []
    assert queue in [q["type"] for q in json.loads(jobs_cli(env, "--json", "queues").stdout)]
    stale = jobs_cli(env, "complete", second["id"], "--lease-token", second["lease_token"])
    assert stale.returncode == 1 and "already_finished" in stale.stderr
    assert json.loads(jobs_cli(env, "--json", "result", first["id"]).stdout) == {"ok": 1}
    retried = json.loads(jobs_cli(env, "--json", "retry", second["id"]).stdout)
    assert (retried["id"], retried["state"], retried["attempts"]) == (second["id"], "pending", 0)
    assert "retried" in jobs_cli(env, "logs", second["id"]).stdout
    assert json.loads(jobs_cli(env, "--json", "pause", queue).stdout)["paused"] is True
    assert json.loads(jobs_cli(env, "--json", "queue", queue).stdout)["queue"]["paused"] is True
    assert json.loads(jobs_cli(env, "--json", "resume", queue).stdout)["paused"] is False
    many = json.loads(jobs_cli(env, "--json", "claim", queue, "--max-jobs", "3").stdout)
    assert [j["id"] for j in many] == [second["id"]] and many[0]["lease_token"]
    assert jobs_cli(env, "--json", "claim", "other-queue-none", queue, "--max-jobs", "2").returncode == 3
    deleted = jobs_cli(env, "--json", "delete", second["id"])
    assert deleted.returncode == 0 and json.loads(deleted.stdout)["id"] == second["id"]


def test_the_command_line_mints_tokens_the_service_accepts_and_refuses_a_missing_one(local_service):
    from tests.e2e.conftest import SECRET

    env = {**os.environ, "JOBS_URL": local_service.http_url, "JOBS_JWT_SECRET": SECRET}
    env.pop("JOBS_TOKEN", None)
    token = jobs_cli(env, "token", "--role", "user", "--sub", "User#cli-token").stdout.strip()
    assert jobs_cli({**env, "JOBS_TOKEN": token}, "--json", "list").returncode == 0
    missing = jobs_cli(env, "list")
    assert missing.returncode != 0 and "token" in missing.stderr.lower()
