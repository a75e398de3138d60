"""Counting DynamoDB requests and items read, with a botocore event hook.

This is what a serverless user pays for, and unlike latency it does not depend on the
machine's noise.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

READS = {"GetItem", "Query", "Scan", "BatchGetItem"}
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}


@dataclass
class RequestCounter:
    calls: Counter[str] = field(default_factory=Counter)
    items_read: int = 0

    def __call__(self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        name = model.name
        self.calls[name] += 1
        if name == "GetItem":
            self.items_read += 1 if parsed.get("Item") else 0
        elif name in ("Query", "Scan"):
            # Billed on what was read before any filter: ScannedCount.
            self.items_read += int(parsed.get("ScannedCount", parsed.get("Count", 0)))
        elif name == "BatchGetItem":
            self.items_read += sum(len(v) for v in parsed.get("Responses", {}).values())

    def reset(self) -> None:
        self.calls.clear()
        self.items_read = 0

    @property
    def reads(self) -> int:
        return sum(n for op, n in self.calls.items() if op in READS)

    @property
    def writes(self) -> int:
        return sum(n for op, n in self.calls.items() if op in WRITES)

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def attach(self, client: Any) -> RequestCounter:
        client.meta.events.register("after-call.dynamodb", self)
        return self
