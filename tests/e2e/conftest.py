"""e2e fixtures: `make run`'s entry point as a subprocess on free ports, driven over HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from jobcore.auth import mint_token

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# How long anything may take to happen: sized for a loaded 2-core CI machine (cold function
# processes, a second suite beside this one). A deadline costs nothing when things work.
DEADLINE_S = float(os.environ.get("JOBS_TEST_DEADLINE_S", "120"))
SECRET = "e2e-secret-0123456789abcdef0123456789abcdef"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Any, *, timeout: float = DEADLINE_S, interval: float = 0.05, message: str = "condition") -> Any:
    """Poll until condition() is truthy; fail after the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {message}")
        time.sleep(interval)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any
    raw: bytes = b""

    @property
    def error_code(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return str(self.body["error"].get("code"))
        return None


@dataclass
class LocalService:
    """A running local cloud: its URLs, a way to mint tokens, and HTTP calls."""

    http_url: str
    ws_url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)

    def token(self, role: str, sub: str, *, ttl_s: int = 3600) -> str:
        key = (role, sub)
        if key not in self.tokens or ttl_s != 3600:
            self.tokens[key] = mint_token(SECRET, sub, role, ttl_s=ttl_s)
        return self.tokens[key]

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        raw_body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60.0,
    ) -> Reply:
        data = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.http_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, reply_headers, raw = response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as error:
            status, reply_headers, raw = error.code, dict(error.headers.items()), error.read()
        is_json = "json" in {k.lower(): v for k, v in reply_headers.items()}.get("content-type", "application/json")
        parsed = json.loads(raw) if raw and is_json else None
        return Reply(status, reply_headers, parsed, raw)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_local_service(tmp_path: Path, *, extra_env: dict[str, str] | None = None) -> LocalService:
    """A local cloud on two free ports. A port found free can be taken by another process
    before the local cloud binds it (on a busy machine it was): then it starts again on others."""
    for _ in range(4):
        service = _start_local_service_once(tmp_path, extra_env)
        if service is not None:
            return service
    raise AssertionError("the local cloud found its ports taken four times in a row")


def _start_local_service_once(tmp_path: Path, extra_env: dict[str, str] | None) -> LocalService | None:
    http_port = free_port()
    ws_port = free_port()
    while ws_port == http_port:
        ws_port = free_port()
    log_path = tmp_path / "localcloud.log"
    env = {
        **os.environ,
        "JOBS_HTTP_PORT": str(http_port),
        "JOBS_WS_PORT": str(ws_port),
        "JOBS_JWT_SECRET": SECRET,
        "PYTHONUNBUFFERED": "1",
        # Every function's own log lines: several tests read them (a newcomer's compact
        # default is tested on its own).
        "JOBS_LOG": "json",
        **(extra_env or {}),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "localcloud", "serve"], cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    service = LocalService(f"http://127.0.0.1:{http_port}", f"ws://127.0.0.1:{ws_port}", process, log_path)
    try:
        wait_for(
            lambda: "Ready." in service.logs() or process.poll() is not None, timeout=DEADLINE_S, message="local cloud start"
        )
        if process.poll() is not None:
            if "is in use: set JOBS_" in service.logs():
                return None
            raise AssertionError(f"local cloud exited: {service.logs()[-3000:]}")
    except BaseException:
        stop_local_service(service)
        raise
    return service


def stop_local_service(service: LocalService) -> int:
    if service.process.poll() is None:
        service.process.send_signal(signal.SIGINT)
        try:
            service.process.wait(timeout=DEADLINE_S)
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait(timeout=10)
    return int(service.process.returncode)


@pytest.fixture(scope="module")
def local_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    service = start_local_service(tmp_path_factory.mktemp("localcloud"))
    try:
        yield service
    finally:
        stop_local_service(service)
