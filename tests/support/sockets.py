"""A stand-in for API Gateway's @connections API in unit tests."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from jobcore.errors import ServiceUnavailable
from jobcore.store import ConnectionGone


@dataclass
class FakeSockets:
    """Stands in for @connections: records what each connection got, in order."""

    gone: set[str] = field(default_factory=set)
    failing: set[str] = field(default_factory=set)
    received: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))

    def post(self, connection_id: str, data: bytes) -> None:
        if connection_id in self.gone:
            raise ConnectionGone(connection_id)
        if connection_id in self.failing:
            raise ServiceUnavailable("posting failed")
        self.received[connection_id].append(json.loads(data))

    def versions(self, connection_id: str) -> list[int]:
        return [m["version"] for m in self.received[connection_id]]
