"""Function sandboxes of the local cloud: environment, warmth, isolation, Timeout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud.runtime import FunctionConfig, FunctionRuntime

FIXTURES = Path(__file__).parent / "fixtures" / "runtime"


def runtime(name: str, env: dict[str, str], timeout_s: float = 5) -> FunctionRuntime:
    config = FunctionConfig(name, FIXTURES, "probe.handler", (), {"PATH": "/usr/bin:/bin", **env}, timeout_s)
    return FunctionRuntime(config, max_concurrency=2)


@pytest.fixture
def runtimes() -> Iterator[tuple[FunctionRuntime, FunctionRuntime]]:
    first = runtime("First", {"ONLY_MINE": "first", "SHARED": "s", "AWS_LAMBDA_FUNCTION_NAME": "First"}, timeout_s=1)
    second = runtime("Second", {"SHARED": "s", "AWS_LAMBDA_FUNCTION_NAME": "Second"})
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def test_each_function_has_exactly_its_environment_and_stays_warm(runtimes):
    first, second = runtimes
    one = first.invoke({})
    two = first.invoke({})
    other = second.invoke({})
    assert one.ok and two.ok and other.ok
    assert one.payload["env"] == {"ONLY_MINE": "first", "SHARED": "s", "AWS_LAMBDA_FUNCTION_NAME": "First"}
    assert other.payload["env"] == {"ONLY_MINE": None, "SHARED": "s", "AWS_LAMBDA_FUNCTION_NAME": "Second"}
    # Warm: the same process, module state kept between invocations of one function...
    assert (two.payload["pid"], two.payload["calls"]) == (one.payload["pid"], 2)
    # ...and never shared with another function's.
    assert other.payload["pid"] != one.payload["pid"] and other.payload["calls"] == 1
    assert 0 < one.payload["remaining_ms"] <= 1000


def test_the_timeout_kills_the_sandbox_and_the_next_call_starts_cold(runtimes):
    first, _ = runtimes
    warm = first.invoke({})
    slow = first.invoke({"sleep": 3})
    assert not slow.ok and slow.timed_out and "timed out" in (slow.error_message or "")
    fresh = first.invoke({})
    assert fresh.ok and fresh.payload["calls"] == 1 and fresh.payload["pid"] != warm.payload["pid"]


def test_an_exception_is_an_error_result_and_the_sandbox_lives_on(runtimes):
    _, second = runtimes
    failed = second.invoke({"raise": True})
    assert not failed.ok and (failed.error_type, failed.error_message) == ("ValueError", "asked to fail")
    after = second.invoke({})
    assert after.ok and after.payload["calls"] == 2
