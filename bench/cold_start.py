"""Cold-start import cost of each Lambda handler module, against a baseline.

Each measurement runs in a fresh interpreter, as a new Lambda container does: the time to
import the handler's module (from its file, as Lambda loads it) is compared with the time
to `import boto3` and create a powertools Logger, run just before it. The target: every
handler within 1.3x of the baseline, robustly: enough interleaved pairs that the median's
confidence interval is narrow, and two independent measurements that agree. Results go to
docs/benchmarks.md. Run it on a quiet machine (about 12 minutes with the defaults).

    .venv/bin/python bench/cold_start.py [--runs 25] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import statistics
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from against import shim, worktree
from report import write_section

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the measurement itself is shared with tests/unit/test_handler_pages.py
from tests.support.imports import (  # noqa: E402
    BASELINE,
    Sample,
    compile_bytecode,
    count_instructions,
    handler_code,
    measure,
    valgrind,
)

# The engine's families, and the live parts, are imported on a container's first call (see
# jobcore/engine/__init__.py, jobcore/wiring.py): a cold start pays for those its route uses,
# so they are imported here too. Which: the families and parts the handler's source names,
# and those of the jobcore module it hands its events to.
FAMILY_MODULES = {"creating": "creating", "leasing": "leasing", "progress": "progress", "listing": "listing",
                  "admin": "admin", "batches": "batch", "queues": "queues", "recovery": "recovery",
                  "counting": "counting", "message_log": "message_log", "schedules": "schedules"}  # fmt: skip
PARTS = {"engine": "jobcore.engine", "subscriptions": "jobcore.live.subscriptions", "fan_out": "jobcore.live.delivery"}
ENTRY_MODULES = ("stream", "scheduler", "websocket")


def first_call_modules(path: Path) -> list[str]:
    """What a container's first call of this handler imports beyond the handler's own imports."""
    sources = [path.read_text()]
    for entry in ENTRY_MODULES:
        if f"jobcore.{entry} import" in sources[0]:
            sources.append((ROOT / "layers" / "jobs" / "jobcore" / f"{entry}.py").read_text())
    text = "\n".join(sources)
    modules = [PARTS[part] for part in PARTS if re.search(rf"wiring\.{part}\(", text)]
    modules += ["jobcore.engine"] if re.search(r"\bengine(\(\))?\.", text) else []
    families = set(re.findall(r"\bengine(?:\(\))?\.([a-z_]+)", text)) & set(FAMILY_MODULES)
    if "subscriptions.subscribe(" in text:  # a job's topic: the job is read (wiring._load_for)
        modules.append("jobcore.engine")
        families.add("listing")
    return list(dict.fromkeys(modules + [f"jobcore.engine.{FAMILY_MODULES[family]}" for family in sorted(families)]))


def handlers() -> list[tuple[str, Path, str]]:
    from localcloud.functions import functions
    from localcloud.template import load_template

    found = []
    for spec in functions(load_template()).values():
        attribute = spec.handler.rpartition(".")[2]
        found.append((spec.logical_id, spec.module_path, attribute))
    return sorted(found)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    at = q * (len(ordered) - 1)
    low, high = int(at), min(int(at) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def median_interval(values: list[float]) -> tuple[float, float]:
    """A 95% confidence interval of the median, from order statistics (no assumption on the
    shape of the noise): the ranks n/2 -+ 0.98 sqrt(n)."""
    ordered = sorted(values)
    n = len(ordered)
    half = 0.98 * math.sqrt(n)
    low, high = max(0, math.floor(n / 2 - half)), min(n - 1, math.ceil(n / 2 + half) - 1)
    return ordered[low], ordered[high]


def measure_all(functions: list[tuple[str, Path, str]], runs: int, rng: random.Random) -> list[dict[str, Any]]:
    """`runs` rounds; in each, every function once in a shuffled order, each as a pair
    (baseline, handler) run back to back: noise of the machine (another process, a frequency
    step) hits a pair's two sides alike, and drifts over the rounds hit every function alike."""
    codes = {name: handler_code(path, attribute, first_call_modules(path)) for name, path, attribute in functions}
    for code in codes.values():
        measure(code)  # warm the OS file cache once
    pairs: dict[str, list[tuple[Sample, Sample]]] = {name: [] for name in codes}
    for round_number in range(runs):
        order = list(codes)
        rng.shuffle(order)
        for name in order:
            # Each side of a pair goes first in half the rounds: what the first of two runs
            # pays (or leaves warm) weighs on both alike.
            if round_number % 2:
                handler = measure(codes[name])
                pairs[name].append((measure(BASELINE), handler))
            else:
                pairs[name].append((measure(BASELINE), measure(codes[name])))
        print(f"round {round_number + 1}/{runs}", file=sys.stderr)
    rows = []
    for name, measured in pairs.items():
        ratios = [handler.cpu_s / base.cpu_s for base, handler in measured]
        low, high = median_interval(ratios)
        rows.append({"function": name, "baseline_ms": statistics.median(b.cpu_s for b, _ in measured) * 1000,
                     "handler_ms": statistics.median(h.cpu_s for _, h in measured) * 1000,
                     "ratio": statistics.median(ratios), "ci_low": low, "ci_high": high,
                     "p25": quantile(ratios, 0.25), "p75": quantile(ratios, 0.75),
                     "pages": statistics.median(h.pages / b.pages for b, h in measured)})  # fmt: skip
    return sorted(rows, key=lambda r: str(r["function"]))


