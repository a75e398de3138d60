"""The `jobs` command line against a fake service: the client it builds is put on the fake's
transport (cli.client_factory), the clock lags are measured at is fixed, and the live
subscription is replaced by a scripted one. Nothing sleeps, nothing listens."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from jobs_client import JobsClient, JobState, RetryPolicy, TaskUpdate
from jobs_client import cli as cli_module
from jobs_client.cli import app, human_span, sparkline
from typer.testing import CliRunner, Result

from tests.client.test_queue_client import JOB, Fake, error, ok, queue_wire
from tests.client.test_schedule_client import schedule_wire

NOW = datetime(2026, 3, 1, 12, 2, 5, tzinfo=UTC)  # 2m 5s after queue_wire's oldest_pending_at


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Fake:
    service = Fake()

    def client(url: str, token: str) -> JobsClient:
        assert (url, token) == ("http://jobs.test", "tok")
        return JobsClient(
            url, token, transport=httpx.MockTransport(service.handle), retry=RetryPolicy(max_attempts=1), sleep=lambda _s: None
        )

    monkeypatch.setattr(cli_module, "client_factory", client)
    monkeypatch.setattr(cli_module, "clock", lambda: NOW)
    return service


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, ["--url", "http://jobs.test", "--token", "tok", *args], input=input, env={"COLUMNS": "200"})


def lines(result: Result) -> list[list[str]]:
    return [line.split() for line in result.stdout.splitlines() if line.strip()]


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


# -- schedules ----------------------------------------------------------------------------


def test_schedules_prints_cadence_type_paused_and_runs(fake):
    every = schedule_wire("every5", cron=None, every_ms=300_000, timezone="UTC", paused=True, next_run_at=None, last_run_at=None,
                          last_job_id=None)  # fmt: skip
    fake.on("GET", "/v1/schedules", ok({"data": [schedule_wire(), every], "next_cursor": None}))
    result = run("schedules", "--prefix", "n")
    assert result.exit_code == 0, result.output
    assert lines(result)[0] == ["name", "cadence", "timezone", "type", "paused", "next", "run", "(UTC)", "last", "run", "(UTC)",
                                "last", "job"]  # fmt: skip
    rows = {row[0]: row[1:] for row in lines(result) if row and row[0] in ("nightly", "every5")}
    assert rows["nightly"] == ["0", "2", "*", "*", "*", "Europe/Berlin", "reports", "no", "2026-03-02", "01:00:00", "2026-03-01",
                               "12:00:00", "j9"]  # fmt: skip
    assert rows["every5"] == ["every", "5m", "UTC", "reports", "yes", "—", "—", "—"]
    assert fake.sent() == [("GET", "/v1/schedules", {"prefix": "n", "limit": "100"}, None)]


def test_schedules_json_prints_every_page_of_schedules(fake):
    fake.on(
        "GET",
        "/v1/schedules",
        ok({"data": [schedule_wire("a")], "next_cursor": "c2"}),
        ok({"data": [schedule_wire("b")], "next_cursor": None}),
    )
    result = run("--json", "schedules")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert [s["name"] for s in printed] == ["a", "b"]
    assert printed[0]["job"]["type"] == "reports" and printed[0]["next_run_at"] == "2026-03-02T01:00:00Z"


def test_schedule_put_sends_the_cadence_and_the_job_and_says_it_created(fake):
    fake.on("PUT", "/v1/schedules/nightly", ok(schedule_wire(), 201), ok(schedule_wire(cron=None, every_ms=3_600_000)))
    result = run("schedule", "put", "nightly", "--cron", "0 2 * * *", "--timezone", "Europe/Berlin", "--type", "reports",
                 "--params", '{"kind": "daily"}', "--title", "Nightly", "--owner", "ops", "--priority", "1",
                 "--max-retries", "3", "--ttl-ms", "60000", "--paused")  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = {row[0]: row[1:] for row in lines(result) if row}
    assert rows["cron"] == ["0", "2", "*", "*", "*"] and rows["timezone"] == ["Europe/Berlin"] and rows["type"] == ["reports"]
    assert rows["params"] == ['{"kind":', '"daily"}'] and rows["next_run_at"] == ["2026-03-02T01:00:00Z"]
    assert result.stdout.splitlines()[-1] == "schedule nightly created"
    replaced = run("schedule", "put", "nightly", "--every-ms", "3600000", "--type", "reports")
    assert replaced.exit_code == 0, replaced.output
    assert ["every_ms", "3600000", "(1h)"] in lines(replaced) and "schedule nightly replaced" in replaced.stdout
    assert [b for _, _, _, b in fake.sent()] == [
        {
            "cron": "0 2 * * *",
            "timezone": "Europe/Berlin",
            "job": {"type": "reports", "title": "Nightly", "owner": "ops", "priority": 1, "max_retries": 3, "ttl_ms": 60000,
                    "params": {"kind": "daily"}},
            "paused": True,
        },
        {"every_ms": 3_600_000, "job": {"type": "reports"}},
    ]  # fmt: skip


def test_schedule_put_json_prints_only_the_schedule(fake):
    fake.on("PUT", "/v1/schedules/nightly", ok(schedule_wire(), 201))
    result = run("--json", "schedule", "put", "nightly", "--cron", "0 2 * * *", "--type", "reports")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert (printed["name"], printed["cron"], printed["version"]) == ("nightly", "0 2 * * *", 4)


@pytest.mark.parametrize(
    "args",
    [
        ["--type", "reports"],  # no cadence
        ["--type", "reports", "--cron", "* * * * *", "--every-ms", "60000"],  # both
        ["--type", "reports", "--every-ms", "59999"],  # below the contract's minimum
        ["--type", "reports", "--cron", "* * * * *", "--priority", "5"],
        ["--type", "reports", "--cron", "* * * * *", "--params", "{not json"],
        ["--cron", "* * * * *"],  # no type
    ],
)
def test_schedule_put_refuses_what_the_service_would_and_asks_nothing(fake, args):
    result = run("schedule", "put", "nightly", *args)
    assert result.exit_code == 2, result.output
    assert fake.requests == []


def test_schedule_put_refused_by_the_service_is_the_contracts_error(fake):
    fake.on("PUT", "/v1/schedules/nightly", error(400, "invalid_request", timezone="unknown time zone"))
    result = run("schedule", "put", "nightly", "--cron", "0 2 * * *", "--timezone", "Mars/Olympus", "--type", "reports")
    assert result.exit_code == 1
    assert "invalid_request: invalid_request happened" in result.stderr
    assert '{"timezone": "unknown time zone"}' in result.stderr


def test_schedule_show_prints_the_schedule_and_its_template(fake):
    job = {
        "type": "reports",
        "params": None,
        "title": "Nightly",
        "owner": None,
        "max_retries": None,
        "ttl_ms": 5000,
        "priority": 2,
    }
    fake.on("GET", "/v1/schedules/nightly", ok(schedule_wire(job=job)))
    result = run("schedule", "show", "nightly")
    assert result.exit_code == 0, result.output
    rows = {row[0]: row[1:] for row in lines(result) if row}
    assert rows["name"] == ["nightly"] and rows["paused"] == ["no"] and rows["title"] == ["Nightly"]
    # max_retries sent as null means no limit; owner and params sent as null are left out.
    assert rows["max_retries"] == ["unlimited"] and rows["ttl_ms"] == ["5000"] and rows["priority"] == ["2"]
    assert "owner" not in rows and "params" not in rows and "every_ms" not in rows
    assert rows["last_run_at"] == ["2026-03-01T12:00:00Z"] and rows["last_job_id"] == ["j9"] and rows["version"] == ["4"]
    printed = json.loads(run("--json", "schedule", "show", "nightly").stdout)
    assert printed["job"] == job and printed["timezone"] == "Europe/Berlin"
    assert [(m, p) for m, p, _, _ in fake.sent()] == [("GET", "/v1/schedules/nightly")] * 2


def test_schedule_show_of_an_unknown_schedule_is_a_clean_error(fake):
    result = run("schedule", "show", "nope")
    assert result.exit_code == 1
    assert "not_found: schedule nope not found" in result.stderr
    assert result.stdout == "" and "Traceback" not in result.output


def test_schedule_pause_and_resume_patch_paused_and_print_the_schedule(fake):
    fake.on("PATCH", "/v1/schedules/nightly", ok(schedule_wire(paused=True, next_run_at=None)), ok(schedule_wire()))
    paused = run("schedule", "pause", "nightly")
    assert paused.exit_code == 0, paused.output
    assert ["paused", "yes"] in lines(paused) and ["next_run_at", "—"] in lines(paused)
    resumed = run("--json", "schedule", "resume", "nightly")
    assert resumed.exit_code == 0, resumed.output
    printed = json.loads(resumed.stdout)
    assert printed["paused"] is False and printed["next_run_at"] == "2026-03-02T01:00:00Z"
    assert [(m, p, b) for m, p, _, b in fake.sent()] == [
        ("PATCH", "/v1/schedules/nightly", {"paused": True}),
        ("PATCH", "/v1/schedules/nightly", {"paused": False}),
    ]


def test_schedule_delete_prints_it_as_it_was_and_a_missing_one_is_the_contracts_error(fake):
    fake.on("DELETE", "/v1/schedules/nightly", ok(schedule_wire(version=9)))
    deleted = run("schedule", "delete", "nightly")
    assert deleted.exit_code == 0, deleted.output
    assert ["name", "nightly"] in lines(deleted) and ["version", "9"] in lines(deleted)
    assert json.loads(run("--json", "schedule", "delete", "nightly").stdout)["version"] == 9
    missing = run("schedule", "delete", "nope")
    assert missing.exit_code == 1 and "not_found: not_found happened" in missing.stderr
    assert [(m, p) for m, p, _, _ in fake.sent()] == [
        ("DELETE", "/v1/schedules/nightly"),
        ("DELETE", "/v1/schedules/nightly"),
        ("DELETE", "/v1/schedules/nope"),
    ]


def test_schedule_without_a_command_prints_its_help():
    result = CliRunner().invoke(app, ["schedule"], env={"COLUMNS": "200"})
    assert result.exit_code == 2  # as `jobs` alone: a usage error, with the help
    for command in ("put", "show", "pause", "resume", "delete"):
        assert command in result.output
