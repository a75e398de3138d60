"""Claims under load, over the local cloud's HTTP API.

--workers processes (each a JobsClient) claim and complete jobs until the queue is empty:
first --jobs jobs in one queue, then the same number spread over --queues queues (workers
split evenly). Measured: jobs per second, claim latency (p50, p99), conflicts per successful
claim (conditional writes a claim lost to another worker, from the claim function's
LeaseConflicts metric), and duplicates (a job leased twice: must be 0). Results go to
docs/benchmarks.md. With --fifo, the one-queue run is repeated on a fifo queue (claims take
strictly the oldest visible job), to show what strict order costs in conflicts.

    .venv/bin/python bench/claim_load.py [--jobs 2000] [--workers 16] [--queues 4] [--fifo]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from report import write_section

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import LocalService, start_local_service, stop_local_service  # noqa: E402

LEASE_MS = 120_000  # longer than the run: every second lease of a job is a duplicate


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def work(url: str, token: str, queue: str, results: Any, start: Any) -> None:
    """One worker process: claim and complete until the queue answers 'none' three times."""
    from jobs_client import JobsClient, JobsClientError

    claims: list[tuple[float, str | None]] = []
    with JobsClient(url, token, timeout_s=60) as client:
        start.wait()
        empty = 0
        while empty < 3:
            began = time.perf_counter()
            try:
                job = client.claim(queue, timeout_ms=LEASE_MS, worker=f"bench-{queue}")
            except JobsClientError:  # as the worker runtime does: pause, claim again
                time.sleep(0.5)
                continue
            claims.append(((time.perf_counter() - began) * 1000, job.id if job else None))
            if job is None:
                empty += 1
                continue
            empty = 0
            client.complete(job.id, lease_token=job.lease_token, result={"ok": True})
    results.put(claims)


def conflicts_logged(local: LocalService) -> int:
    return sum(int(float(n)) for n in re.findall(r'"LeaseConflicts":\[([0-9.]+)\]', local.logs()))


def fill(local: LocalService, queues: list[str], total: int) -> None:
    """Create the jobs, 8 at a time (single creates: moto runs big transactions slowly)."""
    from concurrent.futures import ThreadPoolExecutor

    token = local.token("service", "svc-bench")
    per_queue = total // len(queues)

    def create(spec: tuple[str, int]) -> None:
        reply = local.request("POST", "/v1/jobs", token=token, body={"type": spec[0], "params": {"n": spec[1]}}, timeout=120)
        assert reply.status == 201, reply.body

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(create, [(queue, n) for queue in queues for n in range(per_queue)]))


def run(local: LocalService, total: int, workers: int, queue_count: int, *, fifo: bool = False) -> dict[str, Any]:
    queues = [f"load-{uuid.uuid4().hex[:6]}-{i}" for i in range(queue_count)]
    fill(local, queues, total)
    for queue in queues if fifo else []:
        reply = local.request("PATCH", f"/v1/queues/{queue}", token=local.token("service", "svc-bench"), body={"fifo": True})
        assert reply.status == 200 and reply.body["fifo"], reply.body
    if fifo:
        time.sleep(2)  # every container's settings cache (1.5 s) has seen it
    conflicts_before = conflicts_logged(local)
    context = multiprocessing.get_context("spawn")
    results, start = context.Queue(), context.Event()
    token = local.token("service", "svc-bench")
    processes = [
        context.Process(target=work, args=(local.http_url, token, queues[i % queue_count], results, start))
        for i in range(workers)
    ]
    for process in processes:
        process.start()
    time.sleep(3)  # let every process import and connect; a benchmark, not a test
    began = time.perf_counter()
    start.set()
    claims = [claim for _ in processes for claim in results.get(timeout=900)]
    elapsed = time.perf_counter() - began
    for process in processes:
        process.join(timeout=60)
    time.sleep(1)  # the last log lines of the claim function
    leased = Counter(job_id for _, job_id in claims if job_id)
    successful = [ms for ms, job_id in claims if job_id]
    conflicts = conflicts_logged(local) - conflicts_before
    return {
        "queues": queue_count,
        "fifo": fifo,
        "jobs": sum(leased.values()),
        "distinct": len(leased),
        "duplicates": sum(n - 1 for n in leased.values()),
        "seconds": elapsed,
        "jobs_per_s": len(leased) / elapsed,
        "p50_ms": percentile(successful, 0.5),
        "p99_ms": percentile(successful, 0.99),
        "conflicts": conflicts,
        "conflicts_per_claim": conflicts / max(1, len(successful)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--queues", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8, help="local worker processes per function")
    parser.add_argument("--fifo", action="store_true", help="also one fifo queue")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    rows = []
    runs = [(1, False), (args.queues, False)] + ([(1, True)] if args.fifo else [])
    for queue_count, fifo in runs:  # a fresh local cloud each: moto slows as its table grows
        with tempfile.TemporaryDirectory() as directory:
            # JOBS_LOG=json: the claim function's LeaseConflicts metric is read from its log lines.
            env = {"JOBS_LOCAL_CONCURRENCY": str(args.concurrency), "JOBS_LOG": "json"}
            local = start_local_service(Path(directory), extra_env=env)
            try:
                row = run(local, args.jobs, args.workers, queue_count, fifo=fifo)
            finally:
                stop_local_service(local)
        print(json.dumps(row))
        rows.append(row)
    write_report(args, rows)


def write_report(args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    lines = [
        "## Claims under load",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} by `bench/claim_load.py --jobs {args.jobs} --workers {args.workers}"
        f" --queues {args.queues} --concurrency {args.concurrency}{' --fifo' if args.fifo else ''}`:"
        f" {args.workers} worker processes, each a",
        "`JobsClient`, claim (no long poll) and complete through the local cloud's HTTP API until",
        f"the queue is empty; the local cloud runs {args.concurrency} processes per function on this",
        "2-core machine and one locked moto server, so jobs/s and latency are this machine's, not",
        "AWS's. Conflicts (conditional writes a claim lost to another worker, the claim",
        "function's `LeaseConflicts` metric) and duplicates do not depend on the machine.",
        "",
        "| queues | order | jobs | jobs/s | claim p50 | claim p99 | conflicts per claim | duplicates |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['queues']} | {'fifo' if r.get('fifo') else 'random among 16'} | {r['distinct']}"
            f" | {r['jobs_per_s']:.0f} | {r['p50_ms']:.0f} ms | {r['p99_ms']:.0f} ms"
            f" | {r['conflicts_per_claim']:.2f} | {r['duplicates']} |"
        )
    lines += [
        "",
        "Target: under 0.5 conflicts per successful claim (a queue whose workers all fight for",
        "its head gives about 15 with 16 workers) and no duplicates. A claim picks at random among",
        "the 16 oldest visible jobs (`claim_candidates`), so 16 concurrent workers mostly take",
        "different jobs. Conflicts counted: "
        + "; ".join(
            f"{r['conflicts']} in {r['jobs']} claims over {r['queues']} queue(s){' (fifo)' if r.get('fifo') else ''}"
            for r in rows
        )
        + ".",
    ]
    fifo = next((r for r in rows if r.get("fifo")), None)
    plain = next((r for r in rows if r["queues"] == 1 and not r.get("fifo")), None)
    if fifo and plain:
        lines += [
            "",
            f"A fifo queue (`PATCH /v1/queues/{{type}}` `fifo: true`) gives strict order at the price of"
            f" {fifo['conflicts_per_claim']:.2f} conflicts per claim instead of {plain['conflicts_per_claim']:.2f}"
            f" ({fifo['jobs_per_s'] / max(plain['jobs_per_s'], 1e-9):.2f}x the jobs/s): every worker goes for the",
            "same head job, and each lost write costs a claim another Query and UpdateItem. Use it for",
            "few workers, or where order matters more than throughput.",
        ]
    write_section(args.out, "claim-load", lines)


if __name__ == "__main__":
    main()
