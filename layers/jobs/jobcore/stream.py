"""The stream fan-out's Lambda handler: each stream record of the jobs table becomes
messages to its subscribers (powertools BatchProcessor: a failed record is reported alone,
the others are delivered). Apart from websocket.py so that the WebSocket routes do not
import the batch utility (~35 ms of cold start)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from .observability import flush_metrics, logger, metrics_counter
from .wiring import wiring

_processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def fan_out_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One stream batch of the jobs table to the subscribers' sockets; failed records are
    reported one by one (ReportBatchItemFailures)."""
    logger.clear_state()
    batch = wiring.fan_out().batch()

    def deliver(record: DynamoDBRecord) -> int:
        return batch.deliver(record.raw_event)

    try:
        return dict(process_partial_response(event=event, record_handler=deliver, processor=_processor, context=context))
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
