"""The only module that talks to AWS: DynamoDB, and the WebSocket API's @connections.

It serializes values, runs requests, and turns botocore errors into domain exceptions:
a failed condition carries the item as it was (``ReturnValuesOnConditionCheckFailure=
ALL_OLD``), so callers tell ``lease_lost`` from ``not_found`` without a second read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError
from msgspec import Struct, field

from .errors import ServiceUnavailable, Throttled
from .keys import INDEX_KEYS

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient
    from mypy_boto3_dynamodb import DynamoDBClient

Item = dict[str, Any]
Key = dict[str, str]

_THROTTLE_CODES = frozenset({"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"})
_TRANSIENT_CODES = frozenset({"InternalServerError", "ServiceUnavailable", "TransactionInProgressException"})

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def make_client(endpoint_url: str | None = None) -> DynamoDBClient:
    """A DynamoDB client with bounded timeouts and botocore's standard retries."""
    import boto3

    config = Config(
        retries={"mode": "standard", "max_attempts": 4},
        connect_timeout=2,
        read_timeout=5,
        tcp_keepalive=True,
    )
    return boto3.client("dynamodb", endpoint_url=endpoint_url or None, config=config)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, set):
        return {_plain(v) for v in value}
    return value


def serialize(item: Item) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in item.items()}


def deserialize(raw: dict[str, Any]) -> Item:
    return {k: _plain(_deserializer.deserialize(v)) for k, v in raw.items()}


class ConditionFailed(Exception):
    """A conditional write did not apply; ``item`` is the item as it was, or None."""

    def __init__(self, item: Item | None) -> None:
        super().__init__("condition failed")
        self.item = item


class CancelReason(Struct):
    code: str
    item: Item | None


class TransactionCanceled(Exception):
    """A transaction did not apply; one reason per operation, in order."""

    def __init__(self, reasons: list[CancelReason]) -> None:
        super().__init__(", ".join(r.code for r in reasons))
        self.reasons = reasons


_PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


