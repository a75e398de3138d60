"""Logs, metrics and traces: made once per container, here and nowhere else.

Domain events (a job created, claimed, finished...) are counted where they happen, in the
engine, through a `Counter` it is handed: `metrics_counter` in Lambda, a plain recorder in
tests. Handlers never count on the engine's behalf, so a job finished by any route counts.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable
from typing import Any, Protocol

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from .settings import ObservabilitySettings

_settings = ObservabilitySettings.from_env()

logger = Logger(service=_settings.service_name)
metrics = Metrics(namespace=_settings.metrics_namespace, service=_settings.service_name)


class Counter(Protocol):
    """Counts a domain event; `value` events at once."""

    def __call__(self, name: str, value: int = 1) -> None: ...


def metrics_counter(name: str, value: int = 1) -> None:
    """CloudWatch metrics (EMF), flushed when the invocation ends."""
    if value:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def flush_metrics() -> None:
    if metrics.provider.metric_set:
        metrics.flush_metrics()


class Recorder:
    """A Counter that remembers: for tests and benchmarks."""

    def __init__(self) -> None:
        self.counts: Tally[str] = Tally()

    def __call__(self, name: str, value: int = 1) -> None:
        self.counts[name] += value


def traced(operation: Callable[..., Any]) -> Callable[..., Any]:
    """The operation wrapped by an X-Ray subsegment, where X-Ray is there."""
    if not _settings.tracing:
        return operation
    from aws_lambda_powertools import Tracer

    return Tracer(service=_settings.service_name).capture_method(operation)
