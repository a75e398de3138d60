"""A worker that counts to N, reporting progress, status, speed and a message at each step.

    export JOBS_TOKEN=...   # a service token: `make run` prints one
    .venv/bin/python examples/count_worker.py

Jobs of type "count" with params {"n": N, "delay_s": seconds per step}; QUEUES names the
queues to serve, comma-separated (QUEUES=count,count.urgent: each claim tries them all, in
an order rotated at every claim). It prints a line per job it finishes. CONCURRENCY (default
2) jobs run at once; MAX_JOBS (1-10, default 1) is how many one claim may lease, never more
than the slots free. SIGTERM or Ctrl-C stops it gracefully: running counts get time to
finish, the rest are handed back.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from jobs_client import JobContext, JobsClient, NonRetryableError, Speed, Worker


def count(ctx: JobContext) -> dict[str, int]:
    params = ctx.params or {}
    n, delay_s = params.get("n", 10), float(params.get("delay_s", 0.5))
    if not isinstance(n, int) or n < 1:
        print(f"{ctx.job.id}  refused: n must be a positive integer, not {n!r}", flush=True)
        raise NonRetryableError(f"n must be a positive integer, not {n!r}", code="bad_params")
    started = time.monotonic()
    rate = Speed("counting", round(1 / delay_s, 2), "steps/s", f"{1 / delay_s:.1f} steps/s") if delay_s else None
    for i in range(1, n + 1):
        ctx.sleep(delay_s)  # raises JobStopped when the job is cancelled or the worker stops
        text = f"Count is now {i}"
        ctx.report(current=i, maximum=n, title="count", status=text, message=text, speeds=[rate] if rate else None)
    print(f"{ctx.job.id}  counted to {n} for {ctx.job.owner or '-'} in {time.monotonic() - started:.1f} s", flush=True)
    return {"counted": n}


def main() -> None:
    token = os.environ.get("JOBS_TOKEN")
    if not token:
        sys.exit("JOBS_TOKEN is not set: export a service token first (`make run` prints one).")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    url = os.environ.get("JOBS_URL", "http://127.0.0.1:3000")
    concurrency = int(os.environ.get("CONCURRENCY", "2"))
    max_jobs = int(os.environ.get("MAX_JOBS", "1"))
    queues = [q.strip() for q in os.environ.get("QUEUES", "count").split(",") if q.strip()]
    print(f"counting jobs of {', '.join(queues)} from {url}, {concurrency} at a time; Ctrl-C stops", flush=True)
    # Idle, it waits for work notices on the WebSocket (a long poll if the socket is down).
    ws_url = os.environ.get("JOBS_WS_URL", "ws://127.0.0.1:3001")
    worker = Worker(JobsClient(url, token), queues, count, concurrency=concurrency, max_jobs=max_jobs, lease_ms=15_000,
                    ws_url=ws_url)  # fmt: skip
    worker.run()
    print(f"stopped: {worker.stats.snapshot()}")


if __name__ == "__main__":
    main()
