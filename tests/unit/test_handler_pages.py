"""A cold start's memory: a handler's import touches hardly more pages than the baseline of
bench/cold_start.py (`import boto3` and a powertools `Logger()`).

Minor page faults count the pages a fresh interpreter touches: unlike its CPU time, the count
is the same run after run on a loaded machine (within a few pages), so it can be asserted.
Imported deep inside jobcore's own imports, botocore's import kept crossing a boundary of
CPython 3.11's frame-stack chunks, each crossing mapping a fresh chunk (python/cpython#142183):
800-1,600 more pages for the very same modules (1.20-1.37x the baseline). The entry modules
import boto3 first, at a shallow depth (jobcore/http.py)."""

from __future__ import annotations

import compileall
import os
import subprocess
import sys
from pathlib import Path

import pytest

from localcloud.functions import functions
from localcloud.template import load_template

ROOT = Path(__file__).resolve().parents[2]
COUNTED = """
import resource
_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
{code}
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - _before)
"""
BASELINE = "import boto3\nfrom aws_lambda_powertools import Logger\nLogger()"
HANDLER = """
import importlib.util
spec = importlib.util.spec_from_file_location("handler_module", {path!r})
spec.loader.exec_module(importlib.util.module_from_spec(spec))
"""
ENV = {"AWS_DEFAULT_REGION": "us-east-1", "JOBS_TABLE_NAME": "jobs", "POWERTOOLS_SERVICE_NAME": "jobs"}
# One function of each entry module: the HTTP edge, the WebSocket edge, the stream, the schedules.
ROUTES = ["ExtendLeaseFunction", "WsPingFunction", "FanOutFunction", "RunSchedulesFunction"]
SPECS = {spec.logical_id: spec for spec in functions(load_template()).values()}


def pages_touched(code: str) -> int:
    env = {**os.environ, **ENV}
    done = subprocess.run([sys.executable, "-c", COUNTED.format(code=code)], capture_output=True, text=True, check=True,
                          cwd=ROOT, env=env, timeout=120)  # fmt: skip
    return int(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def baseline_pages() -> int:
    # As the layer ships it (layers/jobs/Makefile): compiling from source would count the compiler.
    for folder in (ROOT / "layers" / "jobs" / "jobcore", ROOT / "functions"):
        assert compileall.compile_dir(folder, quiet=1)
    pages_touched(BASELINE)  # the files in the OS cache: what is left counts the interpreter's own memory
    return pages_touched(BASELINE)


@pytest.mark.parametrize("logical_id", ROUTES)
def test_a_handler_touches_at_most_a_sixth_more_pages_than_the_baseline(logical_id: str, baseline_pages: int) -> None:
    code = HANDLER.format(path=str(SPECS[logical_id].module_path))
    pages_touched(code)
    pages = pages_touched(code)
    assert pages <= 1.15 * baseline_pages, f"{logical_id}: {pages} pages, baseline {baseline_pages}"
