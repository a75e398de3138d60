"""Does a request get slower as the table grows? Claims and list pages at 200 and at 20,000 jobs.

One local cloud: 200 jobs are created (batches of 100) and each request is timed --samples
times; then the table is filled to --large jobs, all in the same queue (the worst case for
its index partition), and the same requests are timed again. Requests: a claim (its job is
aborted again, so the queue keeps its size), a list page of the queue, an unfiltered list
page (8 merged partitions), one job by id; each half once the stream's consumers have caught
up with the fill. Writes the "table-size" section of
docs/benchmarks.md; prints a JSON line with each median and the ratio large/small.

    .venv/bin/python bench/table_size.py [--small 200] [--large 20000] [--samples 60]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from report import write_section

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import LocalService, start_local_service, stop_local_service  # noqa: E402

QUEUE = "size"


def fill(local: LocalService, token: str, up_to: int, have: int) -> int:
    """Create jobs in batches of 100 until the queue holds up_to; returns how many there are."""

    def batch(size: int) -> None:
        creates = [{"type": QUEUE, "params": {"payload": "x" * 200}, "owner": f"User#{i % 100}"} for i in range(size)]
        reply = local.request("POST", "/v1/batch", token=token, body={"create": creates}, timeout=300)
        assert reply.status == 200, reply.body

    sizes = [min(100, up_to - n) for n in range(have, up_to, 100)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(batch, sizes))
    return up_to


def settle(local: LocalService, token: str, expected: int, deadline_s: float = 900) -> float:
    """Wait until the stream's consumers have caught up with the fill (the queue's counts,
    which follow the stream, show every job): a request timed while they still work through
    20,000 records would measure that backlog on the shared cores, not the table's size.
    Returns the seconds waited."""
    began = time.monotonic()
    while time.monotonic() - began < deadline_s:
        reply = local.request("GET", f"/v1/queues/{QUEUE}", token=token)
        if reply.status == 200 and sum(reply.body["counts"].values()) >= expected:
            return time.monotonic() - began
        time.sleep(1)
    raise RuntimeError(f"the queue's counts did not reach {expected} in {deadline_s} s")


def timed(samples: int, call: Callable[[], Any]) -> list[float]:
    found = []
    for _ in range(samples):
        began = time.perf_counter()
        call()
        found.append((time.perf_counter() - began) * 1000)
    return found


def measure(local: LocalService, token: str, samples: int) -> dict[str, float]:
    some_job = local.request("GET", f"/v1/jobs?type={QUEUE}&limit=1", token=token).body["data"][0]["id"]

    def claim() -> None:
        reply = local.request("POST", f"/v1/queues/{QUEUE}/claim", token=token, body={"timeout_ms": 60_000})
        assert reply.status == 200, reply.body
        job = reply.body
        assert (
            local.request("POST", f"/v1/jobs/{job['id']}/abort", token=token, body={"lease_token": job["lease_token"]}).status
            == 200
        )

    requests: dict[str, Callable[[], Any]] = {
        "claim": claim,
        "list_queue": lambda: local.request("GET", f"/v1/jobs?type={QUEUE}&limit=20", token=token),
        "list_all": lambda: local.request("GET", "/v1/jobs?limit=20", token=token),
        "get": lambda: local.request("GET", f"/v1/jobs/{some_job}", token=token),
    }
    for call in requests.values():  # warm every function's process first
        timed(3, call)
    return {name: statistics.median(timed(samples, call)) for name, call in requests.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=20_000)
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        local = start_local_service(Path(directory), extra_env={"JOBS_LOG": "compact"})
        try:
            token = local.token("service", "svc-size")
            fill(local, token, args.small, 0)
            settle(local, token, args.small)
            small = measure(local, token, args.samples)
            fill(local, token, args.large, args.small)
            settled_s = settle(local, token, args.large)
            large = measure(local, token, args.samples)
        finally:
            stop_local_service(local)
    result = {"small": small, "large": large, "ratio": {k: large[k] / small[k] for k in small}}
    print(json.dumps(result))
    labels = {"claim": "claim (+ abort)", "list_queue": "list page, one queue", "list_all": "list page, all jobs",
              "get": "one job by id"}  # fmt: skip
    lines = [
        "## Table size: a request at 200 and at 20,000 jobs",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} by `bench/table_size.py --small {args.small} --large {args.large}"
        f" --samples {args.samples}` against `make run`: one local cloud, the medians of {args.samples} requests",
        f"each with {args.small:,} jobs in the table, then the same with {args.large:,}, all in one queue. Each",
        "half is timed once the stream's consumers have caught up with the fill (the queue's counts show",
        f"every job; {settled_s:.0f} s after the last batch of the large fill), so that the requests do not",
        "share the two cores with a backlog of stream records.",
        "",
        f"| request | {args.small:,} jobs | {args.large:,} jobs | ratio | bound |",
        "|---|---:|---:|---:|---|",
    ]
    for name, label in labels.items():
        ratio = result["ratio"][name]
        verdict = "ok" if ratio <= 1.5 else "MISSED"
        lines.append(f"| {label} | {small[name]:.1f} ms | {large[name]:.1f} ms | {ratio:.2f} | within 1.5x: {verdict} |")
    write_section(args.out, "table-size", lines)


if __name__ == "__main__":
    main()
