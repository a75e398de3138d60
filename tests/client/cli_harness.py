"""What the CLI's tests share: the CLI run against a scripted service, and its output as words."""

from __future__ import annotations

from datetime import UTC, datetime

from jobs_client.cli import app
from typer.testing import CliRunner, Result

NOW = datetime(2026, 3, 1, 12, 2, 5, tzinfo=UTC)  # 2m 5s after queue_wire's oldest_pending_at


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, ["--url", "http://jobs.test", "--token", "tok", *args], input=input, env={"COLUMNS": "200"})


def lines(result: Result) -> list[list[str]]:
    return [line.split() for line in result.stdout.splitlines() if line.strip()]
