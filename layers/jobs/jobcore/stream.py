"""The stream consumers' Lambda handlers: the fan-out (each stream record of the jobs table
becomes messages to its subscribers; a failed record is reported alone, the others are
delivered) and the queue counts.

The partial batch response is written here rather than with powertools' batch utility: it
is a loop, and the utility's import (asyncio and more, ~35 ms) was the largest part of the
fan-out's cold start."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# boto3 first, at a shallow call depth: why in jobcore/http.py.
import boto3  # noqa: F401
from msgspec.structs import asdict

from .observability import flush_metrics, logger, metrics_counter
from .wiring import wiring


class EveryRecordFailed(RuntimeError):
    """No record of the batch was handled: the invocation fails, so Lambda retries the batch
    (and counts an error)."""


def partial_response(records: list[dict[str, Any]], handle: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    """Each record handled on its own; the answer names those that failed by sequence number
    (ReportBatchItemFailures: Lambda retries the stream from the first of them on)."""
    failures = []
    for record in records:
        try:
            handle(record)
        except Exception:
            sequence = (record.get("dynamodb") or {}).get("SequenceNumber")
            logger.exception("stream record failed", extra={"sequence_number": sequence, "event_id": record.get("eventID")})
            failures.append({"itemIdentifier": sequence})
    if records and len(failures) == len(records):
        raise EveryRecordFailed(f"all {len(records)} records of the batch failed")
    return {"batchItemFailures": failures}


def fan_out_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One stream batch of the jobs table to the subscribers' sockets; failed records are
    reported one by one (ReportBatchItemFailures)."""
    logger.clear_state()
    batch = wiring.fan_out().batch()
    try:
        return partial_response(event.get("Records") or [], batch.deliver)
    finally:
        report = batch.report
        logger.info("fan-out done", extra={"records": len(event.get("Records") or []), **asdict(report)})
        for name, value in (("UpdatesSent", report.sent), ("ConnectionsGone", report.gone), ("PostsFailed", report.failed),
                            ("WorkNoticesSent", report.notices)):  # fmt: skip
            metrics_counter(name, value)
        flush_metrics()


def counts_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One stream batch of the jobs table to the queues' counts and per-minute history (and
    any message log entry a status post did not get to write).

    The mapping has a tumbling window only for the `shardId` it adds to each event: the
    counts keep a mark per shard (engine/counting.py). No window state is kept; the
    window's final invoke, with no records, does nothing.
    """
    logger.clear_state()
    records = event.get("Records") or []
    if records:
        shard = event.get("shardId")
        if not isinstance(shard, str) or not shard:
            raise RuntimeError("stream event without shardId: the mapping needs TumblingWindowInSeconds")
        engine = wiring.engine()
        written = engine.counting.apply(records, shard)
        # The same records say which status posts appended a message: each one's log entry
        # is written if the request stopped before it did (engine/message_log.py).
        repaired = engine.message_log.repair(records)
        logger.info("counts done", extra={"records": len(records), "items_written": written, "shard": shard,
                                          "messages_repaired": repaired})  # fmt: skip
        metrics_counter("CountWrites", written)
        flush_metrics()
    return {"state": {}}