class Expr(Struct):
    """Placeholders for one request's expressions: ``e.n("state")`` -> ``#state``."""

    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    def n(self, name: str) -> str:
        if _PLAIN_NAME.fullmatch(name):
            placeholder = "#" + name
        else:  # e.g. "seq:<shard id>": a placeholder may hold only letters, digits and _
            placeholder = next((p for p, v in self.names.items() if v == name), f"#_n{len(self.names)}")
        self.names[placeholder] = name
        return placeholder

    def v(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value
        return placeholder


class Write(Struct):
    """One write of a transaction (or on its own)."""

    kind: str  # put | update | delete | check
    key: Key | None = None
    item: Item | None = None
    update: str | None = None
    condition: str | None = None
    expr: Expr | None = None


def _expression_args(expr: Expr | None) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if expr is None:
        return args
    if expr.names:
        args["ExpressionAttributeNames"] = dict(expr.names)
    if expr.values:
        args["ExpressionAttributeValues"] = serialize(expr.values)
    return args


class TableStore:
    """Data access for one DynamoDB table (the jobs table, the connections table)."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table = table_name

    # -- errors ---------------------------------------------------------------------------
    def _raise_for(self, error: ClientError) -> None:
        code = error.response.get("Error", {}).get("Code", "")
        if code in _THROTTLE_CODES:
            raise Throttled("DynamoDB is throttling; retry later", retry_after_s=1) from error
        if code in _TRANSIENT_CODES:
            raise ServiceUnavailable("the database is unavailable; retry later") from error
        raise error

    # -- single items ---------------------------------------------------------------------
    def get(self, key: Key, *, consistent: bool = True) -> Item | None:
        try:
            response = self.client.get_item(TableName=self.table, Key=serialize(key), ConsistentRead=consistent)
        except ClientError as error:
            self._raise_for(error)
        raw = response.get("Item")
        return deserialize(raw) if raw else None

    def put(self, item: Item, *, condition: str | None = None, expr: Expr | None = None) -> None:
        args: dict[str, Any] = {"TableName": self.table, "Item": serialize(item), **_expression_args(expr)}
        if condition:
            args["ConditionExpression"] = condition
            args["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        self._conditional(self.client.put_item, args)

    def update(self, key: Key, update: str, *, condition: str | None, expr: Expr) -> Item:
        """Apply an update; returns the item as it is after it."""
        args: dict[str, Any] = {
            "TableName": self.table,
            "Key": serialize(key),
            "UpdateExpression": update,
            "ReturnValues": "ALL_NEW",
            **_expression_args(expr),
        }
        if condition:
            args["ConditionExpression"] = condition
            args["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        response = self._conditional(self.client.update_item, args)
        return deserialize(response["Attributes"])

    def delete(self, key: Key, *, condition: str | None = None, expr: Expr | None = None) -> Item | None:
        """Delete an item; returns it as it was, or None if there was none."""
        args: dict[str, Any] = {
            "TableName": self.table,
            "Key": serialize(key),
            "ReturnValues": "ALL_OLD",
            **_expression_args(expr),
        }
        if condition:
            args["ConditionExpression"] = condition
            args["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        response = self._conditional(self.client.delete_item, args)
        raw = response.get("Attributes")
        return deserialize(raw) if raw else None

    def _conditional(self, call: Any, args: dict[str, Any]) -> Any:
        try:
            return call(**args)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raw: Any = error.response.get("Item")
                raise ConditionFailed(deserialize(raw) if raw else None) from None
            self._raise_for(error)

    # -- transactions ---------------------------------------------------------------------
    def transact(self, writes: Sequence[Write]) -> None:
        """All or nothing. Raises TransactionCanceled with one reason per write."""
        items = [self._transact_item(w) for w in writes]
        try:
            self.client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                raw_reasons: list[Any] = error.response.get("CancellationReasons", [])
                reasons = [
                    CancelReason(r.get("Code", "None"), deserialize(r["Item"]) if r.get("Item") else None) for r in raw_reasons
                ]
                codes = {r.code for r in reasons}
                if "ConditionalCheckFailed" in codes:
                    raise TransactionCanceled(reasons) from None
                if codes & {"ThrottlingError", "ProvisionedThroughputExceeded"}:
                    raise Throttled("DynamoDB is throttling; retry later", retry_after_s=1) from error
                # TransactionConflict: another transaction touched the same items; nothing
                # was written, so the caller may retry.
                raise ServiceUnavailable("a concurrent change conflicted; retry") from error
            self._raise_for(error)

    def _transact_item(self, write: Write) -> dict[str, Any]:
        body: dict[str, Any] = {"TableName": self.table, **_expression_args(write.expr)}
        if write.condition:
            body["ConditionExpression"] = write.condition
            body["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        if write.kind == "put":
            assert write.item is not None
            body["Item"] = serialize(write.item)
            return {"Put": body}
        assert write.key is not None
        body["Key"] = serialize(write.key)
        if write.kind == "update":
            body["UpdateExpression"] = write.update
            return {"Update": body}
        if write.kind == "delete":
            return {"Delete": body}
        return {"ConditionCheck": body}

    # -- many items -----------------------------------------------------------------------
    def query(
        self,
        key_condition: str,
        expr: Expr,
        *,
        index: str | None = None,
        limit: int | None = None,
        start_key: Item | None = None,
        forward: bool = True,
        filter_expression: str | None = None,
        consistent: bool = False,
    ) -> tuple[list[Item], Item | None]:
        args: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": key_condition,
            "ScanIndexForward": forward,
            **_expression_args(expr),
        }
        if index:
            args["IndexName"] = index
        if limit:
            args["Limit"] = limit
        if start_key:
            args["ExclusiveStartKey"] = serialize(start_key)
        if filter_expression:
            args["FilterExpression"] = filter_expression
        if consistent:
            args["ConsistentRead"] = True
        try:
            response = self.client.query(**args)
        except ClientError as error:
            self._raise_for(error)
        last = response.get("LastEvaluatedKey")
        return [deserialize(i) for i in response.get("Items", [])], (deserialize(last) if last else None)

    def page(
        self,
        key_condition: str,
        expr: Expr,
        *,
        index: str | None = None,
        limit: int,
        start_key: Item | None = None,
        forward: bool = True,
        filter_expression: str | None = None,
        consistent: bool = False,
    ) -> tuple[list[Item], Item | None]:
        """One page of a Query: up to ``limit`` items, and the key to read on from exactly
        when more exist (the one paging loop of the service).

        It asks for one item more than the page holds, so that a full last page is not
        followed by an empty one; a filter may drop items, so it reads on until full.
        """
        kept: list[Item] = []
        start = start_key
        while True:
            found, last = self.query(
                key_condition, expr, index=index, limit=limit + 1 - len(kept), start_key=start, forward=forward,
                filter_expression=filter_expression, consistent=consistent,
            )  # fmt: skip
            kept.extend(found)
            if len(kept) > limit or last is None:
                break
            start = last
        if len(kept) <= limit:
            return kept, None
        kept = kept[:limit]
        return kept, {name: kept[-1][name] for name in INDEX_KEYS[index]}

    def fetched_page(
        self,
        key_condition: str,
        expr: Expr,
        *,
        index: str,
        limit: int,
        keep: Callable[[Item], bool],
        start_key: Item | None = None,
        forward: bool = True,
        max_looked: int = 1000,
    ) -> tuple[list[Item], Item | None]:
        """One page of whole items through an index that projects only keys: a Query for
        the keys, then one BatchGetItem for those that can fill the page; `keep` is the filter
        such an index cannot apply. The listing indexes keep no attribute that a heartbeat
        or a status post changes, so those writes never touch them (docs/architecture.md).

        Reads on while the page is short, up to `max_looked` keys (a bound on one request's
        work when a filter keeps few). The next start is the last key looked at, given when
        the Query showed more keys: a next page may then hold fewer items, even none.
        """
        kept: list[Item] = []
        start = start_key
        looked_total = 0
        while True:
            room = limit - len(kept)
            found, last = self.query(key_condition, expr, index=index, limit=room + 1, start_key=start, forward=forward)
            looked = found[:room]
            looked_total += len(looked)
            wanted = ({"PK": k["PK"], "SK": k["SK"]} for k in looked)
            fetched = {(i["PK"], i["SK"]): i for i in self.batch_get(wanted, consistent=False)}
            for key in looked:
                item = fetched.get((key["PK"], key["SK"]))
                if item is not None and keep(item):
                    kept.append(item)
            if len(found) <= room and last is None:
                return kept, None
            start = {name: looked[-1][name] for name in INDEX_KEYS[index]} if looked else last
            if len(kept) >= limit or looked_total >= max_looked:
                return kept, start

    def pages(
        self, key_condition: str, expr: Expr, *, index: str | None = None, page_size: int = 100, consistent: bool = False
    ) -> Iterator[list[Item]]:
        """Every item a Query selects, a page at a time."""
        start: Item | None = None
        while True:
            found, start = self.query(key_condition, expr, index=index, limit=page_size, start_key=start, consistent=consistent)
            yield found
            if start is None:
                return

    def scan(self, *, limit: int, start_key: Item | None = None) -> tuple[list[Item], Item | None]:
        """Only for delete-all and clean; never on a request path that serves a listing."""
        args: dict[str, Any] = {"TableName": self.table, "Limit": limit}
        if start_key:
            args["ExclusiveStartKey"] = serialize(start_key)
        try:
            response = self.client.scan(**args)
        except ClientError as error:
            self._raise_for(error)
        last = response.get("LastEvaluatedKey")
        return [deserialize(i) for i in response.get("Items", [])], (deserialize(last) if last else None)

    def batch_get(self, keys: Iterable[Key], *, consistent: bool = True) -> list[Item]:
        """Reads of items, 100 a request (strongly consistent unless told: an eventually
        consistent read costs half); unprocessed keys are retried."""
        pending = [serialize(k) for k in keys]
        found: list[Item] = []
        attempts = 0
        while pending:
            chunk, pending = pending[:100], pending[100:]
            request: dict[str, Any] = {self.table: {"Keys": chunk, "ConsistentRead": consistent}}
            while request:
                try:
                    response = self.client.batch_get_item(RequestItems=request)
                except ClientError as error:
                    self._raise_for(error)
                found.extend(deserialize(i) for i in response.get("Responses", {}).get(self.table, []))
                request = response.get("UnprocessedKeys") or {}
                attempts += 1
                if request and attempts > 8:
                    raise Throttled("DynamoDB left reads unprocessed; retry later", retry_after_s=1)
        return found

    def batch_delete(self, keys: Sequence[Key]) -> int:
        """Delete items, 25 a request; returns how many were sent."""
        for start in range(0, len(keys), 25):
            request: dict[str, Any] = {self.table: [{"DeleteRequest": {"Key": serialize(k)}} for k in keys[start : start + 25]]}
            attempts = 0
            while request:
                try:
                    response = self.client.batch_write_item(RequestItems=request)
                except ClientError as error:
                    self._raise_for(error)
                request = response.get("UnprocessedItems") or {}
                attempts += 1
                if request and attempts > 8:
                    raise Throttled("DynamoDB left deletes unprocessed; retry later", retry_after_s=1)
        return len(keys)


class ConnectionGone(Exception):
    """The WebSocket connection no longer exists (410 from @connections)."""


class SocketGateway:
    """Posts to WebSocket connections through API Gateway's @connections API."""

    def __init__(self, endpoint_url: str, *, max_parallel: int = 32) -> None:
        import boto3

        config = Config(
            # Throttling (429 LimitExceededException) is retried with backoff by botocore.
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=2,
            read_timeout=5,
            max_pool_connections=max_parallel,
        )
        self.client: ApiGatewayManagementApiClient = boto3.client(
            "apigatewaymanagementapi", endpoint_url=endpoint_url, config=config
        )

    def post(self, connection_id: str, data: bytes) -> None:
        """Send one message; raises ConnectionGone for a connection that went away."""
        try:
            self.client.post_to_connection(ConnectionId=connection_id, Data=data)
        except self.client.exceptions.GoneException:
            raise ConnectionGone(connection_id) from None
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code == "LimitExceededException":
                raise Throttled("API Gateway is throttling posts; retry later", retry_after_s=1) from error
            raise ServiceUnavailable(f"posting to {connection_id} failed: {code or error}") from error
