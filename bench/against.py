"""Run one benchmark on an earlier commit and on the working tree, alternately, in one run.

    .venv/bin/python bench/against.py --base 83a3a11 --rounds 2 -- bench/claim_load.py --jobs 1000

`--head REV` measures a commit instead of the working tree (`git stash create` makes one of
uncommitted work, so that editing files during a long run changes nothing).

The earlier commit is checked out in a `git worktree` (removed afterwards); both sides run
with this venv's interpreter, each importing its own `jobcore`, `localcloud` and
`jobs_client` (a shim directory first on PYTHONPATH beats the editable install). Every JSON
object a run prints on a line of its own is a result; rounds alternate base and head so that
the machine's load drifts over both alike. Prints each result and, per numeric field, the
median of head over the median of base; `--json` writes them all to a file.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"jobcore": "layers/jobs/jobcore", "localcloud": "local", "jobs_client": "client/jobs_client"}


def shim(tree: Path, into: Path) -> Path:
    """A directory whose packages are the tree's own, to put first on PYTHONPATH."""
    into.mkdir(parents=True, exist_ok=True)
    for name, relative in PACKAGES.items():
        (into / name).symlink_to(tree / relative)
    return into


@contextmanager
def worktree(revision: str, path: Path) -> Iterator[Path]:
    """The commit checked out at `path` (a detached git worktree), removed afterwards."""
    subprocess.run(["git", "worktree", "add", "--detach", str(path), revision], cwd=ROOT, check=True, capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=False)


def run(tree: Path, packages: Path, command: list[str]) -> list[dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": f"{packages}{os.pathsep}{tree}"}
    done = subprocess.run([sys.executable, *command], cwd=tree, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{command} failed in {tree}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    results = []
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            results.append(json.loads(line))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the earlier commit")
    parser.add_argument("--head", help="a later commit (default: the working tree)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write every result here")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- script [args]: run from each tree's root")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    with tempfile.TemporaryDirectory() as scratch, ExitStack() as checkouts:
        trees = {"base": checkouts.enter_context(worktree(args.base, Path(scratch) / "base")),
                 "head": checkouts.enter_context(worktree(args.head, Path(scratch) / "head")) if args.head else ROOT}  # fmt: skip
        sides = {side: (tree, shim(tree, Path(scratch) / f"{side}-packages")) for side, tree in trees.items()}
        results: dict[str, list[list[dict[str, Any]]]] = {"base": [], "head": []}
        for round_number in range(args.rounds):
            order = ["base", "head"] if round_number % 2 == 0 else ["head", "base"]
            for side in order:
                tree, packages = sides[side]
                found = run(tree, packages, command)
                results[side].append(found)
                print(json.dumps({"side": side, "round": round_number, "results": found}), flush=True)
    summary = compare(results)
    print(json.dumps({"ratios_head_over_base": summary}, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"base": args.base, "command": command, "results": results, "ratios": summary}, indent=1))


def compare(results: dict[str, list[list[dict[str, Any]]]]) -> list[dict[str, float]]:
    """Per result position (a script may print several), head's median over base's, per field."""
    ratios = []
    for position in range(min(len(r) for side in results.values() for r in side)):
        row: dict[str, float] = {}
        for field, value in results["head"][0][position].items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                head = statistics.median(r[position][field] for r in results["head"])
                base = statistics.median(r[position][field] for r in results["base"])
                row[field] = head / base if base else float("nan")
        ratios.append(row)
    return ratios


if __name__ == "__main__":
    main()
