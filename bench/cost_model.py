"""What a job's life costs: DynamoDB units per operation, and dollars per million job lives at
list prices, beside SQS.

Drives the engine on moto (no HTTP, a manual clock), meters every DynamoDB request with
tests/support/capacity.py (units from the template's own keys and projections), then prices
a life line by line: API Gateway, Lambda (the route and the authorizer that runs before it),
DynamoDB on-demand, the stream consumers, WebSocket messages. Writes the "cost" section of
docs/benchmarks.md.

    .venv/bin/python bench/cost_model.py [--base REV] [--out docs/benchmarks.md]

With `--base`, the same figures of an earlier commit, measured by this very script on that
commit's engine, template and meter (a `git worktree`, its packages first on the path, as
bench/against.py does), are printed beside these: the design before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from against import shim
from report import write_section

ROOT = Path(__file__).resolve().parent.parent

# List prices, us-east-1, on-demand, after free tiers (checked 2026-12).
PRICE = {
    "http_request": 1.00e-6,  # HTTP API, per request (first 300 million a month)
    "lambda_request": 0.20e-6,  # per invocation
    "lambda_gb_s": 0.0000133334,  # arm64, per GB-second
    "write_unit": 0.625e-6,  # DynamoDB on-demand write request unit
    "read_unit": 0.125e-6,  # DynamoDB on-demand read request unit
    "ws_message": 1.00e-6,  # WebSocket message (32 KB steps)
    "ws_connection_minute": 0.25e-6,
    "sqs_request": 0.40e-6,  # SQS standard, per request (64 KB steps)
}
# Assumptions, stated: billed milliseconds of a warm invocation and its memory (template).
MEMORY_GB = 0.5
ROUTE_MS = 25  # one or two DynamoDB calls
AUTHORIZER_MS = 5  # an HS256 check, secret cached
STREAM_BATCH = 100  # records per stream batch under load (fan-out BatchSize)
STREAM_BATCH_MS = 100
MONTH_S = 30 * 24 * 3600
LONG_POLL_S = 20
# A worker waiting on the WebSocket (jobs_client/waker.py): its safety poll, its ping, and
# the 2 hours after which API Gateway closes a connection (it reconnects and subscribes).
SAFETY_POLL_S = 30
PING_S = 240
CONNECTION_S = 2 * 3600
PING_MS = 5
PING_MEMORY_GB = 0.125


@dataclass
class Engine:
    service: Any
    clock: Any
    meter: Any
    svc: Any
    client: Any


def engine() -> tuple[Engine, Any]:
    """The engine on moto, its DynamoDB client metered; returns it and the mock to stop."""
    import boto3
    from moto import mock_aws

    from jobcore.clock import ManualClock
    from jobcore.engine import Engine as JobsEngine
    from jobcore.model import Principal, Role
    from jobcore.observability import Recorder
    from jobcore.settings import Settings
    from jobcore.store import TableStore
    from localcloud.template import create_tables, load_template, tables
    from tests.support.capacity import CapacityMeter, TableShape
    from tests.support.jobs import Jobs

    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    mock = mock_aws()
    mock.start()
    template = load_template()
    client = boto3.client("dynamodb", region_name="us-east-1")
    names = {"JobsTable": "jobs", "ConnectionsTable": "connections"}
    create_tables(client, template, names)
    shapes = {names[logical]: TableShape.from_template(props) for logical, props in tables(template).items()}
    meter = CapacityMeter(boto3.client("dynamodb", region_name="us-east-1"), shapes).attach(client)
    clock = ManualClock(datetime(2026, 12, 1, tzinfo=UTC))
    settings = Settings(table_name="jobs", cursor_key=b"bench-cursor-key")
    jobs = Jobs(JobsEngine(TableStore(client, "jobs"), settings, clock=clock, rng=random.Random(1), count=Recorder()))
    return Engine(jobs, clock, meter, Principal("svc", Role.SERVICE), client), mock


def measure(e: Engine, step: Callable[[], Any]) -> tuple[Any, Any]:
    e.clock.advance(1)
    e.meter.reset()
    result = step()
    return result, e.meter.reset()


def operations(e: Engine, params: dict[str, Any]) -> dict[str, Any]:
    """Each operation alone, on a queue that has been used (its settings registered)."""
    s, svc, q = e.service, e.svc, "cost"
    fields = {"type": q, "params": params, "owner": "User#1", "title": "a job"}
    s.create(svc, {"type": q})
    s.claim(svc, q, {"timeout_ms": 60_000})
    s.create(svc, {"type": "cost-unique"})
    units: dict[str, Any] = {}
    job, units["create"] = measure(e, lambda: s.create(svc, fields).job)
    _, units["create unique"] = measure(
        e, lambda: s.create(svc, {**fields, "type": "cost-unique", "ref_id": "r1", "unique": True})
    )
    _, units["get"] = measure(e, lambda: s.get(svc, job.id))
    _, units["list page (50)"] = measure(e, lambda: s.list_jobs(svc, {"limit": 50}))
    leased, units["claim"] = measure(e, lambda: s.claim(svc, q, {"timeout_ms": 60_000}))
    token = {"lease_token": leased.lease_token}
    _, units["extend (heartbeat)"] = measure(e, lambda: s.extend(svc, leased.id, {**token, "timeout_ms": 60_000}))
    _, units["status"] = measure(
        e, lambda: s.post_status(svc, leased.id, {**token, "new_status": "half way", "progress": {"current": 1, "maximum": 2}})
    )
    _, units["status + message"] = measure(e, lambda: s.post_status(svc, leased.id, {**token, "message_to_append": "step done"}))
    _, units["complete"] = measure(e, lambda: s.complete(svc, leased.id, {**token, "result": {"ok": True}}))
    s.create(svc, fields)
    e.clock.advance(1)
    other = s.claim(svc, q, {"timeout_ms": 60_000})
    _, units["fail (retry left)"] = measure(
        e, lambda: s.fail(svc, other.id, {"lease_token": other.lease_token, "error": {"code": "x", "message": "y"}})
    )
    return units


def life(e: Engine, params: dict[str, Any]) -> Any:
    """create, claim, three status posts with a message, complete: the issue's job life."""
    from tests.support.capacity import Units

    s, svc, q = e.service, e.svc, "life"
    s.create(svc, {"type": q})
    s.claim(svc, q, {"timeout_ms": 60_000})
    total = Units()
    _, used = measure(e, lambda: s.create(svc, {"type": q, "params": params, "owner": "User#1", "title": "a job"}))
    total.add(used)
    leased, used = measure(e, lambda: s.claim(svc, q, {"timeout_ms": 60_000}))
    total.add(used)
    for step in range(3):
        _, used = measure(e, lambda step=step: s.post_status(svc, leased.id, {
            "lease_token": leased.lease_token, "new_status": f"step {step}", "message_to_append": f"step {step} done",
            "progress": {"current": step + 1, "maximum": 3}}))  # fmt: skip
        total.add(used)
    _, used = measure(e, lambda: s.complete(svc, leased.id, {"lease_token": leased.lease_token, "result": {"ok": True}}))
    total.add(used)
    return total


