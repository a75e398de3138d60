"""The `jobs schedules` and `jobs schedule` commands against a scripted service."""

from __future__ import annotations

import json

import pytest
from jobs_client.cli import app
from typer.testing import CliRunner

from tests.client.cli_harness import lines, run
from tests.client.test_queue_client import error, ok
from tests.client.test_schedule_client import schedule_wire

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
