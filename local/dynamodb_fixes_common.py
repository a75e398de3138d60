"""State shared by the fixes of ``dynamodb_fixes``: settings, and what moto held before the patch."""

from __future__ import annotations

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


_settings = _Settings()


def _original(owner: Any, name: str) -> Any:
    """What ``owner.name`` was before the patch (inherited methods included)."""
    saved = _settings.originals.get((owner, name))
    return saved[1] if saved is not None else getattr(owner, name)
