"""`make run` as a newcomer meets it: the banner, one line per request, no traceback when a
client hangs up, the CLI's message when nothing runs, and no process left behind, ever."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    DEADLINE_S,
    PROJECT_ROOT,
    LocalService,
    free_port,
    start_local_service,
    stop_local_service,
    wait_for,
)

JWT = r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"


def descendants(pid: int) -> set[int]:
    """Every process below pid (children of all its threads, recursively)."""
    found: set[int] = set()
    pending = [pid]
    while pending:
        current = pending.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                children = {int(c) for c in (task / "children").read_text().split()}
            except (FileNotFoundError, ProcessLookupError):
                continue
            pending += list(children - found)
            found |= children
    return found


def alive(pid: int) -> bool:
    try:
        state = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("State:"))
    except (FileNotFoundError, ProcessLookupError, StopIteration):
        return False
    return "zombie" not in state


@pytest.fixture(scope="module")
def compact(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    """The local cloud as `make run` starts it: compact logs."""
    service = start_local_service(tmp_path_factory.mktemp("compact"), extra_env={"JOBS_LOG": "compact"})
    try:
        yield service
    finally:
        stop_local_service(service)


def test_the_banner_gives_the_urls_a_working_token_and_where_the_data_lives(compact: LocalService):
    banner = compact.logs().split("Ready.")[0]
    assert f"HTTP API    {compact.http_url}/v1" in banner
    assert f"WebSocket   {compact.ws_url}" in banner
    assert "Data        in memory" in banner and "JOBS_DATA_DIR" in banner
    exported = re.search(rf"export JOBS_URL=(\S+) JOBS_TOKEN=({JWT})", banner)
    assert exported, banner
    assert exported.group(1) == compact.http_url
    reply = compact.request("GET", "/v1/queues", token=exported.group(2))
    assert reply.status == 200, reply.body
    console = re.search(rf"Console     (\S+)/#token=({JWT})", banner)
    assert console and console.group(1) == compact.http_url, banner
    assert compact.request("GET", "/").status == 200  # the page itself takes no token
    assert compact.request("GET", "/v1/queues", token=console.group(2)).status == 200
    purge = compact.request("DELETE", "/v1/queues/banner-check/jobs", token=console.group(2))
    assert purge.status == 200, "the console's link carries an admin token"


def test_one_compact_line_per_request_and_a_failure_in_full(compact: LocalService):
    token = compact.token("service", "svc-lines")
    before = len(compact.logs())
    created = compact.request("POST", "/v1/jobs", token=token, body={"type": "lines"})
    missing = compact.request("GET", "/v1/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV", token=token)
    assert (created.status, missing.status) == (201, 404)
    lines = wait_for(
        lambda: (found := compact.logs()[before:].splitlines()) and len(found) >= 2 and found, message="two log lines"
    )
    assert re.fullmatch(r"CreateJobFunction POST /v1/jobs 201 \d+ ms", lines[0]), lines
    assert re.fullmatch(r"GetJobFunction GET /v1/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV 404 \d+ ms", lines[1]), lines
    assert not any(line.lstrip().startswith(("{", "[")) for line in lines), "no JSON lines by default"


def test_a_client_that_hangs_up_on_a_long_poll_leaves_no_traceback(compact: LocalService):
    token = compact.token("service", "svc-hangup")
    host, port = compact.http_url.removeprefix("http://").split(":")
    body = b'{"wait_ms": 2000}'
    request = (
        f"POST /v1/queues/hangup/claim HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection((host, int(port)), timeout=DEADLINE_S) as client:
        client.sendall(request)
        # Gone long before the poll answers: the server's write then meets a closed socket.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    wait_for(lambda: "POST /v1/queues/hangup/claim 204" in compact.logs(), message="the long poll to end")
    logs = compact.logs()
    assert "Traceback" not in logs and "BrokenPipe" not in logs and "ConnectionReset" not in logs


def test_the_cli_names_the_url_it_tried_when_nothing_answers():
    url = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run(
        [str(Path(sys.executable).parent / "jobs"), "--url", url, "--token", "x", "list"],
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        check=False,
    )
    assert done.returncode == 2
    assert url in done.stderr and "make run" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_cli_has_a_version():
    done = subprocess.run(
        [str(Path(sys.executable).parent / "jobs"), "--version"], capture_output=True, text=True, timeout=DEADLINE_S, check=True
    )
    assert re.fullmatch(r"jobs \d+\.\d+\.\d+\S*\n", done.stdout)


def test_ctrl_c_stops_everything_even_a_function_in_the_middle_of_a_long_poll(tmp_path: Path):
    service = start_local_service(tmp_path)
    token = service.token("service", "svc-stop")
    assert service.request("POST", "/v1/jobs", token=token, body={"type": "stop"}).status == 201
    host, port = service.http_url.removeprefix("http://").split(":")
    body = b'{"wait_ms": 20000}'
    poll = socket.create_connection((host, int(port)), timeout=DEADLINE_S)
    poll.sendall(
        (
            f"POST /v1/queues/nothing-here/claim HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
    )
    try:
        workers = wait_for(lambda: (found := descendants(service.process.pid)) and len(found) >= 3 and found,
                           message="the function processes")  # fmt: skip
        time.sleep(0.5)  # the long poll is under way in its function (it lasts 20 s)
        assert stop_local_service(service) == 0
    finally:
        poll.close()
    survivors = {pid: Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")[:200] for pid in workers if alive(pid)}
    assert not survivors, f"no function process outlives the local cloud: {survivors}"
    logs = service.logs()
    assert "Traceback" not in logs
    assert "[CreateJobFunction] {" in logs and "[AuthorizerFunction]" not in logs.split("Ready.")[0]


def test_a_killed_local_cloud_leaves_no_function_process_behind(tmp_path: Path):
    service = start_local_service(tmp_path)
    token = service.token("service", "svc-kill")
    assert service.request("POST", "/v1/jobs", token=token, body={"type": "kill"}).status == 201
    workers = descendants(service.process.pid)
    assert workers
    os.kill(service.process.pid, signal.SIGKILL)  # no chance to clean up
    service.process.wait(timeout=DEADLINE_S)
    wait_for(lambda: not [pid for pid in workers if alive(pid)], message="every function process to end on its own")


def test_a_port_in_use_is_a_clear_error(compact: LocalService):
    port = compact.http_url.rsplit(":", 1)[1]
    result = subprocess.run(
        [sys.executable, "-m", "localcloud", "serve"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "JOBS_HTTP_PORT": port, "JOBS_WS_PORT": "0"},
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
        check=False,
    )
    assert result.returncode == 2
    assert f"port {port} is in use" in result.stderr
