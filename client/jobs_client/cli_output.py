"""How the `jobs` command line prints: JSON, a job as rows, messages, spans and sparklines."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from rich.console import Console
from rich.table import Table

from .models import Job

out = Console()
err = Console(stderr=True)

BLOCKS = "▁▂▃▄▅▆▇█"


def plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, Enum):
        return value.value
    return value


def print_json(value: Any) -> None:
    out.print_json(json.dumps(plain(value)))


def show_job(as_json: bool, job: Job | None) -> None:
    if as_json:
        print_json(job)
        return
    if job is None:
        out.print("none")
        return
    table = Table(show_header=False, box=None)
    for name in ("id", "type", "state", "priority", "owner", "title", "status", "attempts", "version", "lease_owner"):
        table.add_row(name, str(plain(getattr(job, name)) if getattr(job, name) is not None else ""))
    for name in ("schedule", "created", "started", "completed", "available_at", "execute_until", "locked_until"):
        if getattr(job, name) is not None:
            table.add_row(name, str(plain(getattr(job, name))))
    if job.params is not None:
        table.add_row("params", json.dumps(job.params))
    if job.progress is not None:
        fraction = job.progress.fraction
        done = f" ({fraction:.0%})" if fraction is not None else ""
        table.add_row("progress", f"{job.progress.current}/{job.progress.maximum}{done} {job.progress.title or ''}".rstrip())
    if job.speeds:
        table.add_row("speeds", "  ".join(speed_text(s) for s in job.speeds))
    if job.error is not None:
        table.add_row("error", f"{job.error.code}: {job.error.message}")
    if job.lease_token:
        table.add_row("lease_token", job.lease_token)
    if job.result is not None:
        table.add_row("result", json.dumps(job.result))
    out.print(table)


def speed_text(speed: Any) -> str:
    return str(speed.as_text or f"{speed.speed} {speed.unit or ''}".strip())


def print_message(as_json: bool, at: datetime | None, message: str) -> None:
    if as_json:
        out.print(json.dumps({"message": message, "at": plain(at)}), highlight=False, soft_wrap=True)
    else:
        out.print(f"{plain(at)}  {message}", highlight=False, soft_wrap=True)


def human_span(span: timedelta | None) -> str:
    """`3s`, `2m 5s`, `1h 4m`, `2d 3h`; `—` for none."""
    if span is None:
        return "—"
    seconds = max(0, int(span.total_seconds()))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {seconds}s"
    return f"{seconds}s"


def sparkline(values: Sequence[int]) -> str:
    """One block per value, scaled to the largest; the lowest block only for zero, so that a
    quiet minute never looks like a busy one."""
    top = max(values, default=0)
    if top <= 0:
        return BLOCKS[0] * len(values)
    levels = len(BLOCKS) - 1
    return "".join(BLOCKS[0] if v <= 0 else BLOCKS[min(levels, -(-v * levels // top))] for v in values)


def yes_no(value: bool) -> str:
    return "yes" if value else "no"