def idle_poll(e: Engine) -> Any:
    """One long poll of an empty queue, to its end: what a waiting worker costs each time."""
    s, svc = e.service, e.svc
    s.create(svc, {"type": "idle"})
    s.claim(svc, "idle", {"timeout_ms": 60_000})  # the queue exists, and is empty now
    _, used = measure(e, lambda: s.claim(svc, "idle", {"timeout_ms": 60_000, "wait_ms": LONG_POLL_S * 1000}))
    return used


def idle_on_the_socket(e: Engine) -> dict[str, Any] | None:
    """What a worker waiting on the WebSocket makes DynamoDB do: a safety poll (a claim
    that does not wait, on an empty queue), and per connection its connect, one work
    subscription and its disconnect. None for a design without work notices."""
    from jobcore.live.messages import Topic
    from jobcore.live.subscriptions import Subscriptions
    from jobcore.settings import LiveSettings
    from jobcore.store import TableStore

    s, svc = e.service, e.svc
    try:  # a design with work notices
        from jobcore.live.messages import work_notice_of  # noqa: F401
    except ImportError:
        return None
    s.create(svc, {"type": "idle"})
    s.claim(svc, "idle", {"timeout_ms": 60_000})
    _, poll = measure(e, lambda: s.claim(svc, "idle", {"timeout_ms": 60_000}))
    live = Subscriptions(TableStore(e.client, "connections"), LiveSettings(connections_table="connections"))
    _, connected = measure(e, lambda: live.connect("c1", svc))
    _, subscribed = measure(e, lambda: live.subscribe("c1", svc, Topic("work", "idle")))
    _, gone = measure(e, lambda: live.disconnect("c1"))
    per_connection = connected
    per_connection.add(subscribed)
    per_connection.add(gone)
    return {"safety_poll": _plain(poll), "per_connection": _plain(per_connection)}


