"""Event sources: DynamoDB stream mappings and the TTL sweeper.

Stream mappings are read from each function's `Events` of Type DynamoDB. Each mapping polls
every shard of its table's stream in order and invokes the function with batches in the
shape AWS sends, honouring BatchSize, MaximumBatchingWindowInSeconds,
FunctionResponseTypes [ReportBatchItemFailures], MaximumRetryAttempts,
BisectBatchOnFunctionError and DestinationConfig.OnFailure (an SQS queue): a poison record
ends in the destination and never blocks its shard. FilterCriteria patterns (exact values,
nested) drop the records they do not match before batching. TumblingWindowInSeconds adds
`shardId`, `window`, `state` (what the function last returned for the window) and
`isFinalInvokeForWindow` to each event and requires `state` in the answer; the window's
final invoke (with no records) is not made.

Faults for tests (JOBS_LOCAL_STREAM_FAULTS, "Function=n,..."): the next n invocations of a
function that succeed are treated as failed, as when Lambda times out after the function
did its work: the batch is delivered again (bisected, if the mapping says so).

The TTL sweeper deletes items whose TTL attribute has passed (moto never does), so REMOVE
records flow as in AWS; their records carry the TTL service's `userIdentity`.
"""

from __future__ import annotations

import functools
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .resolve import REGION
from .template import tables

if TYPE_CHECKING:
    from .config import Stage

POLL_INTERVAL_S = 0.05
TTL_SWEEP_INTERVAL_S = float(os.environ.get("JOBS_LOCAL_TTL_SWEEP_S", "5"))
# TTL delete records remembered for the stream's other mappings (the newest are enough).
TTL_RECORDS_KEPT = 100_000
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
RETRY_CAP = 10_000  # MaximumRetryAttempts -1 means "until the record expires": capped here


@dataclass(frozen=True)
class StreamMapping:
    function: str
    table: str  # logical id
    batch_size: int = 100
    window_s: float = 0.0
    report_failures: bool = False
    max_retries: int = RETRY_CAP
    bisect: bool = False
    on_failure: str | None = None
    starting_position: str = "LATEST"
    tumbling_window_s: int = 0
    filters: tuple[str, ...] = ()  # FilterCriteria patterns, JSON; a record passes if one matches

    def passes(self, record: dict[str, Any]) -> bool:
        return not self.filters or any(_matches(json.loads(p), record) for p in self.filters)


