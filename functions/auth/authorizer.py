"""The Lambda REQUEST authorizer of the HTTP and WebSocket APIs."""

from typing import Any

from jobcore.authorizer import authorize


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return authorize(event)
