"""The `jobs` command line against a fake service: the client it builds is put on the fake's
transport (cli.client_factory), the clock lags are measured at is fixed, and the live
subscription is replaced by a scripted one. Nothing sleeps, nothing listens."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from jobs_client import JobState, TaskUpdate
from jobs_client import cli as cli_module
from jobs_client.cli import app, human_span, sparkline
from typer.testing import CliRunner

from tests.client.cli_harness import lines, run
from tests.client.test_queue_client import JOB, error, ok, queue_wire

# -- helpers ------------------------------------------------------------------------------


def test_spans_read_as_people_say_them():
    assert [human_span(timedelta(seconds=s)) for s in (0, 3, 125, 3600, 3 * 86400 + 7300)] == [
        "0s",
        "3s",
        "2m 5s",
        "1h 0m",
        "3d 2h",
    ]
    assert human_span(None) == "—"
    assert human_span(timedelta(seconds=-4)) == "0s"


def test_a_sparkline_scales_to_the_largest_and_keeps_the_lowest_block_for_zero():
    assert sparkline([0, 1, 2, 4]) == "▁▃▅█"
    assert sparkline([0, 0]) == "▁▁"
    assert sparkline([1, 100]) == "▂█"
    assert sparkline([]) == ""


# -- queues -------------------------------------------------------------------------------


def test_queues_prints_counts_lag_and_settings(fake):
    listed = [queue_wire("emails", paused=True), queue_wire("reports", fifo=True, oldest_pending_at=None)]
    fake.on("GET", "/v1/queues", ok({"data": listed, "next_cursor": None}))
    result = run("queues", "--prefix", "e")
    assert result.exit_code == 0, result.output
    assert lines(result)[0] == ["type", "idle", "pending", "running", "finished", "error", "cancelled", "lag", "paused", "fifo"]
    rows = {row[0]: row[1:] for row in lines(result) if row and row[0] in ("emails", "reports")}
    assert rows["emails"] == ["1", "2", "3", "4", "5", "6", "2m", "5s", "yes", "no"]
    assert rows["reports"] == ["1", "2", "3", "4", "5", "6", "—", "no", "yes"]
    assert fake.sent()[0][2] == {"prefix": "e", "limit": "100"}


def test_queues_json_prints_the_queues(fake):
    fake.on("GET", "/v1/queues", ok({"data": [queue_wire("emails")], "next_cursor": None}))
    result = run("--json", "queues")
    assert result.exit_code == 0, result.output
    (printed,) = json.loads(result.stdout)
    assert printed["type"] == "emails" and printed["counts"]["cancelled"] == 6
    assert printed["oldest_pending_at"] == "2026-03-01T12:00:00Z"


def history(created: list[int], finished: list[int], failed: list[int]) -> dict[str, Any]:
    start = datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
    data = [
        {"minute": (start + timedelta(minutes=n)).isoformat().replace("+00:00", "Z"), "created": c, "started": 0,
         "finished": f, "failed": x, "retried": 0}
        for n, (c, f, x) in enumerate(zip(created, finished, failed, strict=True))
    ]  # fmt: skip
    return {"data": data}


def test_queue_prints_counts_and_sparklines_of_the_last_hour_with_totals(fake):
    created, finished, failed = [0] * 57 + [1, 2, 4], [0] * 58 + [4, 4], [0] * 60
    fake.on("GET", "/v1/queues/emails", ok(queue_wire("emails")))
    fake.on("GET", "/v1/queues/emails/history", ok(history(created, finished, failed)))
    result = run("queue", "emails")
    assert result.exit_code == 0, result.output
    rows = {row[0]: row[1:] for row in lines(result) if row}
    assert rows["created"] == ["▁" * 57 + "▃▅█", "7"]
    assert rows["finished"] == ["▁" * 58 + "██", "8"]
    assert rows["failed"] == ["▁" * 60, "0"]
    assert rows["lag"] == ["2m", "5s"] and rows["pending"] == ["2"] and rows["paused"] == ["no"]
    assert [(m, p, q) for m, p, q, _ in fake.sent()] == [
        ("GET", "/v1/queues/emails", {}),
        ("GET", "/v1/queues/emails/history", {}),
    ]


def test_queue_shows_its_shards_and_one_for_an_older_service_sending_none(fake):
    fake.on("GET", "/v1/queues/hot", ok(queue_wire("hot", shards=16)))
    fake.on("GET", "/v1/queues/hot/history", ok(history([1], [2], [3])))
    fake.on("GET", "/v1/queues/old", ok(queue_wire("old")))
    fake.on("GET", "/v1/queues/old/history", ok(history([1], [2], [3])))
    hot = run("queue", "hot")
    assert hot.exit_code == 0, hot.output
    assert ["shards", "16"] in lines(hot)
    assert ["shards", "1"] in lines(run("queue", "old"))
    assert json.loads(run("--json", "queue", "hot").stdout)["queue"]["shards"] == 16


def test_pause_prints_the_queues_shards(fake):
    fake.on("PATCH", "/v1/queues/hot", ok(queue_wire("hot", paused=True, shards=8)))
    paused = run("pause", "hot")
    assert paused.exit_code == 0, paused.output
    assert ["shards", "8"] in lines(paused)


def test_queue_json_prints_the_queue_and_its_history(fake):
    fake.on("GET", "/v1/queues/emails", ok(queue_wire("emails")))
    fake.on("GET", "/v1/queues/emails/history", ok(history([1], [2], [3])))
    printed = json.loads(run("--json", "queue", "emails").stdout)
    assert printed["queue"]["type"] == "emails"
    assert printed["history"] == [
        {"minute": "2026-03-01T11:00:00Z", "created": 1, "started": 0, "finished": 2, "failed": 3, "retried": 0}
    ]


def test_an_unknown_queue_is_a_clean_error(fake):
    result = run("queue", "nope")
    assert result.exit_code == 1
    assert "not_found: queue nope not found" in result.stderr
    assert "Traceback" not in result.output


def test_pause_and_resume_print_the_queue(fake):
    fake.on("PATCH", "/v1/queues/emails", ok(queue_wire("emails", paused=True)), ok(queue_wire("emails", paused=False)))
    paused = run("pause", "emails")
    assert paused.exit_code == 0, paused.output
    assert ["paused", "yes"] in lines(paused)
    resumed = run("--json", "resume", "emails")
    assert json.loads(resumed.stdout)["paused"] is False
    assert [b for _, _, _, b in fake.sent()] == [{"paused": True}, {"paused": False}]


def test_pausing_without_the_right_is_the_contracts_error(fake):
    fake.on("PATCH", "/v1/queues/emails", error(403, "forbidden"))
    result = run("pause", "emails")
    assert result.exit_code == 1
    assert "forbidden: forbidden happened" in result.stderr


# -- retry, redrive, purge ----------------------------------------------------------------


def test_retry_prints_the_job(fake):
    fake.on("POST", "/v1/jobs/j1/retry", ok(JOB))
    result = run("retry", "j1")
    assert result.exit_code == 0, result.output
    assert ["state", "pending"] in lines(result) and ["priority", "3"] in lines(result)
    assert json.loads(run("--json", "retry", "j1").stdout)["id"] == "j1"


def test_retry_of_a_taken_unique_job_names_the_existing_one(fake):
    fake.on("POST", "/v1/jobs/j1/retry", error(409, "duplicate", existing_id="j0"))
    result = run("retry", "j1")
    assert result.exit_code == 1
    assert "duplicate: duplicate happened" in result.stderr
    assert "the unfinished job j0 has the same type and ref_id" in result.stderr


def test_redrive_calls_until_there_is_no_more_and_prints_the_totals(fake):
    fake.on("GET", "/v1/queues/emails", ok(queue_wire("emails")))
    fake.on(
        "POST",
        "/v1/queues/emails/redrive",
        ok({"retried": 5, "skipped": 0, "more": True}),
        ok({"retried": 4, "skipped": 1, "more": True}),
        ok({"retried": 2, "skipped": 0, "more": False}),
    )
    result = run("redrive", "emails", "--state", "error", "--state", "cancelled", "--code", "E_TIMEOUT", "--limit", "5")
    assert result.exit_code == 0, result.output
    assert "retried 11, skipped 1" in result.stdout
    redrives = [b for m, _, _, b in fake.sent() if m == "POST"]
    assert redrives == [{"states": ["error", "cancelled"], "error_code": "E_TIMEOUT", "limit": 5}] * 3


def test_redrive_json_prints_the_totals_and_refuses_other_states(fake):
    fake.on("GET", "/v1/queues/emails", ok(queue_wire("emails")))
    fake.on("POST", "/v1/queues/emails/redrive", ok({"retried": 2, "skipped": 0, "more": False}))
    result = run("--json", "redrive", "emails")
    assert json.loads(result.stdout) == {"retried": 2, "skipped": 0, "more": False}
    assert [b for m, _, _, b in fake.sent() if m == "POST"] == [{}]
    assert run("redrive", "emails", "--state", "finished").exit_code == 2


def test_redrive_says_so_when_it_stopped_on_jobs_it_could_not_retry(fake):
    fake.on("GET", "/v1/queues/emails", ok(queue_wire("emails")))
    fake.on("POST", "/v1/queues/emails/redrive", ok({"retried": 0, "skipped": 3, "more": True}))
    result = run("redrive", "emails")
    assert result.exit_code == 0
    assert "retried 0, skipped 3" in result.stdout and "stopped" in result.stderr


def test_purge_asks_first_and_deletes_nothing_when_refused(fake):
    fake.on("GET", "/v1/queues/emails", ok(queue_wire("emails")))
    fake.on("DELETE", "/v1/queues/emails/jobs", ok({"deleted": 1, "more": False}))
    result = run("purge", "emails", "--state", "finished", input="n\n")
    assert result.exit_code == 1
    assert "Delete 4 finished jobs of queue emails?" in result.output
    assert "nothing deleted" in result.stderr
    assert [m for m, *_ in fake.sent()] == ["GET"]


def test_purge_proceeds_when_confirmed(fake):
    fake.on("GET", "/v1/queues/emails", ok(queue_wire("emails")))
    fake.on("DELETE", "/v1/queues/emails/jobs", ok({"deleted": 100, "more": True}), ok({"deleted": 18, "more": False}))
    result = run("purge", "emails", input="y\n")
    assert result.exit_code == 0, result.output
    assert "Delete 18 jobs (all but running) of queue emails?" in result.output
    assert "deleted 118" in result.stdout
    assert [q for m, _, q, _ in fake.sent() if m == "DELETE"] == [{}, {}]


def test_purge_yes_skips_the_question(fake):
    fake.on("GET", "/v1/queues/emails", ok(queue_wire("emails")))
    fake.on("DELETE", "/v1/queues/emails/jobs", ok({"deleted": 5, "more": False}))
    result = run("--json", "purge", "emails", "--state", "error", "--yes")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"deleted": 5}
    assert "Delete" not in result.output
    assert [q for m, _, q, _ in fake.sent() if m == "DELETE"] == [{"state": "error"}]


def test_purge_of_an_unknown_queue_asks_nothing(fake):
    result = run("purge", "nope", "--yes")
    assert result.exit_code == 1 and "not_found: queue nope not found" in result.stderr
    assert [m for m, *_ in fake.sent()] == ["GET"]


# -- jobs: show, delete, result, logs -----------------------------------------------------

FULL_JOB = JOB | {
    "state": "running",
    "params": {"to": "a@b.c"},
    "created": "2026-03-01T12:00:00.000Z",
    "started": "2026-03-01T12:00:01.000Z",
    "available_at": "2026-03-01T12:00:00.000Z",
    "execute_until": "2026-03-02T12:00:00.000Z",
    "locked_until": "2026-03-01T12:05:00.000Z",
    "progress": {"title": "sending", "current": 5, "maximum": 20},
    "speeds": [{"title": "mails", "speed": 2.5, "unit": "mail/s", "as_text": "2.5 mail/s"}],
}
MESSAGES = {
    "data": [{"message": "started", "at": "2026-03-01T12:00:01.000Z"}, {"message": "half way", "at": "2026-03-01T12:00:02.000Z"}],
    "next_cursor": None,
}


def test_show_prints_params_priority_times_progress_and_speeds(fake):
    fake.on("GET", "/v1/jobs/j1", ok(FULL_JOB)).on("GET", "/v1/jobs/j1/messages", ok(MESSAGES))
    result = run("show", "j1")
    assert result.exit_code == 0, result.output
    rows = {row[0]: row[1:] for row in lines(result) if row}
    assert rows["priority"] == ["3"]
    assert rows["params"] == ['{"to":', '"a@b.c"}']
    assert rows["started"] == ["2026-03-01T12:00:01Z"] and rows["execute_until"] == ["2026-03-02T12:00:00Z"]
    assert rows["locked_until"] == ["2026-03-01T12:05:00Z"] and "completed" not in rows
    assert rows["progress"] == ["5/20", "(25%)", "sending"]
    assert rows["speeds"] == ["2.5", "mail/s"]
    assert rows["2026-03-01T12:00:02Z"] == ["half", "way"]


def test_delete_prints_the_job_and_result_prints_json(fake):
    fake.on("DELETE", "/v1/jobs/j1", ok(JOB)).on("GET", "/v1/jobs/j1/result", ok({"result": {"sent": 20}}))
    deleted = run("delete", "j1")
    assert deleted.exit_code == 0 and ["id", "j1"] in lines(deleted)
    result = run("result", "j1")
    assert result.exit_code == 0 and json.loads(result.stdout) == {"sent": 20}
    assert json.loads(run("--json", "result", "j1").stdout) == {"sent": 20}


def test_result_before_the_job_finished_is_the_contracts_error(fake):
    fake.on("GET", "/v1/jobs/j1/result", error(409, "not_finished"))
    result = run("result", "j1")
    assert result.exit_code == 1 and "not_finished" in result.stderr


def test_logs_prints_the_messages_oldest_first(fake):
    fake.on("GET", "/v1/jobs/j1", ok(FULL_JOB)).on("GET", "/v1/jobs/j1/messages", ok(MESSAGES))
    result = run("logs", "j1")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["2026-03-01T12:00:01Z  started", "2026-03-01T12:00:02Z  half way"]
    printed = json.loads(run("--json", "logs", "j1").stdout)
    assert [m["message"] for m in printed] == ["started", "half way"]


def test_logs_of_an_unknown_job_is_a_clean_error(fake):
    result = run("logs", "nope")
    assert result.exit_code == 1 and "not_found: job nope not found" in result.stderr


def scripted(updates: list[TaskUpdate], calls: list[dict[str, Any]]) -> Any:
    async def subscribe(ws_url: str, token: str, **topic: Any) -> AsyncIterator[TaskUpdate]:
        calls.append({"ws_url": ws_url, "token": token, **topic})
        for update in updates:
            yield update

    return subscribe


def at(second: int) -> datetime:
    return datetime(2026, 3, 1, 12, 0, second, tzinfo=UTC)


def test_logs_follow_prints_the_listed_messages_then_live_ones_until_the_job_completes(fake, monkeypatch):
    fake.on("GET", "/v1/jobs/j1", ok(FULL_JOB)).on("GET", "/v1/jobs/j1/messages", ok(MESSAGES))
    calls: list[dict[str, Any]] = []
    updates = [
        TaskUpdate("j1", 2, state=JobState.RUNNING, resync=True),
        # Appended while the listing was read: listed and sent live, printed once.
        TaskUpdate("j1", 3, message_to_append="half way", modified=at(2)),
        TaskUpdate("j1", 4, new_status="busy"),
        TaskUpdate("j1", 5, message_to_append="done sending", modified=at(9)),
        TaskUpdate("j1", 6, state=JobState.FINISHED, complete=True),
        TaskUpdate("j1", 7, message_to_append="never printed", modified=at(10)),
    ]
    monkeypatch.setattr(cli_module, "subscribe", scripted(updates, calls))
    result = run("logs", "j1", "--follow")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "2026-03-01T12:00:01Z  started",
        "2026-03-01T12:00:02Z  half way",
        "2026-03-01T12:00:09Z  done sending",
    ]
    assert calls == [{"ws_url": "ws://127.0.0.1:3001", "token": "tok", "job_id": "j1", "client": calls[0]["client"]}]


def test_logs_follow_of_a_complete_job_only_lists(fake, monkeypatch):
    fake.on("GET", "/v1/jobs/j1", ok(JOB | {"state": "finished", "complete": True}))
    fake.on("GET", "/v1/jobs/j1/messages", ok(MESSAGES))
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(cli_module, "subscribe", scripted([], calls))
    result = run("logs", "j1", "-f")
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 2
    assert calls == []


def test_logs_follow_json_prints_one_object_per_message(fake, monkeypatch):
    fake.on("GET", "/v1/jobs/j1", ok(FULL_JOB)).on("GET", "/v1/jobs/j1/messages", ok({"data": [], "next_cursor": None}))
    updates = [TaskUpdate("j1", 5, message_to_append="hi", modified=at(3), complete=True)]
    monkeypatch.setattr(cli_module, "subscribe", scripted(updates, []))
    result = run("--json", "logs", "j1", "--follow")
    assert [json.loads(line) for line in result.stdout.splitlines()] == [{"message": "hi", "at": "2026-03-01T12:00:03Z"}]


def test_submit_sends_the_priority_and_refuses_one_out_of_range(fake):
    fake.on("POST", "/v1/jobs", ok(JOB, 201))
    result = run("--json", "submit", "t", "--priority", "1")
    assert result.exit_code == 0, result.output
    assert json.loads(fake.requests[-1].content) == {"type": "t", "priority": 1}
    refused = run("submit", "t", "--priority", "5")
    assert refused.exit_code == 2 and len(fake.requests) == 1


def test_token_scopes_a_service_token_to_its_queues():
    import base64

    minted = CliRunner().invoke(app, ["token", "--secret", "s3cret", "--queues", "email.*, audit"])
    assert minted.exit_code == 0, minted.output
    claims = minted.stdout.strip().split(".")[1]
    body = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    assert (body["role"], body["queues"]) == ("service", ["email.*", "audit"])
    refused = CliRunner().invoke(app, ["token", "--secret", "s3cret", "--role", "user", "--queues", "x"])
    assert refused.exit_code == 2 and "--queues" in refused.output
