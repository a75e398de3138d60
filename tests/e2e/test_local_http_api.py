"""The local HTTP API's gateway behaviour, with stand-in functions (no processes)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcloud.functions import FunctionSpec, HttpRoute
from localcloud.http_api import ApiRoute, AuthorizerConfig, HttpApi, _pattern
from localcloud.runtime import FunctionConfig, Invocation


@dataclass
class StandIn:
    """Answers like a function runtime; records the events it got."""

    answer: Any
    ok: bool = True
    timeout_s: float = 10
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def config(self) -> FunctionConfig:
        return FunctionConfig("f", Path("."), "m.h", (), {}, self.timeout_s)

    def invoke(self, event: dict[str, Any], *, timeout_s: float | None = None) -> Invocation:
        self.events.append(event)
        if not self.ok:
            return Invocation(False, None, "Sandbox.Timedout", "timed out")
        return Invocation(True, self.answer(event) if callable(self.answer) else self.answer)


def api(
    answer: Any, *, authorizer: StandIn | None = None, ttl_s: int = 0, ok: bool = True, timeout_s: float = 10
) -> tuple[HttpApi, StandIn]:
    function = StandIn(answer, ok=ok, timeout_s=timeout_s)
    runtimes: dict[str, Any] = {"Fn": function}
    config = None
    if authorizer is not None:
        runtimes["Auth"] = authorizer
        config = AuthorizerConfig("Auth", identity_headers=("authorization",) if ttl_s else (), ttl_s=ttl_s)
    routes = [
        ApiRoute(HttpRoute(method, path, FunctionSpec("Fn", Path("."), "m.h", {})), _pattern(path), config)
        for method, path in (("GET", "/v1/jobs/{id}"), ("POST", "/v1/jobs/clean"), ("POST", "/v1/jobs/{id}"))
    ]
    return HttpApi(routes, runtimes), function


def call(
    gateway: HttpApi, method: str, target: str, headers: list[tuple[str, str]] | None = None, body: bytes = b""
) -> tuple[int, dict[str, str], Any]:
    status, headers_out, raw = gateway.handle(method, target, headers or [], body, "127.0.0.1")
    return status, dict(headers_out), json.loads(raw) if raw else None


def test_payload_v2_event_and_response_mapping():
    gateway, function = api({"statusCode": 201, "headers": {"X-A": "1"}, "cookies": ["c=1"], "body": '{"ok":true}'})
    status, headers, body = call(
        gateway, "GET", "/v1/jobs/J1?x=1&x=2&y=", [("Cookie", "a=1; b=2"), ("X-Twice", "1"), ("X-Twice", "2")]
    )
    assert (status, body, headers["X-A"], headers["Set-Cookie"]) == (201, {"ok": True}, "1", "c=1")
    event = function.events[0]
    assert event["routeKey"] == "GET /v1/jobs/{id}" and event["pathParameters"] == {"id": "J1"}
    assert event["queryStringParameters"] == {"x": "1,2", "y": ""} and event["rawQueryString"] == "x=1&x=2&y="
    assert event["cookies"] == ["a=1", "b=2"] and event["headers"]["x-twice"] == "1,2"
    assert event["requestContext"]["http"]["method"] == "GET" and event["isBase64Encoded"] is False


def test_static_segments_win_and_unknown_routes_are_404():
    gateway, function = api({"statusCode": 200, "body": ""})
    call(gateway, "POST", "/v1/jobs/clean")
    assert function.events[-1]["routeKey"] == "POST /v1/jobs/clean"
    assert call(gateway, "DELETE", "/v1/jobs/J1")[0:3:2] == (404, {"message": "Not Found"})


def test_a_plain_payload_is_a_200_json_body_and_binary_bodies_are_base64():
    gateway, function = api({"plain": True})
    assert call(gateway, "POST", "/v1/jobs/J1", body=b"\xff\xfe")[0:3:2] == (200, {"plain": True})
    assert function.events[0]["isBase64Encoded"] is True


def test_function_errors_are_500_and_long_functions_503():
    assert call(api(None, ok=False)[0], "GET", "/v1/jobs/J1")[0:3:2] == (500, {"message": "Internal Server Error"})
    assert call(api(None, ok=False, timeout_s=60)[0], "GET", "/v1/jobs/J1")[0:3:2] == (503, {"message": "Service Unavailable"})


def test_the_authorizer_context_reaches_the_function_and_is_cached_for_its_ttl():
    authorizer = StandIn(lambda event: {"isAuthorized": event["headers"].get("authorization") == "good", "context": {"sub": "s"}})
    gateway, function = api({"statusCode": 200, "body": ""}, authorizer=authorizer, ttl_s=300)
    assert call(gateway, "GET", "/v1/jobs/J1", [("Authorization", "good")])[0] == 200
    assert call(gateway, "GET", "/v1/jobs/J2", [("Authorization", "good")])[0] == 200
    assert len(authorizer.events) == 1  # the second request used the cached answer
    assert function.events[-1]["requestContext"]["authorizer"] == {"lambda": {"sub": "s"}}
    assert call(gateway, "GET", "/v1/jobs/J1", [("Authorization", "bad")])[0:3:2] == (403, {"message": "Forbidden"})
    assert call(gateway, "GET", "/v1/jobs/J1")[0:3:2] == (401, {"message": "Unauthorized"})
