"""The HTTP layer every API function shares: one place for requests, roles and errors.

A handler module is one operation:

    @endpoint(roles=SERVICE_ROLES, parse=parse_claim)
    def handler(call: Call[ClaimJob]) -> Response: ...

The wrapper reads the API Gateway (payload 2.0) event, checks the caller's role, decodes
the body and parses the request into its command (a 4xx for anything else), runs the
operation, and turns a domain error into the contract's error shape. Nothing here reads the
environment or builds clients at import time: cold starts stay short.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

# boto3 first, at a shallow call depth. Imported deep inside jobcore's own imports, botocore's
# import kept crossing a boundary of CPython 3.11's frame-stack chunks, which maps and unmaps
# a chunk at every crossing (python/cpython#142183, fixed in 3.13): 800-1,600 more page
# faults and 15-25 ms of a cold start. tests/unit/test_handler_pages.py holds it.
import boto3  # noqa: F401
from msgspec import Struct, field

from .auth import decode_queues
from .commands import Parts
from .errors import Forbidden, InvalidRequest, JobsError, Throttled, Unauthorized
from .model import Job, Principal, Role
from .observability import flush_metrics, logger, traced
from .settings import Limits
from .wire import decode_json, has_surrogate
from .wiring import wiring

if TYPE_CHECKING:
    from .commands.leases import ClaimJob
    from .engine import Engine

C = TypeVar("C")

SERVICE_ROLES = frozenset({Role.SERVICE, Role.ADMIN})
# Writing a schedule: a service, whose jobs the schedule's jobs become (API.md).
SERVICE_ONLY = frozenset({Role.SERVICE})
OWNER_ROLES = frozenset({Role.SERVICE, Role.USER, Role.ADMIN})
ADMIN_ROLES = frozenset({Role.ADMIN})
ANY_ROLE = frozenset(Role)

LIMITS = Limits()  # every request is held to these (settings.py)
_CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:/=+-]{1,128}$")
INTERNAL_ERROR = {"error": {"code": "internal_error", "message": "internal error", "details": {}}}

LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


class Response(Struct):
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class Call(Struct, Generic[C], frozen=True):
    """What an operation gets: the caller, its command, the engine, and the Lambda's clock."""

    principal: Principal
    command: C
    context: Any = None  # the Lambda context; None when called outside Lambda

    @property
    def engine(self) -> Engine:
        return wiring.engine()

    def time_left_ms(self) -> int | None:
        """What remains of the function's timeout, when it runs in Lambda."""
        remaining = getattr(self.context, "get_remaining_time_in_millis", None)
        return int(remaining()) if callable(remaining) else None


def principal_of(event: Mapping[str, Any]) -> Principal:
    """The caller, as the authorizer put it in the request context.

    The authorizer always lets a request through and says what it found, so that a bad
    token gets the contract's 401 from the function instead of API Gateway's own page.
    """
    context = ((event.get("requestContext") or {}).get("authorizer") or {}).get("lambda") or {}
    if context.get("auth_error") or not context.get("sub"):
        raise Unauthorized(str(context.get("auth_error") or "missing bearer token"))
    try:
        role = Role(str(context.get("role")))
    except ValueError:
        raise Unauthorized("token role must be service, user or admin") from None
    return Principal(str(context["sub"]), role, decode_queues(context.get("queues")))


def correlation_id_of(event: Mapping[str, Any]) -> str:
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    given = headers.get("x-correlation-id", "")
    if _CORRELATION_ID.match(given):
        return given
    return str((event.get("requestContext") or {}).get("requestId") or uuid.uuid4())


def parts_of(event: Mapping[str, Any], limits: Limits) -> Parts:
    """The request's parts; its body decoded (a 4xx for anything that is not plain JSON)."""
    raw = event.get("body")
    body: Any = None
    if raw not in (None, ""):
        try:
            data: bytes | str = base64.b64decode(str(raw), validate=True) if event.get("isBase64Encoded") else str(raw)
        except ValueError:
            raise InvalidRequest.fields({"body": "not base64"}) from None
        body = decode_json(data, limits)
        if body is None:  # a literal null is not "no body": every body is an object
            raise InvalidRequest.fields({"body": "must be a JSON object"})
    strings = {
        "path": event.get("pathParameters") or {},
        "query": event.get("queryStringParameters") or {},
        "headers": {str(k).lower(): v for k, v in (event.get("headers") or {}).items()},
    }
    for where, values in strings.items():
        bad = [str(k)[:64] for k, v in values.items() if has_surrogate(str(k)) or has_surrogate(str(v))]
        if bad:
            raise InvalidRequest.fields({f"{where}.{bad[0]!r}": "not valid Unicode"})
    return Parts(
        path={str(k): str(v) for k, v in strings["path"].items()},
        query={str(k): str(v) for k, v in strings["query"].items()},
        headers={k: str(v) for k, v in strings["headers"].items()},
        body=body,
    )


def leased_answer(command: ClaimJob, jobs: list[Job]) -> Response:
    """A claim's answer: 204 when nothing was leased; the job, or with `max_jobs` a list."""
    if not jobs:
        return Response(204)
    if command.max_jobs is None:
        return Response(200, jobs[0].to_wire(with_lease_token=True))
    return Response(200, {"data": [job.to_wire(with_lease_token=True) for job in jobs]})


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


def endpoint(
    *, roles: frozenset[Role], parse: Callable[[Parts, Limits], C]
) -> Callable[[Callable[[Call[C]], Response]], LambdaHandler]:
    """Turn an operation into a Lambda handler for an API Gateway HTTP API route."""

    def wrap(operation: Callable[[Call[C]], Response]) -> LambdaHandler:
        run = traced(operation)

        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            correlation_id = correlation_id_of(event)
            logger.clear_state()  # keys of the previous invocation of this warm container
            logger.set_correlation_id(correlation_id)
            # request_id is API Gateway's, as in the access log: it finds the request there even
            # when the caller chose the correlation id.
            logger.append_keys(route=event.get("routeKey"), request_id=(event.get("requestContext") or {}).get("requestId"))
            try:
                principal = principal_of(event)
                logger.append_keys(principal=principal.sub, role=principal.role.value)
                if principal.role not in roles:
                    raise Forbidden(f"role {principal.role.value} may not call {event.get('routeKey', 'this route')}")
                # A queue's route is refused to a token scoped elsewhere before its request is
                # read, as a role is (the engine checks again, for every way in).
                queue = (event.get("pathParameters") or {}).get("type")
                if isinstance(queue, str) and not principal.reaches(queue):
                    raise Forbidden(f"this token does not reach queue {queue}", {"type": queue})
                response = run(Call(principal, parse(parts_of(event, LIMITS), LIMITS), context))
            except JobsError as error:
                if error.status >= 500:
                    logger.warning("request failed", extra={"code": error.code, "error_message": error.message})
                else:
                    logger.info("request refused", extra={"code": error.code, "status": error.status})
                response = error_response(error)
            except Exception:
                logger.exception("unexpected error")
                response = Response(500, INTERNAL_ERROR)
            finally:
                flush_metrics()
            logger.info("request done", extra={"status": response.status})
            return to_http(response, correlation_id)

        handler.__name__ = operation.__name__
        handler.__doc__ = operation.__doc__
        return handler

    return wrap
