"""One hot queue at 3,000 job lives per second, simulated: write units per index partition per
second, and how close to oldest first its claims stay, with the queue unsharded and with the
shards docs/reliability.md says to set.

Drives the engine on moto (the local cloud's fixed DynamoDB, no HTTP) with a manual clock in
10 ms ticks: each tick creates rate/100 jobs and claims as many; each claimed job heartbeats
(extends its lease) half a second later and completes a second after its claim. Every
DynamoDB request is metered by tests/support/capacity.py, which names the index partition
each index write lands in; units are summed per partition per simulated second. The first
two simulated seconds (a backlog of one second of jobs, then the pipeline filling) are not
counted.

A claimed job's age rank is the number of claimable jobs created before it and still
waiting: 0 is strictly oldest first.

    .venv/bin/python bench/hot_queue.py [--rate 3000] [--seconds 2] [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import bisect
import math
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from report import write_section

ROOT = Path(__file__).resolve().parent.parent
QUEUE = "hot"
TICK_MS = 10
HEARTBEAT_AFTER_MS = 500
COMPLETE_AFTER_MS = 1000
# Not counted: a first second fills the backlog, a second one starts the claims, heartbeats
# and completes, so every counted second holds the whole of the steady state.
WARM_UP_S = 2
# What one index partition takes (DynamoDB: about 1,000 write units per second), and the
# share of it a queue's shards are sized to use on average: jobs land on shards at random,
# so in any one second the busiest shard takes some 20% more than the mean.
PARTITION_WRITE_UNITS = 1000
SIZING_SHARE = 0.7
# Units a life costs the queue index: create 1, claim 2 (its key moves: a delete and a put),
# complete 1; and 2 per heartbeat (the lease's end is the key).
QUEUE_INDEX_UNITS_PER_LIFE = 4
QUEUE_INDEX_UNITS_PER_HEARTBEAT = 2


def shards_for(rate: float, heartbeats: int) -> int:
    """The shard count docs/reliability.md gives for a queue of `rate` job lives per second."""
    units = rate * (QUEUE_INDEX_UNITS_PER_LIFE + QUEUE_INDEX_UNITS_PER_HEARTBEAT * heartbeats)
    return max(1, math.ceil(units / (PARTITION_WRITE_UNITS * SIZING_SHARE)))


@dataclass
class Run:
    shards: int
    # Per counted second: write units per (index, partition).
    seconds: list[Counter[tuple[str, str]]] = field(default_factory=list)
    ranks: list[int] = field(default_factory=list)
    backlog: list[int] = field(default_factory=list)
    lives: int = 0

    def peak(self, index: str) -> tuple[float, int]:
        """The most units one partition of the index took in one second, and how many of its
        partitions were written."""
        worst, partitions = 0.0, set()
        for second in self.seconds:
            for (name, partition), units in second.items():
                if name.endswith("/" + index):
                    worst = max(worst, units)
                    partitions.add(partition)
        return worst, len(partitions)


def simulate(rate: int, seconds: int, shards: int) -> Run:
    sys.path.insert(0, str(ROOT))
    from cost_model import engine

    from localcloud import dynamodb_fixes

    dynamodb_fixes.install()
    e, mock = engine()
    run = Run(shards)
    try:
        s, svc = e.service, e.svc
        s.patch_queue(QUEUE, {"shards": shards})
        per_tick = rate * TICK_MS // 1000
        order: dict[str, int] = {}
        waiting: list[int] = []  # creation numbers of jobs not yet claimed, sorted
        due: dict[int, list[tuple[str, Any]]] = defaultdict(list)  # tick -> (what, job)
        ticks_per_second = 1000 // TICK_MS
        for tick in range((seconds + WARM_UP_S) * ticks_per_second):
            claiming, counted = tick >= ticks_per_second, tick >= WARM_UP_S * ticks_per_second
            if tick % ticks_per_second == 0:
                e.meter.reset()
            for _ in range(per_tick):
                job = s.create(svc, {"type": QUEUE, "params": {"n": len(order)}}).job
                order[job.id] = len(order)
                waiting.append(order[job.id])
            if claiming:
                for _ in range(per_tick):
                    leased = s.claim(svc, QUEUE, {"timeout_ms": 60_000})
                    if leased is None:
                        break
                    number = order[leased.id]
                    at = bisect.bisect_left(waiting, number)
                    run.ranks += [at] if counted else []
                    waiting.pop(at)
                    due[tick + HEARTBEAT_AFTER_MS // TICK_MS].append(("extend", leased))
                    due[tick + COMPLETE_AFTER_MS // TICK_MS].append(("complete", leased))
            for what, leased in due.pop(tick, []):
                token = {"lease_token": leased.lease_token}
                if what == "extend":
                    s.extend(svc, leased.id, {**token, "timeout_ms": 60_000})
                else:
                    s.complete(svc, leased.id, {**token, "result": {"ok": True}})
                    run.lives += 1 if counted else 0
            e.clock.advance(TICK_MS)
            if (tick + 1) % ticks_per_second == 0 and counted:
                run.seconds.append(Counter(e.meter.reset().partitions))
                run.backlog.append(len(waiting))
    finally:
        mock.stop()
        dynamodb_fixes.uninstall()
    return run


INDEXES = ("queue-level-visible", "type-created", "all-created", "owner-created", "queue-ended")


def report(rate: int, seconds: int, runs: list[Run]) -> list[str]:
    lines = ["## One hot queue at " + f"{rate:,} job lives per second (simulated)", "",
             "Computed " + datetime.now(UTC).strftime("%Y-%m-%d") + f" by `bench/hot_queue.py --rate {rate} "
             f"--seconds {seconds}`: the engine on moto with a manual clock in {TICK_MS} ms ticks; each tick creates "
             f"and claims {rate * TICK_MS // 1000} jobs, each job heartbeats {HEARTBEAT_AFTER_MS} ms after its claim "
             f"and completes {COMPLETE_AFTER_MS} ms after it; {WARM_UP_S} seconds of warm-up (a backlog of one second of "
             "jobs, then the pipeline filling) are not counted. "
             "Every request metered by `tests/support/capacity.py`, each index write counted in the partition it "
             f"lands in. One index partition takes about {PARTITION_WRITE_UNITS:,} write units per second; the "
             f"shard count is docs/reliability.md's rule, ceil(rate x (4 + 2 x heartbeats) / "
             f"{PARTITION_WRITE_UNITS * SIZING_SHARE:,.0f}).", "",
             "| index | " + " | ".join(f"{r.shards} shard{'s' if r.shards > 1 else ''}: busiest partition, "
                                       "units/s (partitions)" for r in runs) + " |",
             "|---|" + "---:|" * len(runs)]  # fmt: skip
    for index in INDEXES:
        cells = []
        for r in runs:
            worst, partitions = r.peak(index)
            flag = " **over**" if worst > PARTITION_WRITE_UNITS else ""
            cells.append(f"{worst:,.0f} ({partitions}){flag}")
        lines.append(f"| {index} | " + " | ".join(cells) + " |")
    lines += ["", "| | " + " | ".join(f"{r.shards} shard{'s' if r.shards > 1 else ''}" for r in runs) + " |",
              "|---|" + "---:|" * len(runs)]  # fmt: skip
    lines.append("| job lives completed | " + " | ".join(f"{r.lives:,}" for r in runs) + " |")
    lines.append("| claims | " + " | ".join(f"{len(r.ranks):,}" for r in runs) + " |")
    backlogs = (sum(r.backlog) / len(r.backlog) for r in runs)
    lines.append("| mean backlog (claimable jobs) | " + " | ".join(f"{b:,.0f}" for b in backlogs) + " |")
    lines.append("| mean age rank of a claimed job (0: strictly oldest first) | "
                 + " | ".join(f"{sum(r.ranks) / len(r.ranks):,.1f}" for r in runs) + " |")  # fmt: skip
    lines.append("| the same, in ms of waiting behind older jobs | "
                 + " | ".join(f"{sum(r.ranks) / len(r.ranks) * 1000 / rate:,.0f}" for r in runs) + " |")  # fmt: skip
    lines += ["", "With one shard the queue's index partition takes several times what a partition can: DynamoDB "
              "would throttle the index, and with it the table's writes. With the shards set, no partition of any "
              "index is above the budget, and claims stay near the oldest: each claim reads the heads of two random "
              "shards, takes from the one whose oldest job is older, and picks at random among that shard's 16 "
              "oldest."]  # fmt: skip
    return lines


def chart(runs: list[Run], rate: int, path: Path) -> None:
    """Write units per second of each queue-level-visible partition, busiest first, per run;
    and the age rank of claimed jobs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (load, ranks) = plt.subplots(1, 2, figsize=(11, 4.2))
    for run, color in zip(runs, ("tab:red", "tab:blue"), strict=False):
        per_partition: Counter[str] = Counter()
        for second in run.seconds:
            for (name, partition), units in second.items():
                if name.endswith("/queue-level-visible"):
                    per_partition[partition] += units
        busiest = sorted((units / len(run.seconds) for units in per_partition.values()), reverse=True)
        label = f"{run.shards} shard{'s' if run.shards > 1 else ''}"
        # The sharded run's bars in front of the unsharded one's (partition 1 of both).
        load.bar(range(1, len(busiest) + 1), busiest, width=0.8 if run.shards > 1 else 0.95, color=color, label=label,
                 zorder=3 if run.shards > 1 else 2)  # fmt: skip
        ranks.hist(run.ranks, bins=60, color=color, alpha=0.6, label=f"{label} (mean {sum(run.ranks) / len(run.ranks):.0f})")
    load.axhline(PARTITION_WRITE_UNITS, color="black", linestyle="--", linewidth=1, label="one partition's budget")
    load.set_yscale("log")
    load.set_xlabel("queue-level-visible partitions, busiest first")
    load.xaxis.get_major_locator().set_params(integer=True)
    load.set_ylabel("write units per second")
    load.set_title(f"{rate:,} job lives/s: index partition load")
    load.legend(fontsize=8)
    ranks.set_xlabel("age rank of the claimed job (0: the oldest waiting)")
    ranks.set_ylabel("claims")
    ranks.set_title("how close to oldest first")
    ranks.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=3000, help="job lives per second")
    parser.add_argument("--seconds", type=int, default=2, help="simulated seconds counted")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    shards = shards_for(args.rate, heartbeats=1)
    runs = [simulate(args.rate, args.seconds, 1), simulate(args.rate, args.seconds, shards)]
    lines = report(args.rate, args.seconds, runs)
    picture = args.out.parent / "hot-queue.png"
    chart(runs, args.rate, picture)
    lines += ["", f"![Partition load and age rank]({picture.name})"]
    write_section(args.out, "hot-queue", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
