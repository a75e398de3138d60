"""The WebSocket API (AWS::ApiGatewayV2::Api, ProtocolType WEBSOCKET) and, on the same port,
its @connections management API, so boto3's `apigatewaymanagementapi` works unchanged.

`$connect` runs the route's authorizer (identity source in the query string or headers)
and then its function; messages are routed on the API's RouteSelectionExpression
(`$request.body.action`), falling back to `$default`; `$disconnect` runs when the client
leaves, the server closes it, or a limit ends it. API Gateway's limits hold: 128 KB frames
(a larger one closes the socket with 1009), 10 minutes idle, 2 hours in all.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from .http_api import PortInUse

if TYPE_CHECKING:
    from .config import Stage

MAX_FRAME_BYTES = 128 * 1024
IDLE_TIMEOUT_S = float(os.environ.get("JOBS_LOCAL_WS_IDLE_S", "600"))
MAX_CONNECTION_S = float(os.environ.get("JOBS_LOCAL_WS_MAX_S", "7200"))
HEARTBEAT_S = 5.0  # pings notice a client that vanished without closing


@dataclass
class WsRoute:
    key: str
    function: str | None
    authorizer: str | None = None
    two_way: bool = False


@dataclass
class WsApi:
    logical_id: str
    selection: str
    routes: dict[str, WsRoute]
    identity_sources: list[str] = field(default_factory=list)
    stage: str = "$default"


def _function_in(node: Any, function_ids: set[str]) -> str | None:
    text = json.dumps(node)
    return next((f for f in sorted(function_ids, key=len, reverse=True) if f in text), None)


def websocket_apis(template: dict[str, Any]) -> list[WsApi]:
    resources = template.get("Resources", {})
    function_ids = {k for k, v in resources.items() if v.get("Type") in ("AWS::Serverless::Function", "AWS::Lambda::Function")}
    by_type: dict[str, dict[str, Any]] = {}
    for logical_id, resource in resources.items():
        by_type.setdefault(resource.get("Type", ""), {})[logical_id] = resource.get("Properties", {})
    apis = []
    for api_id, props in by_type.get("AWS::ApiGatewayV2::Api", {}).items():
        if props.get("ProtocolType") != "WEBSOCKET":
            continue
        integrations = {
            i: _function_in(p.get("IntegrationUri"), function_ids)
            for i, p in by_type.get("AWS::ApiGatewayV2::Integration", {}).items()
        }
        authorizers = {
            a: (_function_in(p.get("AuthorizerUri"), function_ids), list(p.get("IdentitySource") or []))
            for a, p in by_type.get("AWS::ApiGatewayV2::Authorizer", {}).items()
        }
        routes: dict[str, WsRoute] = {}
        identity: list[str] = []
        for route_props in by_type.get("AWS::ApiGatewayV2::Route", {}).values():
            if (route_props.get("ApiId") or {}).get("Ref") != api_id:
                continue
            target = json.dumps(route_props.get("Target"))
            integration = next((i for i in sorted(integrations, key=len, reverse=True) if i in target), None)
            authorizer_id = (route_props.get("AuthorizerId") or {}).get("Ref")
            authorizer_function = None
            if authorizer_id and route_props.get("AuthorizationType") == "CUSTOM":
                authorizer_function, identity = authorizers.get(authorizer_id, (None, []))
            key = str(route_props["RouteKey"])
            routes[key] = WsRoute(
                key,
                integrations.get(integration) if integration else None,
                authorizer_function,
                two_way=bool(route_props.get("RouteResponseSelectionExpression")),
            )
        stage = next(
            (
                str(p.get("StageName"))
                for p in by_type.get("AWS::ApiGatewayV2::Stage", {}).values()
                if (p.get("ApiId") or {}).get("Ref") == api_id
            ),
            "$default",
        )
        apis.append(WsApi(api_id, str(props.get("RouteSelectionExpression", "$request.body.action")), routes, identity, stage))
    return apis


@dataclass
class _Connection:
    id: str
    socket: web.WebSocketResponse
    connected_at: float
    source_ip: str
    user_agent: str
    authorizer: dict[str, Any]
    last_active: float


class WebSocketServer:
    def __init__(self, stage: Stage, api: WsApi) -> None:
        self.stage = stage
        self.api = api
        self.connections: dict[str, _Connection] = {}
        self.loop = asyncio.new_event_loop()
        self.runner: web.AppRunner | None = None
        self.thread = threading.Thread(target=self.loop.run_forever, name="websocket-api", daemon=True)

    def log(self, line: str) -> None:
        self.stage.log(f"[ws] {line}")

    async def _invoke(self, function: str, event: dict[str, Any]) -> Any:
        outcome = await asyncio.get_running_loop().run_in_executor(None, lambda: self.stage.runtimes[function].invoke(event))
        if not outcome.ok:  # a function's own lines are shown when it failed (see runtime.py)
            for line in outcome.logs:
                self.stage.log(line)
        return outcome

    def _context(self, connection_id: str, route_key: str, event_type: str, request: web.Request) -> dict[str, Any]:
        now = datetime.now(UTC)
        return {
            "routeKey": route_key,
            "eventType": event_type,
            "connectionId": connection_id,
            "messageDirection": "IN",
            "extendedRequestId": str(uuid.uuid4()),
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "stage": self.api.stage,
            "domainName": request.host,
            "apiId": self.api.logical_id,
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": request.remote or "127.0.0.1", "userAgent": request.headers.get("User-Agent", "")},
        }

    async def _authorize(self, route: WsRoute, request: web.Request, connection_id: str) -> dict[str, Any] | int:
        query = dict(request.query)
        headers = {k.lower(): v for k, v in request.headers.items()}
        for source in self.api.identity_sources:
            name = source.rsplit(".", 1)[-1]
            where = query if ".querystring." in source else headers
            if not where.get(name if where is query else name.lower()):
                return 401
        assert route.authorizer is not None
        event = {
            "type": "REQUEST",
            "methodArn": f"arn:aws:execute-api:us-east-1:000000000000:{self.api.logical_id}/{self.api.stage}/$connect",
            "headers": headers,
            "queryStringParameters": query,
            "requestContext": self._context(connection_id, "$connect", "CONNECT", request),
        }
        outcome = await self._invoke(route.authorizer, event)
        if not outcome.ok or not isinstance(outcome.payload, dict):
            return 500
        statements = (outcome.payload.get("policyDocument") or {}).get("Statement") or []
        if not any(s.get("Effect") == "Allow" for s in statements):
            return 403
        return {**(outcome.payload.get("context") or {}), "principalId": outcome.payload.get("principalId")}

    async def handle_socket(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.json_response({"message": "Not Found"}, status=404)
        connection_id = base64.b64encode(uuid.uuid4().bytes[:9]).decode()
        connect = self.api.routes.get("$connect")
        authorizer: dict[str, Any] = {}
        if connect and connect.authorizer:
            verdict = await self._authorize(connect, request, connection_id)
            if isinstance(verdict, int):
                self.log(f"connect refused ({verdict})")
                return web.json_response({"message": "Unauthorized" if verdict == 401 else "Forbidden"}, status=verdict)
            authorizer = verdict
        base = {
            "headers": dict(request.headers),
            "multiValueHeaders": {k: request.headers.getall(k) for k in request.headers},
            "isBase64Encoded": False,
        }
        if request.query:
            base["queryStringParameters"] = dict(request.query)
        if connect and connect.function:
            context = self._context(connection_id, "$connect", "CONNECT", request)
            context["authorizer"] = authorizer
            outcome = await self._invoke(connect.function, {**base, "requestContext": context})
            status = outcome.payload.get("statusCode", 200) if outcome.ok and isinstance(outcome.payload, dict) else 500
            if not outcome.ok or int(status) >= 400:
                self.log(f"connect refused by $connect ({status})")
                return web.json_response({"message": "Forbidden"}, status=int(status) if outcome.ok else 500)
        socket = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES, heartbeat=HEARTBEAT_S)
        await socket.prepare(request)
        now = time.monotonic()
        connection = _Connection(
            connection_id,
            socket,
            time.time(),
            request.remote or "",
            request.headers.get("User-Agent", ""),
            authorizer,
            time.time(),
        )
        self.connections[connection_id] = connection
        self.log(f"connected {connection_id}")
        reason, status_code = "client closed", 1000
        try:
            while True:
                remaining = min(IDLE_TIMEOUT_S, MAX_CONNECTION_S - (time.monotonic() - now))
                if remaining <= 0:
                    reason, status_code = "connection lasted its maximum", 1001
                    break
                try:
                    message = await socket.receive(timeout=remaining)
                except TimeoutError:
                    reason, status_code = "idle or maximum time reached", 1001
                    break
                if message.type == WSMsgType.TEXT:
                    connection.last_active = time.time()
                    await self._route(connection, request, str(message.data))
                elif message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                    break
                elif message.type == WSMsgType.ERROR:
                    reason, status_code = f"error: {socket.exception()}", 1009
                    break
        finally:
            self.connections.pop(connection_id, None)
            if not socket.closed:
                await socket.close(code=status_code, message=reason.encode()[:120])
            await self._disconnect(connection, request, reason, status_code)
        return socket

    async def _route(self, connection: _Connection, request: web.Request, text: str) -> None:
        key = "$default"
        try:
            body = json.loads(text)
            field_name = self.api.selection.rsplit(".", 1)[-1]
            if isinstance(body, dict) and str(body.get(field_name)) in self.api.routes:
                key = str(body[field_name])
        except (ValueError, RecursionError):  # not JSON, or nested too deep to read: $default, as API Gateway
            pass
        route = self.api.routes.get(key)
        context = self._context(connection.id, key, "MESSAGE", request)
        if route is None or route.function is None:
            await connection.socket.send_str(
                json.dumps({"message": "Forbidden", "connectionId": connection.id, "requestId": context["requestId"]})
            )
            return
        context["authorizer"] = connection.authorizer
        context["messageId"] = str(uuid.uuid4())
        outcome = await self._invoke(route.function, {"requestContext": context, "body": text, "isBase64Encoded": False})
        self.log(f"{connection.id} {key} -> {route.function} ({'ok' if outcome.ok else outcome.error_type})")
        if route.two_way and outcome.ok and isinstance(outcome.payload, dict) and outcome.payload.get("body"):
            await connection.socket.send_str(str(outcome.payload["body"]))

    async def _disconnect(self, connection: _Connection, request: web.Request, reason: str, status_code: int) -> None:
        route = self.api.routes.get("$disconnect")
        self.log(f"disconnected {connection.id} ({reason})")
        if route and route.function:
            context = self._context(connection.id, "$disconnect", "DISCONNECT", request)
            context.update(authorizer=connection.authorizer, disconnectStatusCode=status_code, disconnectReason=reason)
            await self._invoke(
                route.function, {"requestContext": context, "headers": dict(request.headers), "isBase64Encoded": False}
            )

    # -- the @connections management API --------------------------------------------------
    @staticmethod
    def _gone(connection_id: str) -> web.Response:
        return web.json_response(
            {"message": f"connection {connection_id} is gone", "__type": "GoneException"},
            status=410,
            headers={"x-amzn-ErrorType": "GoneException"},
        )

    async def handle_connection(self, request: web.Request) -> web.Response:
        connection_id = request.match_info["connection_id"]
        connection = self.connections.get(connection_id)
        if connection is None or connection.socket.closed:
            return self._gone(connection_id)
        if request.method == "POST":
            data = await request.read()
            if len(data) > MAX_FRAME_BYTES:
                return web.json_response({"message": "payload too large", "__type": "PayloadTooLargeException"}, status=413)
            try:
                await connection.socket.send_str(data.decode("utf-8"))
            except (ConnectionError, RuntimeError):
                self.connections.pop(connection_id, None)
                return self._gone(connection_id)
            return web.Response(status=200)
        if request.method == "DELETE":
            await connection.socket.close(code=1000, message=b"closed by the management API")
            return web.Response(status=204)
        return web.json_response(
            {
                "connectedAt": datetime.fromtimestamp(connection.connected_at, UTC).isoformat(),
                "identity": {"sourceIp": connection.source_ip, "userAgent": connection.user_agent},
                "lastActiveAt": datetime.fromtimestamp(connection.last_active, UTC).isoformat(),
            }
        )

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, host: str, port: int) -> None:
        app = web.Application(client_max_size=MAX_FRAME_BYTES + 1024)
        for prefix in ("", "/{stage}"):
            app.router.add_route("*", prefix + "/@connections/{connection_id}", self.handle_connection)
        app.router.add_get("/{tail:.*}", self.handle_socket)
        self.thread.start()
        self.runner = web.AppRunner(app, access_log=None)
        future = asyncio.run_coroutine_threadsafe(self._start(host, port), self.loop)
        try:
            future.result(timeout=15)
        except OSError as error:
            self.stop()
            raise PortInUse(f"port {port} is in use: set JOBS_WS_PORT to a free port") from error

    async def _start(self, host: str, port: int) -> None:
        assert self.runner is not None
        await self.runner.setup()
        await web.TCPSite(self.runner, host, port).start()

    def stop(self) -> None:
        async def close_all() -> None:
            for connection in list(self.connections.values()):
                await connection.socket.close(code=1001, message=b"server stopping")
            if self.runner is not None:
                await self.runner.cleanup()

        if self.thread.is_alive():
            asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(timeout=20)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)


def start_websocket_api(stage: Stage) -> Callable[[], None]:
    """Serve the template's WebSocket API on stage.config.ws_port; returns its stopper."""
    apis = websocket_apis(stage.template)
    if not apis:
        return lambda: None
    server = WebSocketServer(stage, apis[0])
    server.start(stage.config.host, stage.config.ws_port)
    return server.stop
