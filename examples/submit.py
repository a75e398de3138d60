"""Submit a count job for an end user and follow it live until it completes.

export JOBS_TOKEN=...   # a service token: `make run` prints one
.venv/bin/python examples/submit.py 5 'User#1234'
"""

from __future__ import annotations

import asyncio
import os
import sys

from jobs_client import JobsClient, subscribe


async def follow(client: JobsClient, job_id: str) -> None:
    ws_url = os.environ.get("JOBS_WS_URL", "ws://127.0.0.1:3001")
    async for update in subscribe(ws_url, client.token, job_id=job_id, client=client):
        progress = f"{update.progress.current}/{update.progress.maximum}" if update.progress else "-"
        print(f"v{update.version} {update.state} {progress} {update.message_to_append or ''}".rstrip())
        if update.complete:
            return


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    owner = sys.argv[2] if len(sys.argv) > 2 else "User#1234"
    token = os.environ.get("JOBS_TOKEN")
    if not token:
        sys.exit("JOBS_TOKEN is not set: export a service token first (`make run` prints one).")
    with JobsClient(os.environ.get("JOBS_URL", "http://127.0.0.1:3000"), token) as client:
        job = client.create_job("count", owner=owner, title=f"Counting to {n}", params={"n": n, "delay_s": 0.3})
        print(f"submitted {job.id}")
        asyncio.run(follow(client, job.id))
        print(f"result: {client.get_result(job.id)}")


if __name__ == "__main__":
    main()
