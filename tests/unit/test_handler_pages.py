"""A cold start's memory: a handler's import touches hardly more pages than the baseline of
bench/cold_start.py (`import boto3` and a powertools `Logger()`).

Minor page faults count the pages a fresh interpreter touches: unlike its CPU time, the count
is the same run after run on a loaded machine (within a few pages), so it can be asserted.
Imported deep inside jobcore's own imports, botocore's import kept crossing a boundary of
CPython 3.11's frame-stack chunks, each crossing mapping a fresh chunk (python/cpython#142183):
800-1,600 more pages for the very same modules (1.20-1.37x the baseline). The entry modules
import boto3 first, at a shallow depth (jobcore/http.py)."""

from __future__ import annotations

import pytest

from localcloud.functions import functions
from localcloud.template import load_template
from tests.support.imports import BASELINE, compile_bytecode, handler_code, measure

# One function of each entry module: the HTTP edge, the WebSocket edge, the stream, the schedules.
ROUTES = ["ExtendLeaseFunction", "WsPingFunction", "FanOutFunction", "RunSchedulesFunction"]
SPECS = {spec.logical_id: spec for spec in functions(load_template()).values()}


@pytest.fixture(scope="module")
def baseline_pages() -> int:
    compile_bytecode()  # as the layer ships it: compiling from source would count the compiler
    measure(BASELINE)  # the files in the OS cache: what is left counts the interpreter's own memory
    return measure(BASELINE).pages


@pytest.mark.parametrize("logical_id", ROUTES)
def test_a_handler_touches_at_most_a_sixth_more_pages_than_the_baseline(logical_id: str, baseline_pages: int) -> None:
    spec = SPECS[logical_id]
    code = handler_code(spec.module_path, spec.handler.rpartition(".")[2])
    measure(code)
    pages = measure(code).pages
    assert pages <= 1.15 * baseline_pages, f"{logical_id}: {pages} pages, baseline {baseline_pages}"
