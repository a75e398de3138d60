"""Soak: many job lifecycles against the local cloud; does memory or latency creep?

--workers processes each run lifecycles (create, claim, two status posts with a message,
complete) until --lifecycles are done in all. Every --sample-s the local cloud's resident
memory is summed over its process tree. Per block of 1,000 lifecycles: p50 and p99 of each
operation. Writes docs/soak.png and the "soak" section of docs/benchmarks.md; prints a JSON
line with the verdicts (the issue's bounds: RSS at the end within 150 MB of RSS after the
first 1,000; p50 of create, claim and status in the last 1,000 within 1.3x of the first).

    .venv/bin/python bench/soak.py [--lifecycles 10000] [--workers 8]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from report import write_section

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import start_local_service, stop_local_service  # noqa: E402

OPERATIONS = ("create", "claim", "status", "complete")
BLOCK = 1000
QUEUE = "soak"


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants, in MB."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
    return total / 1024


def work(url: str, token: str, counter: Any, target: int, results: Any) -> None:
    """One worker: lifecycles until the shared counter reaches the target."""
    from jobs_client import JobsClient, JobsClientError

    timings: list[tuple[int, str, float]] = []
    with JobsClient(url, token, timeout_s=60) as client:
        while True:
            with counter.get_lock():
                if counter.value >= target:
                    break
                counter.value += 1
                number = counter.value
            try:
                began = time.perf_counter()
                client.create_job(QUEUE, params={"n": number}, owner=f"User#{number % 50}")
                timings.append((number, "create", time.perf_counter() - began))
                began = time.perf_counter()
                job = client.claim(QUEUE, timeout_ms=60_000, wait_ms=5_000)
                timings.append((number, "claim", time.perf_counter() - began))
                if job is None or job.lease_token is None:
                    continue
                for step in (1, 2):
                    began = time.perf_counter()
                    client.post_status(job.id, lease_token=job.lease_token, new_status=f"step {step}",
                                       message_to_append=f"step {step} of 2",
                                       progress={"title": "soak", "current": step, "maximum": 2})  # fmt: skip
                    timings.append((number, "status", time.perf_counter() - began))
                began = time.perf_counter()
                client.complete(job.id, lease_token=job.lease_token, result={"ok": number})
                timings.append((number, "complete", time.perf_counter() - began))
            except JobsClientError as error:
                print(f"lifecycle {number}: {error}", file=sys.stderr, flush=True)
    results.put(timings)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lifecycles", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--sample-s", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--chart", type=Path, default=ROOT / "docs" / "soak.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        local = start_local_service(Path(directory))
        try:
            samples, timings, elapsed = soak(local, args)
        finally:
            stop_local_service(local)
    summary = summarize(samples, timings, args.lifecycles)
    summary["seconds"] = elapsed
    chart(samples, summary, args.chart)
    report(args, summary)
    print(json.dumps(summary))


def soak(local: Any, args: argparse.Namespace) -> tuple[list[tuple[int, float]], list[tuple[int, str, float]], float]:
    context = multiprocessing.get_context("spawn")
    counter, results = context.Value("i", 0), context.Queue()
    token = local.token("service", "svc-soak")
    processes = [context.Process(target=work, args=(local.http_url, token, counter, args.lifecycles, results))
                 for _ in range(args.workers)]  # fmt: skip
    samples: list[tuple[int, float]] = []  # (lifecycles started, MB)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(args.sample_s):
            samples.append((counter.value, tree_rss_mb(local.process.pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    began = time.perf_counter()
    for process in processes:
        process.start()
    sampler.start()
    timings = [t for _ in processes for t in results.get(timeout=6 * 3600)]
    for process in processes:
        process.join(timeout=60)
    done.set()
    sampler.join()
    samples.append((counter.value, tree_rss_mb(local.process.pid)))
    return samples, timings, time.perf_counter() - began


def summarize(samples: list[tuple[int, float]], timings: list[tuple[int, str, float]], total: int) -> dict[str, Any]:
    blocks: dict[int, dict[str, list[float]]] = {}
    for number, operation, seconds in timings:
        blocks.setdefault((number - 1) // BLOCK, {op: [] for op in OPERATIONS})[operation].append(seconds * 1000)
    per_block = []
    for b, ops in sorted(blocks.items()):
        row: dict[str, Any] = {"block": b}
        for op, values in ops.items():
            row[f"{op}_p50"], row[f"{op}_p99"] = percentile(values, 0.5), percentile(values, 0.99)
        per_block.append(row)
    rss_first = statistics.median([mb for n, mb in samples if BLOCK * 0.9 <= n <= BLOCK * 1.1] or [samples[0][1]])
    rss_end = samples[-1][1]
    first, last = per_block[0], per_block[-1]
    ratios = {op: last[f"{op}_p50"] / first[f"{op}_p50"] for op in ("create", "claim", "status")}
    return {
        "lifecycles": total,
        "rss_after_first_block_mb": rss_first,
        "rss_end_mb": rss_end,
        "rss_growth_mb": rss_end - rss_first,
        "p50_last_over_first": ratios,
        "rss_ok": rss_end - rss_first <= 150,
        "latency_ok": all(r <= 1.3 for r in ratios.values()),
        "blocks": per_block,
        "samples": samples,
    }


def chart(samples: list[tuple[int, float]], summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (memory, latency) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    memory.plot([n for n, _ in samples], [mb for _, mb in samples], color="tab:blue")
    memory.set_ylabel("local cloud RSS (MB)")
    memory.set_ylim(bottom=0)
    memory.set_title(f"Soak: {summary['lifecycles']:,} job lifecycles against make run")
    memory.grid(alpha=0.3)
    middles = [(b["block"] + 0.5) * BLOCK for b in summary["blocks"]]
    for op, color in zip(OPERATIONS, ("tab:green", "tab:orange", "tab:purple", "tab:red"), strict=True):
        latency.plot(middles, [b[f"{op}_p50"] for b in summary["blocks"]], color=color, marker="o", label=f"{op} p50")
        latency.plot(middles, [b[f"{op}_p99"] for b in summary["blocks"]], color=color, linestyle=":", label=f"{op} p99")
    latency.set_ylabel("latency (ms), per 1,000 lifecycles")
    latency.set_xlabel("lifecycles started")
    latency.set_yscale("log")
    latency.grid(alpha=0.3)
    latency.legend(ncol=4, fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def report(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    first, last = summary["blocks"][0], summary["blocks"][-1]
    lines = [
        "## Soak: memory and latency over 10,000 job lives",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} by `bench/soak.py --lifecycles {args.lifecycles} --workers {args.workers}`"
        f" against `make run` ({os.cpu_count()} cores): each worker process creates a job, claims one, posts two",
        "status updates with a message and completes it, until the lifecycles are done; the local cloud's",
        "memory is the sum of its whole process tree (the server and every function's worker processes).",
        "",
        "![Soak: memory and latency](soak.png)",
        "",
        "| measure | first 1,000 | last 1,000 | bound | |",
        "|---|---:|---:|---|---|",
        f"| local cloud RSS | {summary['rss_after_first_block_mb']:.0f} MB | {summary['rss_end_mb']:.0f} MB"
        f" | growth within 150 MB | {'ok' if summary['rss_ok'] else 'MISSED'} |",
    ]
    for op in ("create", "claim", "status", "complete"):
        ratio = last[f"{op}_p50"] / first[f"{op}_p50"]
        bound = "within 1.3x" if op != "complete" else ""
        verdict = ("ok" if ratio <= 1.3 else "MISSED") if bound else ""
        lines.append(f"| {op} p50 / p99 | {first[f'{op}_p50']:.0f} / {first[f'{op}_p99']:.0f} ms"
                     f" | {last[f'{op}_p50']:.0f} / {last[f'{op}_p99']:.0f} ms | {bound} | {verdict} |")  # fmt: skip
    lines += [
        "",
        f"{summary['lifecycles']:,} lifecycles in {summary['seconds']:.0f} s. Latency on this 2-core machine is the",
        "local cloud's, not AWS's; what matters here is that it does not grow with the table.",
    ]
    write_section(args.out, "soak", lines)


if __name__ == "__main__":
    main()
