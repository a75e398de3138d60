"""A worker that counts to N, reporting progress, status, speed and a message at each step.

    JOBS_TOKEN=$(.venv/bin/jobs token --role service --sub svc-counter) .venv/bin/python examples/count_worker.py

Jobs of type "count" with params {"n": N, "delay_s": seconds per step}. SIGTERM or Ctrl-C
stops it gracefully: running counts get time to finish, the rest are handed back.
"""

from __future__ import annotations

import logging
import os

from jobs_client import JobContext, JobsClient, NonRetryableError, Speed, Worker


def count(ctx: JobContext) -> dict[str, int]:
    params = ctx.params or {}
    n, delay_s = params.get("n", 10), float(params.get("delay_s", 0.5))
    if not isinstance(n, int) or n < 1:
        raise NonRetryableError(f"n must be a positive integer, not {n!r}", code="bad_params")
    rate = Speed("counting", round(1 / delay_s, 2), "steps/s", f"{1 / delay_s:.1f} steps/s") if delay_s else None
    for i in range(1, n + 1):
        ctx.sleep(delay_s)  # raises JobStopped when the job is cancelled or the worker stops
        text = f"Count is now {i}"
        ctx.report(current=i, maximum=n, title="count", status=text, message=text, speeds=[rate] if rate else None)
    return {"counted": n}


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    client = JobsClient(os.environ.get("JOBS_URL", "http://127.0.0.1:3000"), os.environ["JOBS_TOKEN"])
    worker = Worker(client, "count", count, concurrency=int(os.environ.get("CONCURRENCY", "2")), lease_ms=15_000)
    worker.run()
    print(f"stopped: {worker.stats}")


if __name__ == "__main__":
    main()
