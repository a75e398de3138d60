"""The WebSocket routes' Lambda side: ``handler = ws_route(operation)``.

The wrapper reads the API Gateway WebSocket event, takes the caller from the `$connect`
authorizer's context, runs the operation and answers with its reply (the routes are
two-way) or with `{"type": "error", "error": {...}}` in the contract's error shape. A frame
that is not plain JSON (however nested or large) is an error reply, never a dropped socket.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

# boto3 first, at a shallow call depth: why in jobcore/http.py.
import boto3  # noqa: F401
from msgspec import Struct

from .auth import decode_queues
from .commands.live import parse_topic
from .errors import JobsError, Unauthorized
from .live.messages import Topic
from .live.subscriptions import Subscriptions
from .model import Principal, Role
from .observability import logger
from .settings import Limits
from .wire import decode_json
from .wiring import wiring

WsReply = dict[str, Any] | None
INTERNAL_ERROR = {"error": {"code": "internal_error", "message": "internal error", "details": {}}}
LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]
LIMITS = Limits()


class WsRequest(Struct):
    event: Mapping[str, Any]
    connection_id: str

    @property
    def principal(self) -> Principal:
        """The caller; only routes that need it ask ($disconnect must work without it)."""
        return principal_of_connection(self.event.get("requestContext") or {})

    @property
    def subscriptions(self) -> Subscriptions:
        return wiring.subscriptions()

    def message(self) -> Any:
        return decode_json(str(self.event.get("body") or ""), LIMITS, what="message")

    def topic(self) -> Topic | None:
        return parse_topic(self.message(), LIMITS)


def principal_of_connection(context: Mapping[str, Any]) -> Principal:
    """The caller, as the `$connect` authorizer put it in the connection's context."""
    found = context.get("authorizer") or {}
    try:
        return Principal(str(found["sub"]), Role(str(found["role"])), decode_queues(found.get("queues")))
    except (KeyError, ValueError):
        raise Unauthorized("the connection carries no valid principal") from None


def _body(reply: Mapping[str, Any]) -> str:
    return json.dumps(reply, separators=(",", ":"), ensure_ascii=False)


def ws_route(operation: Callable[[WsRequest], WsReply]) -> LambdaHandler:
    """Turn an operation into the Lambda handler of one WebSocket route."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        request_context = event.get("requestContext") or {}
        route = str(request_context.get("routeKey", ""))
        connection_id = str(request_context.get("connectionId", ""))
        logger.clear_state()
        logger.set_correlation_id(str(request_context.get("requestId") or ""))
        logger.append_keys(route=route, connection_id=connection_id)
        try:
            reply = operation(WsRequest(event, connection_id))
        except JobsError as error:
            logger.info("message refused", extra={"code": error.code, "status": error.status})
            if route == "$connect":  # a status >= 400 refuses the upgrade
                return {"statusCode": error.status}
            reply = {"type": "error", "action": route, **error.to_body()}
        except Exception:
            logger.exception("unexpected error")
            if route == "$connect":
                return {"statusCode": 500}
            reply = {"type": "error", "action": route, **INTERNAL_ERROR}
        return {"statusCode": 200, "body": _body(reply)} if reply is not None else {"statusCode": 200}

    handler.__name__ = operation.__name__
    handler.__doc__ = operation.__doc__
    return handler
