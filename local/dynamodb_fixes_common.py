"""State shared by the fixes of ``dynamodb_fixes``: settings, and what moto held before the patch."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

DEFAULT_STREAM_RETENTION_S = 60.0


@dataclass
class _Settings:
    stream_retention_s: float = DEFAULT_STREAM_RETENTION_S
    installed: bool = False
    # (class, name) -> (what the class itself held, or None when it inherited it; what a
    # caller reached through the class before the patch)
    originals: dict[tuple[Any, str], tuple[Any, Any]] = field(default_factory=dict)
    # ClientRequestToken -> (digest of the items it applied, monotonic time), oldest first
    client_tokens: OrderedDict[str, tuple[str, float]] = field(default_factory=OrderedDict)
    # Held by every request to DynamoDB or its streams: the fixes keep indexes beside moto's
    # items, so two requests must never interleave. The embedded server is serial anyway;
    # in-process moto (the unit tests) is called from many threads at once.
    request_lock: threading.RLock = field(default_factory=threading.RLock)


_settings = _Settings()


def _original(owner: Any, name: str) -> Any:
    """What ``owner.name`` was before the patch (inherited methods included)."""
    saved = _settings.originals.get((owner, name))
    return saved[1] if saved is not None else getattr(owner, name)


def _one_request_at_a_time(owner: Any) -> Any:
    """``owner.call_action`` run under the fixes' request lock."""

    def call_action(self: Any) -> Any:
        with _settings.request_lock:
            return _original(owner, "call_action")(self)

    return call_action
