"""The HTTP layer every API function shares: one place for requests, roles and errors.

A handler module is one operation: ``handler = endpoint(roles=...)(operation)``. The
wrapper reads the API Gateway (payload 2.0) event, checks the caller's role, runs the
operation, and turns a domain error into the contract's error shape. Nothing here reads
the environment or builds clients at import time: cold starts stay short.
"""

from __future__ import annotations

import base64
import json
import os
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from .config import Settings
from .errors import Forbidden, InvalidJson, InvalidRequest, JobsError, PayloadTooLarge, Throttled, Unauthorized
from .model import Principal, Role
from .service import JobService
from .store import TableStore, make_client

SERVICE_ROLES = frozenset({Role.SERVICE, Role.ADMIN})
OWNER_ROLES = frozenset({Role.SERVICE, Role.USER, Role.ADMIN})
ADMIN_ROLES = frozenset({Role.ADMIN})
ANY_ROLE = frozenset(Role)

# A DynamoDB transaction carries at most 4 MB; no request can need more.
MAX_BODY_BYTES = 4 * 1024 * 1024
_CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:/=+-]{1,128}$")

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Jobs"))

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class _Services:
    """The engine, built on first use per container and kept warm between invocations."""

    def __init__(self) -> None:
        self._service: JobService | None = None

    def get(self) -> JobService:
        if self._service is None:
            settings = Settings.from_env()
            self._service = JobService(TableStore(make_client(), settings.table_name), settings)
        return self._service

    def set(self, service: JobService | None) -> None:
        """Tests and the local cloud hand in their own engine."""
        self._service = service


services = _Services()


class Request:
    """What an operation needs of the API Gateway event."""

    def __init__(self, event: Mapping[str, Any], principal: Principal, correlation_id: str, context: Any = None) -> None:
        self.event = event
        self.principal = principal
        self.correlation_id = correlation_id
        self.context = context  # the Lambda context; None when called outside Lambda
        self._headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}

    @property
    def service(self) -> JobService:
        return services.get()

    def path(self, name: str) -> str:
        value = (self.event.get("pathParameters") or {}).get(name)
        if not value:
            raise InvalidRequest.fields({name: "required in the path"})
        return str(value)

    def time_left_ms(self) -> int | None:
        """What remains of the function's timeout, when it runs in Lambda."""
        remaining = getattr(self.context, "get_remaining_time_in_millis", None)
        return int(remaining()) if callable(remaining) else None

    @property
    def query(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (self.event.get("queryStringParameters") or {}).items()}

    def header(self, name: str) -> str | None:
        return self._headers.get(name.lower())

    def json(self) -> Any:
        """The body as JSON; an empty body is None."""
        raw = self.event.get("body")
        if raw is None or raw == "":
            return None
        data = base64.b64decode(raw) if self.event.get("isBase64Encoded") else str(raw).encode("utf-8")
        if len(data) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"the body is {len(data)} bytes; the limit is {MAX_BODY_BYTES}")
        try:
            parsed = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InvalidJson(f"the body is not valid JSON: {error}") from None
        if parsed is None:  # a literal null is not "no body": every body is an object
            raise InvalidRequest.fields({"body": "must be a JSON object"})
        return parsed

    def integer_header(self, name: str) -> int | None:
        value = self.header(name)
        if value is None:
            return None
        text = value.strip().strip('"')
        if not text.isdigit():
            raise InvalidRequest.fields({name: "must be a version number"})
        return int(text)

    @staticmethod
    def metric(name: str, value: float = 1) -> None:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def principal_of(event: Mapping[str, Any]) -> Principal:
    """The caller, as the authorizer put it in the request context.

    The authorizer always lets a request through and says what it found, so that a bad
    token gets the contract's 401 from the function instead of API Gateway's own page.
    """
    context = ((event.get("requestContext") or {}).get("authorizer") or {}).get("lambda") or {}
    if context.get("auth_error") or not context.get("sub"):
        raise Unauthorized(str(context.get("auth_error") or "missing bearer token"))
    try:
        return Principal(str(context["sub"]), Role(str(context.get("role"))))
    except ValueError:
        raise Unauthorized("token role must be service, user or admin") from None


def correlation_id_of(event: Mapping[str, Any]) -> str:
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    given = headers.get("x-correlation-id", "")
    if _CORRELATION_ID.match(given):
        return given
    return str((event.get("requestContext") or {}).get("requestId") or uuid.uuid4())


def error_response(error: JobsError) -> Response:
    """The one mapping from domain errors to HTTP."""
    headers = {"Retry-After": str(error.retry_after_s)} if isinstance(error, Throttled) else {}
    return Response(error.status, error.to_body(), headers)


def to_http(response: Response, correlation_id: str) -> dict[str, Any]:
    headers = {"X-Correlation-Id": correlation_id, **response.headers}
    if response.body is None and response.status == 204:
        return {"statusCode": 204, "headers": headers, "body": "", "isBase64Encoded": False}
    headers["Content-Type"] = "application/json"
    body = json.dumps(response.body, separators=(",", ":"), ensure_ascii=False)
    return {"statusCode": response.status, "headers": headers, "body": body, "isBase64Encoded": False}


def _tracing_on() -> bool:
    # Creating a Tracer costs ~350 ms even disabled: only where X-Ray is really there.
    return bool(os.environ.get("AWS_XRAY_DAEMON_ADDRESS")) and os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() != "true"


def endpoint(*, roles: frozenset[Role]) -> Callable[[Callable[[Request], Response]], LambdaHandler]:
    """Turn an operation into a Lambda handler for an API Gateway HTTP API route."""

    def wrap(operation: Callable[[Request], Response]) -> LambdaHandler:
        traced = operation
        if _tracing_on():
            from aws_lambda_powertools import Tracer

            traced = Tracer().capture_method(operation)

        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            correlation_id = correlation_id_of(event)
            logger.clear_state()  # keys of the previous invocation of this warm container
            logger.set_correlation_id(correlation_id)
            logger.append_keys(route=event.get("routeKey"))
            try:
                principal = principal_of(event)
                logger.append_keys(principal=principal.sub, role=principal.role.value)
                if principal.role not in roles:
                    raise Forbidden(f"role {principal.role.value} may not call {event.get('routeKey', 'this route')}")
                response = traced(Request(event, principal, correlation_id, context))
            except JobsError as error:
                if error.status >= 500:
                    logger.warning("request failed", extra={"code": error.code, "error_message": error.message})
                else:
                    logger.info("request refused", extra={"code": error.code, "status": error.status})
                response = error_response(error)
            except Exception:
                logger.exception("unexpected error")
                response = Response(500, {"error": {"code": "internal_error", "message": "internal error", "details": {}}})
            finally:
                if metrics.provider.metric_set:
                    metrics.flush_metrics()
            logger.info("request done", extra={"status": response.status})
            return to_http(response, correlation_id)

        handler.__name__ = operation.__name__
        handler.__doc__ = operation.__doc__
        return handler

    return wrap
