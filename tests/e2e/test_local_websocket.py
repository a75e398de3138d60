"""The local cloud's WebSocket API and @connections API, on a small template, driven over
WebSocket and HTTP only (the functions record what they get in a file)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.e2e.conftest import DEADLINE_S, LocalService, start_local_service, stop_local_service, wait_for

FIXTURE = Path(__file__).parent / "fixtures" / "ws" / "template.yaml"


@dataclass
class WsCloud:
    """The local cloud serving the fixture template, as `make run` does, in a subprocess."""

    service: LocalService

    @property
    def ws_port(self) -> int:
        return int(self.service.ws_url.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WsCloud, Path]]:
    directory = tmp_path_factory.mktemp("ws")
    events = directory / "events.jsonl"
    events.touch()
    service = start_local_service(directory, extra_env={"JOBS_TEMPLATE": str(FIXTURE), "JOBS_PARAMETERS": f"EventFile={events}"})
    try:
        yield WsCloud(service), events
    finally:
        stop_local_service(service)


def recorded(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def ws_url(local: WsCloud, token: str | None = "good") -> str:
    query = f"?token={token}" if token else ""
    return f"ws://127.0.0.1:{local.ws_port}/{query}"


def management(local: WsCloud) -> Any:
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=f"http://127.0.0.1:{local.ws_port}",
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def connection_id_of(events: Path, route: str, before: int) -> str:
    found = wait_for(
        lambda: [e for e in recorded(events)[before:] if e["requestContext"]["routeKey"] == route],
        timeout=DEADLINE_S,
        message=route,
    )
    return str(found[-1]["requestContext"]["connectionId"])


@pytest.mark.parametrize(("token", "status"), [(None, 401), ("bad", 403)])
def test_connect_needs_a_good_token(cloud, token, status):
    local, _ = cloud
    with pytest.raises(InvalidStatus) as caught:
        connect(ws_url(local, token), open_timeout=DEADLINE_S)
    assert caught.value.response.status_code == status


def test_connect_route_and_disconnect(cloud):
    local, events = cloud
    before = len(recorded(events))
    with connect(ws_url(local), open_timeout=DEADLINE_S) as socket:
        connection_id = connection_id_of(events, "$connect", before)
        connect_event = recorded(events)[before]
        assert connect_event["requestContext"]["authorizer"]["sub"] == "user-1"
        assert connect_event["requestContext"]["eventType"] == "CONNECT"
        socket.send(json.dumps({"action": "echo", "text": "hello"}))
        assert json.loads(socket.recv(timeout=DEADLINE_S)) == {"echo": "hello"}
        socket.send(json.dumps({"action": "nothing-here"}))
        default = wait_for(
            lambda: [e for e in recorded(events) if e["requestContext"]["routeKey"] == "$default"],
            timeout=DEADLINE_S,
            message="$default",
        )
        assert json.loads(default[-1]["body"]) == {"action": "nothing-here"}
        assert default[-1]["requestContext"]["connectionId"] == connection_id
    gone = wait_for(
        lambda: [e for e in recorded(events) if e["requestContext"]["routeKey"] == "$disconnect"],
        timeout=DEADLINE_S,
        message="$disconnect",
    )
    assert gone[-1]["requestContext"]["connectionId"] == connection_id


def test_connections_api_and_410_for_a_gone_connection(cloud):
    local, events = cloud
    client = management(local)
    before = len(recorded(events))
    with connect(ws_url(local), open_timeout=DEADLINE_S) as socket:
        connection_id = connection_id_of(events, "$connect", before)
        client.post_to_connection(ConnectionId=connection_id, Data=b'{"pushed": 1}')
        assert json.loads(socket.recv(timeout=DEADLINE_S)) == {"pushed": 1}
        info = client.get_connection(ConnectionId=connection_id)
        assert info["Identity"]["SourceIp"] == "127.0.0.1"
        client.delete_connection(ConnectionId=connection_id)
        wait_for(lambda: socket.close_code is not None or _closed(socket), timeout=DEADLINE_S, message="the server to close it")
    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId=connection_id, Data=b"late")
    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId="never-was", Data=b"x")


def _closed(socket: Any) -> bool:
    try:
        socket.recv(timeout=0.1)
    except TimeoutError:
        return False
    except Exception:
        return True
    return False


def test_a_frame_over_128_kb_closes_the_socket(cloud):
    local, _ = cloud
    with connect(ws_url(local), open_timeout=DEADLINE_S, max_size=None) as socket:
        socket.send("x" * (128 * 1024 + 1))
        wait_for(lambda: _closed(socket), timeout=DEADLINE_S, message="the close")
        assert socket.close_code == 1009


def test_an_idle_connection_is_closed_and_disconnected(tmp_path: Path):
    events = tmp_path / "events.jsonl"
    events.touch()
    service = start_local_service(
        tmp_path,
        extra_env={"JOBS_TEMPLATE": str(FIXTURE), "JOBS_PARAMETERS": f"EventFile={events}", "JOBS_LOCAL_WS_IDLE_S": "1"},
    )
    try:
        local = WsCloud(service)
        with connect(ws_url(local), open_timeout=DEADLINE_S) as socket:
            connection_id = connection_id_of(events, "$connect", 0)
            wait_for(lambda: _closed(socket), timeout=DEADLINE_S, message="the idle close")
            assert socket.close_code == 1001
        gone = wait_for(
            lambda: [e for e in recorded(events) if e["requestContext"]["routeKey"] == "$disconnect"],
            timeout=DEADLINE_S,
            message="$disconnect",
        )
        assert gone[-1]["requestContext"]["connectionId"] == connection_id
    finally:
        stop_local_service(service)