def idle_month_on_the_socket(poll: Any, per_connection: Any) -> list[tuple[str, float]]:
    """One idle worker a month, waiting on the WebSocket (jobs_client.Worker's defaults)."""
    polls, pings, connections = MONTH_S / SAFETY_POLL_S, MONTH_S / PING_S, MONTH_S / CONNECTION_S
    # Per connection: the authorizer and $connect, one subscribe (message and reply), $disconnect.
    connection_invocations = 4
    connection_gb_s = (AUTHORIZER_MS + 3 * ROUTE_MS) / 1000 * MEMORY_GB
    return [
        ("WebSocket connection-minutes", MONTH_S / 60 * PRICE["ws_connection_minute"]),
        ("WebSocket messages (a ping and its pong every 4 min; subscribe and reply per connection)",
         (2 * pings + 2 * connections) * PRICE["ws_message"]),
        ("Lambda for pings (128 MB) and per connection (authorizer, $connect, subscribe, $disconnect)",
         (pings + connections * connection_invocations) * PRICE["lambda_request"]
         + (pings * PING_MS / 1000 * PING_MEMORY_GB + connections * connection_gb_s) * PRICE["lambda_gb_s"]),
        (f"safety polls: a claim that does not wait, every {SAFETY_POLL_S:.0f} s (HTTP, claim + authorizer)",
         polls * (PRICE["http_request"] + 2 * PRICE["lambda_request"]
                  + (ROUTE_MS + AUTHORIZER_MS) / 1000 * MEMORY_GB * PRICE["lambda_gb_s"])),
        ("DynamoDB: the safety polls' reads, each connection's writes",
         polls * poll.read_units * PRICE["read_unit"]
         + connections * (per_connection.write_units * PRICE["write_unit"] + per_connection.read_units * PRICE["read_unit"])),
    ]  # fmt: skip


def dollars_of_life(units: Any, http_ops: int, repair_checks: int = 0) -> list[tuple[str, float]]:
    """Dollars per job life, line by line; `repair_checks`: reads of a message log entry by
    the counting consumer (one per appended message, where the design has them)."""
    invocations = http_ops * 2  # each route runs the authorizer first (no caching)
    gb_s = http_ops * (ROUTE_MS + AUTHORIZER_MS) / 1000 * MEMORY_GB
    # Two stream consumers read every job record; each batch is one invocation. The fan-out
    # looks up the job's subscribers once per record (0.5 units, eventually consistent).
    stream_invocations = 2 * units.job_records / STREAM_BATCH
    return [
        ("API Gateway HTTP requests", http_ops * PRICE["http_request"]),
        ("Lambda invocations (routes + authorizer)", invocations * PRICE["lambda_request"]),
        ("Lambda duration (routes + authorizer)", gb_s * PRICE["lambda_gb_s"]),
        ("DynamoDB writes", units.write_units * PRICE["write_unit"]),
        ("DynamoDB reads", units.read_units * PRICE["read_unit"]),
        ("Stream consumers (invocations, duration, subscriber lookups, message log checks)",
         stream_invocations * (PRICE["lambda_request"] + STREAM_BATCH_MS / 1000 * MEMORY_GB * PRICE["lambda_gb_s"])
         + (units.job_records + repair_checks) * 0.5 * PRICE["read_unit"]),
        ("WebSocket messages (nobody watching; +$1 per million per change watched)", 0.0),
    ]  # fmt: skip


def sqs_lines() -> dict[str, list[tuple[str, float]]]:
    consumer_gb_s = ROUTE_MS / 1000 * MEMORY_GB  # the same work per message, 10 to a batch
    return {
        "SQS standard (send, receive, delete)": [("SQS requests", 3 * PRICE["sqs_request"])],
        "SQS + a Lambda consumer (batches of 10)": [
            ("SQS send", PRICE["sqs_request"]),
            ("SQS receive + delete, batched by the event source", 0.2 * PRICE["sqs_request"]),
            ("Lambda invocations", 0.1 * PRICE["lambda_request"]),
            ("Lambda duration", consumer_gb_s * PRICE["lambda_gb_s"]),
        ],
    }


