"""List cursors: opaque, and sealed to the listing and the caller that got them.

A cursor is the key to read on from, with the listing's scope (route, filters, caller), in
base64url, followed by an HMAC-SHA256 tag of both. An edited, truncated or fabricated
cursor, or one of another listing or caller, fails the tag or the scope: a 400 naming
`cursor`, never a request to DynamoDB with a start key it would refuse.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from .errors import InvalidRequest

TAG_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _tag(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest()[:TAG_BYTES])


def seal(key: bytes, scope: str, start: dict[str, Any]) -> str:
    payload = _b64(json.dumps({"s": scope, "k": start}, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_tag(key, payload)}"


def open_cursor(key: bytes, scope: str, cursor: str) -> dict[str, Any]:
    """The start key a cursor carries; InvalidRequest unless this listing issued it."""
    refused = InvalidRequest.fields({"cursor": "not a cursor of this listing"})
    payload, _, tag = cursor.partition(".")
    if not payload or not tag or not hmac.compare_digest(tag, _tag(key, payload)):
        raise refused
    try:
        body = json.loads(_unb64(payload))
    except (ValueError, UnicodeDecodeError):
        raise refused from None
    start = body.get("k") if isinstance(body, dict) else None
    if body.get("s") != scope or not isinstance(start, dict):
        raise refused
    if not all(isinstance(k, str) and isinstance(v, str | int) and not isinstance(v, bool) for k, v in start.items()):
        raise refused
    return start
