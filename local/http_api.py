"""The HTTP API as API Gateway serves it: routes of the template, payload format 2.0,
the Lambda authorizer, and API Gateway's own limits and errors."""

from __future__ import annotations

import base64
import errno
import json
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .functions import HttpRoute
from .runtime import FunctionRuntime

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
# API Gateway's maximum integration timeout; tests of the 503 path may shorten it.
INTEGRATION_TIMEOUT_S = float(os.environ.get("JOBS_LOCAL_INTEGRATION_TIMEOUT_S", "30"))
API_ID = "local"
ROUTE_ARN_PREFIX = f"arn:aws:execute-api:us-east-1:000000000000:{API_ID}/$default"
# Carries the name of the function that answered from _handle to the log line; never sent.
_FUNCTION_HEADER = "x-local-function"
# A client that hangs up (a worker stopped during a long poll) is not an error of ours.
_HANG_UPS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


@dataclass
class AuthorizerConfig:
    """A Lambda REQUEST authorizer of the HTTP API, as the template declares it."""

    function: str  # logical id of the authorizer function
    simple_responses: bool = True
    identity_headers: tuple[str, ...] = ()
    identity_query: tuple[str, ...] = ()
    ttl_s: int = 0
    _cache: dict[tuple[str, ...], tuple[float, dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class ApiRoute:
    route: HttpRoute
    pattern: re.Pattern[str]
    authorizer: AuthorizerConfig | None


def _pattern(path: str) -> re.Pattern[str]:
    regex = ""
    for part in re.split(r"(\{[^}]+\})", path):
        if part.startswith("{") and part.endswith("}"):
            name = part[1:-1]
            regex += f"(?P<{name.rstrip('+')}>.+)" if name.endswith("+") else f"(?P<{name}>[^/]+)"
        else:
            regex += re.escape(part)
    return re.compile(f"^{regex}$")


def authorizer_from_template(template: Mapping[str, Any], api_logical_id: str) -> AuthorizerConfig | None:
    auth = ((template["Resources"][api_logical_id].get("Properties") or {}).get("Auth")) or {}
    default = auth.get("DefaultAuthorizer")
    if not default:
        return None
    spec = auth["Authorizers"][default]
    arn = spec["FunctionArn"]
    function = arn["Fn::GetAtt"][0] if isinstance(arn, dict) else str(arn)
    identity = spec.get("Identity") or {}
    return AuthorizerConfig(
        function=function,
        simple_responses=bool(spec.get("EnableSimpleResponses", False)),
        identity_headers=tuple(h.lower() for h in identity.get("Headers", [])),
        identity_query=tuple(identity.get("QueryStrings", [])),
        ttl_s=int(identity.get("ReauthorizeEvery", 300 if identity.get("Headers") else 0)),
    )


class HttpApi:
    """Dispatches requests to functions; knows nothing of sockets (see HttpApiServer)."""

    def __init__(
        self, routes: list[ApiRoute], runtimes: Mapping[str, FunctionRuntime], log: Callable[[str], None] | None = None
    ) -> None:
        self.log = log or (lambda line: None)
        # Static segments win over parameters, as in API Gateway.
        self.routes = sorted(routes, key=lambda r: (r.route.path.count("{"), -len(r.route.path)))
        self.runtimes = runtimes

    def match(self, method: str, path: str) -> tuple[ApiRoute, dict[str, str]] | None:
        for api_route in self.routes:
            if api_route.route.method in (method, "ANY"):
                found = api_route.pattern.match(path)
                if found:
                    return api_route, {k: unquote(v) for k, v in found.groupdict().items()}
        return None

    def handle(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, source_ip: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Answer one request, and log it in one line (with the function's own lines when it failed)."""
        started = time.perf_counter()
        split = urlsplit(target)
        function = "-"
        logs: list[str] = []
        try:
            status, reply_headers, reply = self._handle(method, split, headers, body, source_ip, logs)
            function = next((v for k, v in reply_headers if k == _FUNCTION_HEADER), "-")
        except Exception as error:  # never a traceback into the client's socket
            self.log(f"[http] {method} {split.path} failed in the local cloud: {type(error).__name__}: {error}")
            status, reply_headers, reply = _message(500, "Internal Server Error", str(uuid.uuid4()))
        elapsed_ms = (time.perf_counter() - started) * 1000
        self.log(f"{function} {method} {split.path} {status} {elapsed_ms:.0f} ms")
        if status >= 500:
            for line in logs:
                self.log(line)
        return status, [(k, v) for k, v in reply_headers if k != _FUNCTION_HEADER], reply

    def _handle(
        self, method: str, split: Any, headers: list[tuple[str, str]], body: bytes, source_ip: str, logs: list[str]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        request_id = str(uuid.uuid4())
        if len(body) > MAX_BODY_BYTES:
            return _message(413, "Request Entity Too Large", request_id)
        matched = self.match(method, split.path)
        if matched is None:
            return _message(404, "Not Found", request_id)
        api_route, path_parameters = matched
        event = self._event(api_route, method, split.path, split.query, headers, body, path_parameters, source_ip, request_id)
        if api_route.authorizer is not None:
            verdict = self._authorize(api_route, event, logs)
            if isinstance(verdict, tuple):
                return verdict
            event["requestContext"]["authorizer"] = verdict
        name = api_route.route.function.logical_id
        runtime = self.runtimes[name]
        outcome = runtime.invoke(event, timeout_s=INTEGRATION_TIMEOUT_S)
        logs += outcome.logs
        tag = (_FUNCTION_HEADER, name)
        if not outcome.ok:
            logs.append(f"[http] {name} failed: {outcome.error_type}: {outcome.error_message}")
            if outcome.timed_out and runtime.config.timeout_s > INTEGRATION_TIMEOUT_S:
                status, reply_headers, reply = _message(503, "Service Unavailable", request_id)
            else:
                status, reply_headers, reply = _message(500, "Internal Server Error", request_id)
            return status, [*reply_headers, tag], reply
        status, reply_headers, reply = _response(outcome.payload, request_id)
        return status, [*reply_headers, tag], reply

    def _event(
        self,
        api_route: ApiRoute,
        method: str,
        path: str,
        query: str,
        headers: list[tuple[str, str]],
        body: bytes,
        path_parameters: dict[str, str],
        source_ip: str,
        request_id: str,
    ) -> dict[str, Any]:
        joined: dict[str, str] = {}
        cookies: list[str] = []
        for name, value in headers:
            key = name.lower()
            if key == "cookie":
                cookies += [c.strip() for c in value.split(";") if c.strip()]
                continue
            joined[key] = f"{joined[key]},{value}" if key in joined else value
        parameters: dict[str, str] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            parameters[name] = f"{parameters[name]},{value}" if name in parameters else value
        now = datetime.now(UTC)
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": api_route.route.route_key,
            "rawPath": path,
            "rawQueryString": query,
            "headers": joined,
            "requestContext": {
                "accountId": "000000000000",
                "apiId": API_ID,
                "domainName": joined.get("host", "127.0.0.1"),
                "domainPrefix": joined.get("host", "127.0.0.1").split(".")[0],
                "http": {
                    "method": method,
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": source_ip,
                    "userAgent": joined.get("user-agent", ""),
                },
                "requestId": request_id,
                "routeKey": api_route.route.route_key,
                "stage": "$default",
                "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": int(now.timestamp() * 1000),
            },
            "isBase64Encoded": False,
        }
        if cookies:
            event["cookies"] = cookies
        if parameters:
            event["queryStringParameters"] = parameters
        if path_parameters:
            event["pathParameters"] = path_parameters
        if body:
            try:
                event["body"] = body.decode("utf-8")
            except UnicodeDecodeError:
                event["body"] = base64.b64encode(body).decode()
                event["isBase64Encoded"] = True
        return event

    def _authorize(
        self, api_route: ApiRoute, event: dict[str, Any], logs: list[str]
    ) -> dict[str, Any] | tuple[int, list[tuple[str, str]], bytes]:
        config = api_route.authorizer
        assert config is not None
        request_id = event["requestContext"]["requestId"]
        identity = tuple(event["headers"].get(h, "") for h in config.identity_headers) + tuple(
            (event.get("queryStringParameters") or {}).get(q, "") for q in config.identity_query
        )
        if (config.identity_headers or config.identity_query) and not all(identity):
            return _message(401, "Unauthorized", request_id)
        cache_key = identity
        if config.ttl_s > 0:
            with config._lock:
                cached = config._cache.get(cache_key)
            if cached and cached[0] > time.monotonic():
                return cached[1]
        request = {
            "version": "2.0",
            "type": "REQUEST",
            "routeArn": f"{ROUTE_ARN_PREFIX}/{event['requestContext']['http']['method']}{event['rawPath']}",
            "identitySource": list(identity),
            **{
                k: v
                for k, v in event.items()
                if k
                in (
                    "routeKey",
                    "rawPath",
                    "rawQueryString",
                    "cookies",
                    "headers",
                    "queryStringParameters",
                    "pathParameters",
                    "requestContext",
                )
            },
        }
        outcome = self.runtimes[config.function].invoke(request, timeout_s=INTEGRATION_TIMEOUT_S)
        logs += outcome.logs
        if not outcome.ok or not isinstance(outcome.payload, dict):
            logs.append(f"[http] authorizer {config.function} failed: {outcome.error_type}: {outcome.error_message}")
            return _message(500, "Internal Server Error", request_id)
        if config.simple_responses:
            allowed = outcome.payload.get("isAuthorized") is True
            context = outcome.payload.get("context") or {}
        else:
            statements = ((outcome.payload.get("policyDocument") or {}).get("Statement")) or []
            allowed = any(s.get("Effect") == "Allow" for s in statements)
            context = outcome.payload.get("context") or {}
        if not allowed:
            return _message(403, "Forbidden", request_id)
        verdict = {"lambda": context}
        if config.ttl_s > 0:
            with config._lock:
                config._cache[cache_key] = (time.monotonic() + config.ttl_s, verdict)
        return verdict


_AUTHORIZER_EVENT_KEYS = frozenset(
    {"routeKey", "rawPath", "rawQueryString", "cookies", "headers", "queryStringParameters", "pathParameters", "requestContext"}
)


def _message(status: int, message: str, request_id: str) -> tuple[int, list[tuple[str, str]], bytes]:
    body = json.dumps({"message": message}).encode()
    return status, [("Content-Type", "application/json"), ("apigw-requestid", request_id)], body


def _response(payload: Any, request_id: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """Payload format 2.0: a dict with statusCode is a response; anything else is a 200 JSON body."""
    headers: list[tuple[str, str]] = [("apigw-requestid", request_id)]
    if isinstance(payload, dict) and "statusCode" in payload:
        for name, value in (payload.get("headers") or {}).items():
            headers.append((str(name), str(value)))
        for name, values in (payload.get("multiValueHeaders") or {}).items():
            headers += [(str(name), str(v)) for v in values]
        headers += [("Set-Cookie", str(c)) for c in payload.get("cookies") or []]
        raw = payload.get("body") or ""
        body = base64.b64decode(raw) if payload.get("isBase64Encoded") else str(raw).encode("utf-8")
        return int(payload["statusCode"]), headers, body
    headers.append(("Content-Type", "application/json"))
    return 200, headers, json.dumps(payload).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body are two writes: without TCP_NODELAY the body waits for an ACK.
    disable_nagle_algorithm = True
    server: _Server

    def _serve(self) -> None:
        try:
            self._answer()
        except _HANG_UPS:
            self.close_connection = True  # the client went away; nothing to tell anyone

    def _answer(self) -> None:
        declared = (self.headers.get("Content-Length") or "0").strip()
        if not declared.isascii() or not declared.isdigit() or len(declared) > 12:
            self._send(*_message(400, "Bad Request", str(uuid.uuid4())))
            self.close_connection = True
            return
        length = int(declared)
        if length > MAX_BODY_BYTES:
            # Read it all before answering: a client still sending would see a broken pipe.
            remaining = length
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                remaining -= len(chunk)
            status, headers, body = _message(413, "Request Entity Too Large", str(uuid.uuid4()))
            self.close_connection = True
        else:
            data = self.rfile.read(length) if length else b""
            status, headers, body = self.server.api.handle(
                self.command, self.path, list(self.headers.items()), data, self.client_address[0]
            )
        self._send(status, headers, body)

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def __getattr__(self, name: str) -> Any:
        # Any other method (TRACE, QUERY, ...) is routed like these, as API Gateway does: no
        # route takes it, so it gets API Gateway's 404, never http.server's 501.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        """http.server's access line: HttpApi.handle logs each request its own way."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 resets connections when many clients connect at
    # once (16 workers starting together); API Gateway takes them all.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], api: HttpApi, log: Any) -> None:
        self.api = api
        self.log = log
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """socketserver prints a traceback for any error; a hang-up is no error."""
        error = sys.exc_info()[1]
        if isinstance(error, _HANG_UPS):
            return
        self.log(f"[http] connection from {client_address[0]} failed: {type(error).__name__}: {error}")


class PortInUse(RuntimeError):
    pass


class HttpApiServer:
    def __init__(self, api: HttpApi, *, host: str = "127.0.0.1", port: int = 3000, log: Any = None) -> None:
        try:
            self._server = _Server((host, port), api, log or (lambda line: None))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise PortInUse(f"port {port} is in use: set JOBS_HTTP_PORT to a free port") from None
            raise
        self._thread = threading.Thread(target=self._server.serve_forever, name="http-api", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