def idle_month(poll: Any) -> list[tuple[str, float]]:
    polls = MONTH_S / LONG_POLL_S
    return [
        ("API Gateway HTTP requests", polls * PRICE["http_request"]),
        ("Lambda invocations (claim + authorizer)", polls * 2 * PRICE["lambda_request"]),
        ("Lambda duration (the claim held 20 s, the authorizer)",
         polls * (LONG_POLL_S + AUTHORIZER_MS / 1000) * MEMORY_GB * PRICE["lambda_gb_s"]),
        ("DynamoDB reads while polling", polls * poll.read_units * PRICE["read_unit"]),
    ]  # fmt: skip


def units_row(name: str, u: Any, before: Any = None) -> str:
    """One row; with `before`, each unit total followed by the earlier design's."""
    by_index = ", ".join(f"{k.split('/')[-1]} {v}" for k, v in sorted(u.writes.items()) if "/" in k) or "none"
    table = sum(v for k, v in u.writes.items() if "/" not in k)
    requests = ", ".join(f"{k} {v}" for k, v in sorted(u.requests.items()))
    writes, reads = f"{u.write_units:g}", f"{u.read_units:g}"
    if before is not None:
        ratio = f", {u.write_units / before.write_units:.2f}x" if before.write_units else ""
        writes += f" (was {before.write_units:g}{ratio})"
        reads += f" (was {before.read_units:g})"
    return f"| {name} | {requests} | {table} | {by_index} | {writes} | {reads} |"


def figures() -> dict[str, Any]:
    """Every figure of the engine on the path (this tree's, or a worktree's), as JSON."""
    e, mock = engine()
    try:
        small, big = {"n": 1}, {"blob": "x" * 100 * 1024}
        ops = operations(e, small)
        lives = {"small job (params under 100 B)": life(e, small), "job with 100 KiB of params": life(e, big)}
        poll = idle_poll(e)
        socket = idle_on_the_socket(e)
    finally:
        mock.stop()
    try:  # a design whose stream consumer checks each appended message's log entry
        import jobcore.engine.message_log  # noqa: F401

        repair_checks = 3
    except ImportError:
        repair_checks = 0
    return {"operations": {k: _plain(u) for k, u in ops.items()}, "lives": {k: _plain(u) for k, u in lives.items()},
            "idle_poll": _plain(poll), "idle_on_the_socket": socket, "repair_checks_per_life": repair_checks}  # fmt: skip


def _plain(u: Any) -> dict[str, Any]:
    return {"writes": dict(u.writes), "reads": dict(u.reads), "requests": dict(u.requests), "job_records": u.job_records}


def _units(plain: dict[str, Any]) -> Any:
    from collections import Counter

    from tests.support.capacity import Units

    return Units(Counter(plain["writes"]), Counter(plain["reads"]), Counter(plain["requests"]), plain["job_records"])


def measured_at(revision: str | None) -> dict[str, Any]:
    """This script's figures, run on `revision` (None: the working tree) in a process of its own."""
    with tempfile.TemporaryDirectory() as scratch:
        tree, env = ROOT, dict(os.environ)
        if revision:
            tree = Path(scratch) / "tree"
            subprocess.run(["git", "worktree", "add", "--detach", str(tree), revision], cwd=ROOT, check=True,
                           capture_output=True)  # fmt: skip
        try:
            packages = shim(tree, Path(scratch) / "packages")
            env["PYTHONPATH"] = f"{packages}{os.pathsep}{tree}"
            done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--measure"], cwd=tree, env=env,
                                  capture_output=True, text=True, check=False)  # fmt: skip
        finally:
            if revision:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"measuring {revision or 'the working tree'} failed:\n{done.stderr[-4000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--base", help="an earlier commit, measured beside this tree")
    parser.add_argument("--measure", action="store_true", help="print this tree's figures as JSON (used by --base)")
    args = parser.parse_args()
    if args.measure:
        sys.path.insert(0, str(Path.cwd()))
        print(json.dumps(figures()))
        return
    sys.path.insert(0, str(ROOT))
    head = measured_at(None)
    base = measured_at(args.base) if args.base else None
    lines = report(head, base, args.base)
    write_section(args.out, "cost", lines)
    print("\n".join(lines))


