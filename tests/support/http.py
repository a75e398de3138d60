"""Calling the API functions through their handlers with API Gateway's payload 2.0 events."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from jobcore.model import Principal
from localcloud.functions import HttpRoute, LambdaHandler, load_handler


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def error_code(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return str(self.body["error"].get("code"))
        return None


def _match(template: str, path: str) -> dict[str, str] | None:
    pattern = "^" + re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
    found = re.match(pattern, path)
    return found.groupdict() if found else None


class ApiClient:
    """Routes a request to the template's function for it and invokes the handler."""

    def __init__(self, routes: list[HttpRoute]) -> None:
        self.routes = routes
        self._handlers: dict[str, LambdaHandler] = {}

    def handler_for(self, route: HttpRoute) -> LambdaHandler:
        if route.function.logical_id not in self._handlers:
            self._handlers[route.function.logical_id] = load_handler(route.function)
        return self._handlers[route.function.logical_id]

    def route(self, method: str, path: str) -> tuple[HttpRoute, dict[str, str]]:
        # Static segments win over parameters, as in API Gateway (/v1/jobs/clean).
        candidates = []
        for route in self.routes:
            params = _match(route.path, path)
            if route.method == method and params is not None:
                candidates.append((route.path.count("{"), route, params))
        if not candidates:
            raise LookupError(f"no route for {method} {path}")
        candidates.sort(key=lambda c: c[0])
        return candidates[0][1], candidates[0][2]

    def event(
        self,
        method: str,
        path: str,
        *,
        principal: Principal | None = None,
        auth_error: str | None = None,
        body: Any = None,
        raw_body: str | None = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[dict[str, Any], HttpRoute]:
        route, params = self.route(method, path)
        authorizer: dict[str, Any] = {}
        if principal is not None:
            authorizer = {"sub": principal.sub, "role": principal.role.value}
        if auth_error is not None:
            authorizer = {"auth_error": auth_error}
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.route_key,
            "rawPath": path,
            "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
            "headers": {"content-type": "application/json", **{k.lower(): v for k, v in (headers or {}).items()}},
            "requestContext": {
                "authorizer": {"lambda": authorizer},
                "http": {"method": method, "path": path},
                "requestId": "test-request",
                "routeKey": route.route_key,
                "stage": "$default",
            },
            "isBase64Encoded": False,
        }
        if params:
            event["pathParameters"] = params
        if query:
            event["queryStringParameters"] = query
        if raw_body is not None:
            event["body"] = raw_body
        elif body is not None:
            event["body"] = json.dumps(body)
        return event, route

    def call(self, method: str, path: str, **kwargs: Any) -> HttpResult:
        event, route = self.event(method, path, **kwargs)
        response = self.handler_for(route)(event, None)
        text = response.get("body") or ""
        return HttpResult(response["statusCode"], response.get("headers", {}), json.loads(text) if text else None)
