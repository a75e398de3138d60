"""The Lambda side of live updates: WebSocket routes, and the services they share with the
stream fan-out (`stream_api.py`).

A WebSocket route module is one operation: ``handler = ws_route(operation)``. The wrapper
reads the API Gateway WebSocket event, takes the caller from the `$connect` authorizer's
context, runs the operation and answers with its reply (the routes are two-way) or with
`{"type": "error", "error": {...}}` in the contract's error shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from . import api
from .errors import InvalidJson, JobsError, Unauthorized
from .live import FanOut, LiveService, LiveSettings
from .model import Principal, Role
from .store import SocketGateway, TableStore, make_client

logger = Logger()

WsReply = dict[str, Any] | None
INTERNAL_ERROR = {"error": {"code": "internal_error", "message": "internal error", "details": {}}}
LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


class _Live:
    """The live service and the fan-out, built on first use per container, kept warm."""

    def __init__(self) -> None:
        self._service: LiveService | None = None
        self._fan_out: FanOut | None = None

    def service(self) -> LiveService:
        if self._service is None:
            settings = LiveSettings.from_env()
            self._service = LiveService(TableStore(make_client(), settings.connections_table), settings, jobs=api.services.get)
        return self._service

    def fan_out(self) -> FanOut:
        if self._fan_out is None:
            live = self.service()
            endpoint = live.settings.websocket_endpoint
            if not endpoint:
                raise RuntimeError("JOBS_WEBSOCKET_ENDPOINT is not set")
            self._fan_out = FanOut(live, SocketGateway(endpoint, max_parallel=live.settings.post_parallelism))
        return self._fan_out

    def set(self, service: LiveService | None, fan_out: FanOut | None = None) -> None:
        """Tests and benchmarks hand in their own."""
        self._service, self._fan_out = service, fan_out


live = _Live()


@dataclass
class WsRequest:
    event: Mapping[str, Any]
    connection_id: str

    @property
    def principal(self) -> Principal:
        """The caller; only routes that need it ask ($disconnect must work without it)."""
        return principal_of_connection(self.event.get("requestContext") or {})

    @property
    def live(self) -> LiveService:
        return live.service()

    def json(self) -> Any:
        try:
            return json.loads(str(self.event.get("body") or ""))
        except json.JSONDecodeError as error:
            raise InvalidJson(f"the message is not valid JSON: {error}") from None


def principal_of_connection(context: Mapping[str, Any]) -> Principal:
    """The caller, as the `$connect` authorizer put it in the connection's context."""
    found = context.get("authorizer") or {}
    try:
        return Principal(str(found["sub"]), Role(str(found["role"])))
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