def report(head: dict[str, Any], base: dict[str, Any] | None, base_name: str | None) -> list[str]:
    ops = {k: _units(v) for k, v in head["operations"].items()}
    lives = {k: _units(v) for k, v in head["lives"].items()}
    poll = _units(head["idle_poll"])

    def was(part: str, name: str) -> Any:
        return _units(base[part][name]) if base and name in base[part] else None

    compared = f"; beside each, the same figure of {base_name} (`--base {base_name}`), the design before" if base else ""
    command = "bench/cost_model.py" + (f" --base {base_name}" if base else "")
    lines = ["## Cost: units per operation and dollars per million job lives", "",
             "Computed " + datetime.now(UTC).strftime("%Y-%m-%d") + f" by `{command}`: the engine on moto "
             "with a manual clock, every "
             "DynamoDB request metered by `tests/support/capacity.py` (units from template.yaml's keys and index "
             "projections by DynamoDB's documented rules); `tests/unit/test_capacity_units.py` asserts the same "
             f"figures{compared}.", "", "### DynamoDB units per operation (a small job)", "",
             "| operation | requests | table write units | index write units | write units | read units |",
             "|---|---|---:|---|---:|---:|"]  # fmt: skip
    lines += [units_row(name, u, was("operations", name)) for name, u in ops.items()]
    lines += ["", "### A job's life: create, claim, three status posts with a message, complete", "",
              "| job | requests | table write units | index write units | write units | read units |",
              "|---|---|---:|---|---:|---:|"]  # fmt: skip
    lines += [units_row(name, u, was("lives", name)) for name, u in lives.items()]
    lines += ["", "### Dollars per million job lives, line by line (list prices, us-east-1)", ""]
    columns = {name: dollars_of_life(u, http_ops=6, repair_checks=head["repair_checks_per_life"])
               for name, u in lives.items()} | sqs_lines()  # fmt: skip
    before = {name: dollars_of_life(_units(u), http_ops=6, repair_checks=base["repair_checks_per_life"])
              for name, u in base["lives"].items()} if base else {}  # fmt: skip
    for name, items in columns.items():
        total = sum(v for _, v in items)
        then = f" ({base_name}: ${sum(v for _, v in before[name]) * 1e6:,.2f})" if name in before else ""
        lines += [f"**{name}: ${total * 1e6:,.2f} per million**{then}", ""]
        lines += [f"- {label}: ${value * 1e6:,.2f}" for label, value in items] + [""]
    idle = idle_month(poll)
    lines += ["### One idle worker, per month", "",
              f"A worker waiting on an empty queue long-polls a claim for {LONG_POLL_S} s, "
              f"{MONTH_S / LONG_POLL_S:,.0f} times a month; each poll makes {dict(poll.requests)} "
              f"({poll.read_units:g} read units).", ""]  # fmt: skip
    lines += [f"- {label}: ${value:,.2f}" for label, value in idle]
    polling_total = sum(v for _, v in idle)
    lines += [
        f"- **total: ${polling_total:,.2f} per idle worker per month** "
        f"(SQS long polling: {MONTH_S / 20:,.0f} empty receives, ${MONTH_S / 20 * PRICE['sqs_request']:,.2f})",
        "",
    ]
    socket = head.get("idle_on_the_socket")
    if socket:
        waiting = idle_month_on_the_socket(_units(socket["safety_poll"]), _units(socket["per_connection"]))
        total = sum(v for _, v in waiting)
        lines += ["Waiting on the WebSocket instead (`jobs_client.Worker` with a WebSocket URL, its default when "
                  "`JOBS_WS_URL` is set): a work notice wakes it; it claims without waiting every "
                  f"{SAFETY_POLL_S} s for work no notice announces, pings every {PING_S // 60} min, and reconnects "
                  f"every {CONNECTION_S // 3600} h. Each safety poll makes {dict(_units(socket['safety_poll']).requests)}; "
                  f"each connection's DynamoDB requests {dict(_units(socket['per_connection']).requests)} "
                  f"({_units(socket['per_connection']).write_units:g} write units).", ""]  # fmt: skip
        lines += [f"- {label}: ${value:,.4f}" for label, value in waiting]
        lines += [f"- **total: ${total:,.2f} per idle worker per month**, {polling_total / total:,.0f}x less than "
                  "long polling", ""]  # fmt: skip
    lines += [
              f"Assumptions: a warm route bills {ROUTE_MS} ms and the authorizer {AUTHORIZER_MS} ms at "
              f"{MEMORY_GB * 1024:.0f} MB; stream batches of {STREAM_BATCH} records, {STREAM_BATCH_MS} ms each; "
              "stream reads by Lambda are free; storage is not counted (a finished job is kept RetentionDays)."]  # fmt: skip
    return lines


if __name__ == "__main__":
    main()
