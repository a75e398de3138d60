"""Domain events as CloudWatch metrics: each counted per queue, and published both for the
whole service (what the alarms watch) and per queue (the dashboard's graphs)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobcore.observability import Recorder, flush_metrics, metrics_counter


def emf_lines(text: str) -> list[dict[str, Any]]:
    """The EMF lines printed, each metric's values summed (Powertools writes lists)."""
    lines = [line for line in map(json.loads, filter(None, text.splitlines())) if "_aws" in line]
    for line in lines:
        for metric in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            line[metric["Name"]] = sum(line[metric["Name"]])
    return lines


def test_a_queues_events_are_published_for_the_service_and_for_the_queue(capsys: pytest.CaptureFixture[str]) -> None:
    metrics_counter("JobsCreated", 2, queue="mail")
    metrics_counter("JobsCreated", 1, queue="mail")
    metrics_counter("JobsCompleted", 1, queue="mail")
    metrics_counter("JobsCreated", 5, queue="video")
    metrics_counter("UpdatesSent", 7)
    metrics_counter("ConnectionsGone", 0, queue="mail")  # nothing to say: not published
    flush_metrics()

    lines = emf_lines(capsys.readouterr().out)
    plain = [line for line in lines if "queue" not in line]
    by_queue = {line["queue"]: line for line in lines if "queue" in line}
    assert len(plain) == 1 and plain[0]["UpdatesSent"] == 7
    assert plain[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert set(by_queue) == {"mail", "video"}
    mail = by_queue["mail"]
    assert mail["JobsCreated"] == 3 and mail["JobsCompleted"] == 1 and "ConnectionsGone" not in mail
    assert mail["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"], ["service", "queue"]]
    assert mail["_aws"]["CloudWatchMetrics"][0]["Namespace"] == plain[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"]
    assert by_queue["video"]["JobsCreated"] == 5 and "JobsCompleted" not in by_queue["video"]


def test_nothing_is_carried_into_the_next_invocation(capsys: pytest.CaptureFixture[str]) -> None:
    metrics_counter("JobsFailed", 1, queue="mail")
    flush_metrics()
    capsys.readouterr()
    metrics_counter("JobsCreated", 1, queue="video")
    flush_metrics()
    lines = emf_lines(capsys.readouterr().out)
    assert [(line.get("queue"), "JobsFailed" in line) for line in lines] == [("video", False)]
    assert lines[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"], ["service", "queue"]]


def test_the_engine_counts_each_event_of_its_queue(service: Any, svc: Any, events: Recorder) -> None:
    service.create(svc, {"type": "mail"})
    service.create(svc, {"type": "video"})
    service.batch(svc, {"create": [{"type": "mail"}, {"type": "mail"}, {"type": "video"}]})
    leased = service.claim(svc, "mail", {"timeout_ms": 60_000})
    service.complete(svc, leased.id, {"lease_token": leased.lease_token})
    other = service.claim(svc, "video", {"timeout_ms": 60_000})
    service.fail(svc, other.id, {"lease_token": other.lease_token, "error": {"code": "x", "message": "y"}, "retry": False})

    assert events.by_queue[("JobsCreated", "mail")] == 3 and events.by_queue[("JobsCreated", "video")] == 2
    assert events.by_queue[("JobsClaimed", "mail")] == 1 and events.by_queue[("JobsClaimed", "video")] == 1
    assert events.by_queue[("JobsCompleted", "mail")] == 1 and events.by_queue[("JobsFailed", "video")] == 1
    assert events.counts["JobsCreated"] == 5 and events.by_queue[("JobsCreated", None)] == 0