def _matches(pattern: Any, value: Any) -> bool:
    """An event filter pattern's subset: objects nest, a list names the values allowed."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(_matches(p, value.get(k)) for k, p in pattern.items())
    if isinstance(pattern, list):
        return value in pattern
    raise ValueError(f"unsupported filter pattern {pattern!r}")


def stream_mappings(template: dict[str, Any]) -> list[StreamMapping]:
    found = []
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        for event in (resource.get("Properties", {}).get("Events") or {}).values():
            if event.get("Type") != "DynamoDB":
                continue
            props = event.get("Properties", {})
            if props.get("Enabled") is False:
                continue
            stream = props["Stream"]
            table = stream["Fn::GetAtt"][0] if isinstance(stream, dict) else str(stream).split(".")[0]
            retries = int(props.get("MaximumRetryAttempts", -1))
            destination = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
            found.append(
                StreamMapping(
                    function=logical_id,
                    table=table,
                    batch_size=int(props.get("BatchSize", 100)),
                    window_s=float(props.get("MaximumBatchingWindowInSeconds", 0)),
                    report_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
                    max_retries=RETRY_CAP if retries < 0 else retries,
                    bisect=bool(props.get("BisectBatchOnFunctionError", False)),
                    on_failure=json.dumps(destination) if isinstance(destination, dict) else destination,
                    starting_position=str(props.get("StartingPosition", "LATEST")),
                    tumbling_window_s=int(props.get("TumblingWindowInSeconds", 0)),
                    filters=tuple(str(f["Pattern"]) for f in (props.get("FilterCriteria") or {}).get("Filters") or []),
                )
            )
    return found


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _key_of(keys: dict[str, Any]) -> str:
    return json.dumps(keys, sort_keys=True)


class _Sources:
    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.stop_event = threading.Event()
        self.ttl_deleted: dict[str, set[str]] = {}  # table -> keys the sweeper deleted
        # Stream records of the sweeper's deletes, by (table, sequence number): every mapping
        # of the stream sees them as TTL deletes, not only the first to read them.
        self.ttl_records: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.faults = dict(stage.config.stream_faults)
        # Tumbling windows: per (function, shard), the window's start and its state.
        self.windows: dict[tuple[str, str], tuple[int, Any]] = {}

    def log(self, line: str) -> None:
        self.stage.log(line)

    # -- streams ------------------------------------------------------------------------
    def open(self, mapping: StreamMapping) -> tuple[str, dict[str, str | None]] | None:
        """The stream and a position per shard (the last sequence number read; None for the
        start of the shard), taken before start() returns, so that nothing written after
        the start is missed at LATEST."""
        streams = self.stage.client("dynamodbstreams")
        table_name = self.stage.table_names[mapping.table]
        arn = self.stage.client("dynamodb").describe_table(TableName=table_name)["Table"].get("LatestStreamArn")
        if not arn:
            self.log(f"[streams] {mapping.table} has no stream; {mapping.function} gets nothing")
            return None
        positions: dict[str, str | None] = {}
        for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            shard_id = shard["ShardId"]
            positions[shard_id] = None
            if mapping.starting_position != "TRIM_HORIZON":  # LATEST: skip what is there
                while records := self._read(streams, arn, shard_id, positions[shard_id]):
                    positions[shard_id] = records[-1]["dynamodb"]["SequenceNumber"]
        return arn, positions

    @staticmethod
    def _read(streams: Any, arn: str, shard_id: str, after: str | None) -> list[dict[str, Any]]:
        """Records after a sequence number, through a fresh iterator: moto replaces a table's
        stream shard when it rolls back a cancelled transaction, and an iterator taken
        before that never sees another record."""
        if after is None:
            iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")
        else:
            iterator = streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard_id, ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=after
            )
        return list(streams.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000).get("Records", []))

    def poll(self, mapping: StreamMapping, arn: str, positions: dict[str, str | None]) -> None:
        streams = self.stage.client("dynamodbstreams")
        table_name = self.stage.table_names[mapping.table]
        pending: dict[str, list[dict[str, Any]]] = {shard: [] for shard in positions}
        first_seen: dict[str, float] = {}
        while not self.stop_event.is_set():
            for shard, position in list(positions.items()):
                raw = self._read(streams, arn, shard, position)
                if raw:
                    positions[shard] = raw[-1]["dynamodb"]["SequenceNumber"]
                records = [r for r in (self._record(r, arn, table_name) for r in raw) if mapping.passes(r)]
                if records:
                    first_seen.setdefault(shard, time.monotonic())
                pending[shard] += records
                while pending[shard] and (
                    len(pending[shard]) >= mapping.batch_size or time.monotonic() - first_seen.get(shard, 0) >= mapping.window_s
                ):
                    batch, pending[shard] = pending[shard][: mapping.batch_size], pending[shard][mapping.batch_size :]
                    self.deliver(mapping, batch, shard)
                if not pending[shard]:
                    first_seen.pop(shard, None)
            self.stop_event.wait(POLL_INTERVAL_S)

    def _record(self, raw: dict[str, Any], arn: str, table_name: str) -> dict[str, Any]:
        record: dict[str, Any] = json.loads(json.dumps(raw, default=str))
        created = raw.get("dynamodb", {}).get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            record["dynamodb"]["ApproximateCreationDateTime"] = int(created.astimezone(UTC).timestamp())
        record["eventVersion"] = "1.1"
        record["awsRegion"] = REGION
        record["eventSourceARN"] = arn
        if record.get("eventName") == "REMOVE":
            key = _key_of(record["dynamodb"].get("Keys", {}))
            sequence = (table_name, str(record["dynamodb"].get("SequenceNumber", "")))
            with self.lock:
                swept = self.ttl_deleted.get(table_name, set())
                if key in swept:
                    swept.discard(key)
                    self.ttl_records[sequence] = None
                    while len(self.ttl_records) > TTL_RECORDS_KEPT:
                        self.ttl_records.popitem(last=False)
                if sequence in self.ttl_records:
                    record["userIdentity"] = dict(TTL_IDENTITY)
        return record

    def _event(self, mapping: StreamMapping, records: list[dict[str, Any]], shard: str) -> dict[str, Any]:
        event: dict[str, Any] = {"Records": records}
        if mapping.tumbling_window_s:
            size = mapping.tumbling_window_s
            start = int(time.time()) // size * size
            opened, state = self.windows.get((mapping.function, shard), (start, {}))
            if opened != start:
                state = {}
            self.windows[(mapping.function, shard)] = (start, state)
            event.update({
                "window": {"start": _iso(start), "end": _iso(start + size)}, "state": state, "shardId": shard,
                "eventSourceARN": records[0]["eventSourceARN"] if records else None,
                "isFinalInvokeForWindow": False, "isWindowTerminatedEarly": False,
            })  # fmt: skip
        return event

    def _faulted(self, mapping: StreamMapping) -> bool:
        """Whether a fault is injected into this (successful) invocation."""
        with self.lock:
            left = self.faults.get(mapping.function, 0)
            if left > 0:
                self.faults[mapping.function] = left - 1
                return True
        return False

    def deliver(self, mapping: StreamMapping, batch: list[dict[str, Any]], shard: str = "local") -> None:
        """Invoke until the batch succeeds; failed records go to the destination, then on."""
        queue = [batch]
        while queue and not self.stop_event.is_set():
            records = queue.pop(0)
            attempts = 0
            while records:
                outcome = self.stage.runtimes[mapping.function].invoke(self._event(mapping, records, shard))
                if outcome.ok and mapping.tumbling_window_s:
                    if not isinstance(outcome.payload, dict) or "state" not in outcome.payload:
                        outcome.ok, outcome.error_message = False, "a tumbling window's answer must hold state"
                    else:
                        key = (mapping.function, shard)
                        self.windows[key] = (self.windows[key][0], outcome.payload["state"])
                if outcome.ok and self._faulted(mapping):
                    outcome.ok, outcome.error_message = False, "injected fault (JOBS_LOCAL_STREAM_FAULTS)"
                    self.log(f"[streams] {mapping.function}: {len(records)} record(s) done, but failed by an injected fault")
                failed_from = self._failed_from(mapping, outcome, records)
                if failed_from is None:
                    if self.stage.config.log_format == "json":
                        self.log(f"[streams] {mapping.function}: {len(records)} record(s) delivered")
                    break
                for line in outcome.logs:
                    self.log(line)
                records = records[failed_from:]
                attempts += 1
                if mapping.bisect and len(records) > 1:
                    half = len(records) // 2
                    queue[:0] = [records[:half], records[half:]]
                    self.log(f"[streams] {mapping.function}: batch failed, split in two")
                    break
                if attempts > mapping.max_retries:
                    self.to_destination(mapping, records, outcome.error_message or "batch item failure")
                    break

    @staticmethod
    def _failed_from(mapping: StreamMapping, outcome: Any, records: list[dict[str, Any]]) -> int | None:
        """Index of the first record to retry, or None when all succeeded."""
        if not outcome.ok:
            return 0
        if mapping.report_failures and isinstance(outcome.payload, dict):
            failures = outcome.payload.get("batchItemFailures") or []
            sequence_numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
            indexes = [
                sequence_numbers.index(f["itemIdentifier"]) for f in failures if f.get("itemIdentifier") in sequence_numbers
            ]
            if failures and not indexes:
                return 0  # an identifier we do not know: the whole batch failed
            return min(indexes) if indexes else None
        return None

    def to_destination(self, mapping: StreamMapping, records: list[dict[str, Any]], reason: str) -> None:
        first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
        message = {
            "requestContext": {
                "condition": "RetryAttemptsExhausted",
                "functionArn": mapping.function,
                "approximateInvokeCount": mapping.max_retries + 1,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": reason},
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "DDBStreamBatchInfo": {
                "shardId": "local",
                "startSequenceNumber": first["SequenceNumber"],
                "endSequenceNumber": last["SequenceNumber"],
                "batchSize": len(records),
                "streamArn": records[0]["eventSourceARN"],
            },
        }
        if mapping.on_failure is None:
            self.log(f"[streams] {mapping.function}: {len(records)} record(s) dropped after retries (no destination)")
            return
        destination = mapping.on_failure
        if destination.startswith("{"):
            reference = json.loads(destination)
            logical_id = reference.get("Fn::GetAtt", [reference.get("Ref")])[0]
            queue_name = self.stage.resolver.ref(logical_id) if self.stage.resolver else logical_id
        else:
            queue_name = destination.rsplit(":", 1)[-1]
        sqs = self.stage.client("sqs")
        url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(message))
        self.log(f"[streams] {mapping.function}: {len(records)} record(s) sent to {queue_name} after retries")

    # -- TTL ----------------------------------------------------------------------------
    def sweep_forever(self) -> None:
        while not self.stop_event.wait(TTL_SWEEP_INTERVAL_S):
            try:
                self.sweep()
            except Exception as error:  # the sweeper must outlive a bad pass
                self.log(f"[ttl] sweep failed: {error}")

    def sweep(self) -> int:
        """Delete every item past its TTL, each on the condition that it still is."""
        dynamodb = self.stage.client("dynamodb")
        deleted = 0
        for logical_id, properties in tables(self.stage.template).items():
            ttl = properties.get("TimeToLiveSpecification") or {}
            if not ttl.get("Enabled"):
                continue
            attribute = ttl["AttributeName"]
            table_name = self.stage.table_names[logical_id]
            key_names = [k["AttributeName"] for k in properties["KeySchema"]]
            now = int(time.time())
            for keys in self._expired(dynamodb, table_name, attribute, key_names, now):
                with self.lock:
                    self.ttl_deleted.setdefault(table_name, set()).add(_key_of(keys))
                try:
                    dynamodb.delete_item(
                        TableName=table_name,
                        Key=keys,
                        ConditionExpression="#ttl <= :now",
                        ExpressionAttributeNames={"#ttl": attribute},
                        ExpressionAttributeValues={":now": {"N": str(now)}},
                    )
                    deleted += 1
                except dynamodb.exceptions.ConditionalCheckFailedException:
                    with self.lock:
                        self.ttl_deleted[table_name].discard(_key_of(keys))
        if deleted:
            self.log(f"[ttl] deleted {deleted} expired item(s)")
        return deleted

    def _expired(self, dynamodb: Any, table_name: str, attribute: str, key_names: list[str], now: int) -> list[dict[str, Any]]:
        """Keys of expired items: from the embedded DynamoDB's TTL index, else by a Scan of
        the other endpoint (DynamoDB Local has no TTL of its own either)."""
        if self.stage.moto is not None:
            return self.stage.moto.expired_keys(table_name, now)
        found: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while True:
            args: dict[str, Any] = {
                "TableName": table_name,
                "FilterExpression": "#ttl <= :now",
                "ExpressionAttributeNames": {"#ttl": attribute},
                "ExpressionAttributeValues": {":now": {"N": str(now)}},
            }
            if start:
                args["ExclusiveStartKey"] = start
            page = dynamodb.scan(**args)
            found += [{name: item[name] for name in key_names} for item in page.get("Items", [])]
            start = page.get("LastEvaluatedKey")
            if not start:
                return found

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        for mapping in stream_mappings(self.stage.template):
            opened = self.open(mapping)
            if opened is None:
                continue
            arn, positions = opened
            thread = threading.Thread(
                target=self._guarded(functools.partial(self.poll, mapping, arn, positions), mapping),
                name=f"stream-{mapping.function}",
                daemon=True,
            )
            self.threads.append(thread)
        self.threads.append(threading.Thread(target=self.sweep_forever, name="ttl-sweeper", daemon=True))
        for thread in self.threads:
            thread.start()

    def _guarded(self, target: Callable[[], None], mapping: StreamMapping) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except Exception as error:
                if not self.stop_event.is_set():
                    self.log(f"[streams] poller of {mapping.function} stopped: {error}")

        return run

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=10)


def start_event_sources(stage: Stage) -> Callable[[], None]:
    """Start the stream pollers and the TTL sweeper the template implies; returns their stopper."""
    sources = _Sources(stage)
    sources.start()
    return sources.stop