def instruction_ratios(functions: list[tuple[str, Path, str]], tree: Path = ROOT, pythonpath: str | None = None,
                       ) -> dict[str, float]:  # fmt: skip
    """Each handler's instructions over the baseline's, counted once each by callgrind (the
    count does not move from run to run, so once is enough); two at a time, one per core.
    Run apart from the timed rounds, which they would disturb. `tree`: another checkout's
    handlers, with its packages first on `pythonpath`."""
    codes = {}
    for name, path, attribute in functions:
        there = tree / path.relative_to(ROOT)
        if there.exists():
            codes[name] = handler_code(there, attribute, first_call_modules(there))
    with ThreadPoolExecutor(max_workers=2) as pool:
        baseline = pool.submit(count_instructions, BASELINE)
        counts = dict(zip(codes, pool.map(lambda code: count_instructions(code, pythonpath), codes.values()), strict=True))
        return {name: count / baseline.result() for name, count in counts.items()}


def instruction_ratios_at(rev: str, functions: list[tuple[str, Path, str]]) -> dict[str, float]:
    """The same counts for the handlers of an earlier commit, checked out in a git worktree,
    its own jobcore first on the path: "fewer" as a ratio measured in the same run."""
    with tempfile.TemporaryDirectory() as folder, worktree(rev, Path(folder) / "tree") as tree:
        compile_bytecode(tree)
        return instruction_ratios(functions, tree, str(shim(tree, Path(folder) / "packages")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=25, help="pairs per function in each measurement")
    parser.add_argument("--repeat", type=int, default=2, help="independent measurements, to show they agree")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-instructions", action="store_true", help="skip the instruction counts (valgrind)")
    parser.add_argument("--instructions-before", metavar="REV", help="count the handlers of this commit too")
    args = parser.parse_args()
    compile_bytecode()
    measure(BASELINE)
    functions = handlers()
    repeats = [measure_all(functions, args.runs, random.Random(seed)) for seed in range(args.repeat)]
    counting = not args.no_instructions and valgrind() is not None
    if not args.no_instructions and not counting:
        print("valgrind is not installed: no instruction counts", file=sys.stderr)
    instructions = instruction_ratios(functions) if counting else {}
    before = instruction_ratios_at(args.instructions_before, functions) if counting and args.instructions_before else {}
    for row in repeats[0]:
        row["instructions"] = instructions.get(str(row["function"]))
        row["instructions_before"] = before.get(str(row["function"]))
    for rows in repeats:
        for r in rows:
            print(f"{r['function']:28s} baseline {r['baseline_ms']:6.1f} ms  handler {r['handler_ms']:6.1f} ms  "
                  f"x{r['ratio']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]")  # fmt: skip
    write_report(args.out, repeats, args.runs, args.instructions_before if before else None)
    print(json.dumps({"worst_ratio": [max(float(r["ratio"]) for r in rows) for rows in repeats]}))


def write_report(out: Path, repeats: list[list[dict[str, Any]]], runs: int, before_rev: str | None) -> None:
    n = len(repeats)
    command = f"bench/cold_start.py --runs {runs} --repeat {n}" + (f" --instructions-before {before_rev}" if before_rev else "")
    lines = [
        "## Cold start: handler import time",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d} by `{command}`: CPU time of",
        "the import in a fresh interpreter, as a new Lambda container does, against a baseline (`import boto3`",
        "plus a powertools `Logger()`), including the modules the route's first call imports. Every module",
        "is loaded from bytecode compiled beforehand, as the layer ships it (`layers/jobs/Makefile`).",
        f"{n} independent measurements; in each, {runs} rounds in which every function is measured once, in a",
        "shuffled order, as a (baseline, handler) pair whose two sides take turns going first. The ratio is",
        "the median of the per-pair ratios; beside it its 95% confidence interval (order statistics) and the",
        "spread of the pairs (25th-75th percentile); runs agree when their intervals overlap. Target: every",
        "handler within 1.3x of the baseline, in every measurement. The dev venv's boto3 also loads awscrt",
        "and pyOpenSSL (pulled in by moto), which Lambda's does not: both sides carry that weight alike.",
        "The last column counts memory instead of time: the pages each side touched (minor page faults),",
        "handler over baseline, median of the first measurement's pairs; unlike CPU time it comes out",
        "the same run after run (`tests/unit/test_handler_pages.py` asserts it for four routes). The",
        "instructions column counts work instead of time: the instructions each side ran (valgrind's",
        "callgrind, once each), handler over baseline; the same to 6 digits run after run, on any load."
        + (f" Beside it, the same count for the handlers of commit {before_rev}, in the same run." if before_rev else ""),
        "",
        "| function | baseline ms | handler ms | "
        + " | ".join(f"ratio, run {i + 1} [95% CI] (p25-p75)" for i in range(n))
        + " | runs agree | pages | instructions |"
        + (f" instructions at {before_rev} |" if before_rev else ""),
        "|---|---:|---:|" + "---|" * n + "---|---:|---:|" + ("---:|" if before_rev else ""),
    ]
    for at, first in enumerate(repeats[0]):
        same = [rows[at] for rows in repeats]
        cells = [f"**{r['ratio']:.2f}** [{r['ci_low']:.2f}, {r['ci_high']:.2f}] ({r['p25']:.2f}-{r['p75']:.2f})" for r in same]
        # Runs agree when their 95% intervals of the median overlap.
        agree = max(float(r["ci_low"]) for r in same) <= min(float(r["ci_high"]) for r in same)
        counts = f"{first['pages']:.2f} | {_ratio(first['instructions'])}"
        counts += f" | {_ratio(first['instructions_before'])}" if before_rev else ""
        lines.append(f"| {first['function']} | {first['baseline_ms']:.0f} | {first['handler_ms']:.0f} | "
                     + " | ".join(cells) + f" | {'yes' if agree else 'no'} | {counts} |")  # fmt: skip
    worst = [max(float(r["ratio"]) for r in rows) for rows in repeats]
    worst_high = max(float(r["ci_high"]) for rows in repeats for r in rows)
    lines += ["", "Worst ratio: " + ", ".join(f"**{w:.2f}**" for w in worst)
              + f" (run by run); the highest upper bound of any 95% interval: {worst_high:.2f}."]  # fmt: skip
    for key, what in (("instructions", "this code"), ("instructions_before", f"at {before_rev}")):
        counted = [float(r[key]) for r in repeats[0] if r.get(key) is not None]
        if counted:
            lines += [f"Instructions over the baseline's, {what}: {min(counted):.2f}-**{max(counted):.2f}**x."]
    write_section(out, "cold-start", lines)


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    main()
