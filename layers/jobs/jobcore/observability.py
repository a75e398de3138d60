"""Logs, metrics and traces: made once per container, here and nowhere else.

Domain events (a job created, claimed, finished...) are counted where they happen, in the
engine, through a `Counter` it is handed: `metrics_counter` in Lambda, a plain recorder in
tests. Handlers never count on the engine's behalf, so a job finished by any route counts.

An event of a queue is published twice from one EMF line: under `service` (what the alarms
watch) and under `service` + `queue` (the dashboard's per-queue graphs). Each queue is one
more custom metric per event name: docs/operations.md counts the cost.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from .settings import ObservabilitySettings

_settings = ObservabilitySettings.from_env()

logger = Logger(service=_settings.service_name)
metrics = Metrics(namespace=_settings.metrics_namespace, service=_settings.service_name)


class Counter(Protocol):
    """Counts a domain event; `value` events at once, of `queue` when it has one."""

    def __call__(self, name: str, value: int = 1, queue: str | None = None) -> None: ...


# Events of a queue wait here until the invocation ends: one EMF line per queue.
_by_queue: defaultdict[str, Tally[str]] = defaultdict(Tally)


def metrics_counter(name: str, value: int = 1, queue: str | None = None) -> None:
    """CloudWatch metrics (EMF), flushed when the invocation ends."""
    if not value:
        return
    if queue:
        _by_queue[queue][name] += value
    else:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def flush_metrics() -> None:
    if metrics.provider.metric_set:
        metrics.flush_metrics()
    for queue, counts in _by_queue.items():
        for name, value in counts.items():
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        metrics.add_dimensions(service=_settings.service_name, queue=queue)
        metrics.flush_metrics()
    _by_queue.clear()


class Recorder:
    """A Counter that remembers: for tests and benchmarks. `counts` by name over all queues,
    `by_queue` by (name, queue)."""

    def __init__(self) -> None:
        self.counts: Tally[str] = Tally()
        self.by_queue: Tally[tuple[str, str | None]] = Tally()

    def __call__(self, name: str, value: int = 1, queue: str | None = None) -> None:
        self.counts[name] += value
        self.by_queue[(name, queue)] += value


def traced(operation: Callable[..., Any]) -> Callable[..., Any]:
    """The operation wrapped by an X-Ray subsegment, where X-Ray is there."""
    if not _settings.tracing:
        return operation
    from aws_lambda_powertools import Tracer

    return Tracer(service=_settings.service_name).capture_method(operation)
