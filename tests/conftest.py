"""Fixtures: DynamoDB tables built from template.yaml's own properties, a manual clock."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from jobcore.clock import ManualClock
from jobcore.config import Settings
from jobcore.live import FanOut, LiveService, LiveSettings
from jobcore.model import Principal, Role
from jobcore.service import JobService
from jobcore.store import TableStore
from localcloud import dynamodb_fixes
from localcloud.template import create_tables, load_template
from tests.support.counting import RequestCounter
from tests.support.sockets import FakeSockets

TABLE_NAME = "jobs-test"
CONNECTIONS_TABLE = "connections-test"


@pytest.fixture(autouse=True)
def _aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a region, so nothing can reach a real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("JOBS_DYNAMODB_ENDPOINT", raising=False)


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture
def dynamodb(template: dict[str, Any], _aws_environment: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(client, template, {"JobsTable": TABLE_NAME, "ConnectionsTable": CONNECTIONS_TABLE})
        yield client


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings() -> Settings:
    return Settings(table_name=TABLE_NAME)


@pytest.fixture
def service(dynamodb: Any, settings: Settings, clock: ManualClock) -> JobService:
    return JobService(TableStore(dynamodb, TABLE_NAME), settings, clock=clock, rng=random.Random(7))


@pytest.fixture
def counter(dynamodb: Any) -> RequestCounter:
    return RequestCounter().attach(dynamodb)


@pytest.fixture
def svc() -> Principal:
    return Principal("svc-a", Role.SERVICE)


@pytest.fixture
def admin() -> Principal:
    return Principal("root", Role.ADMIN)


@pytest.fixture
def alice() -> Principal:
    return Principal("User#alice", Role.USER)


@pytest.fixture
def bob() -> Principal:
    return Principal("User#bob", Role.USER)


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    # The suite runs moto as the local cloud does: with its fixes (tests compare both).
    dynamodb_fixes.install(stream_retention_s=24 * 3600)


@pytest.fixture
def api(template: dict[str, Any], service: JobService) -> Iterator[Any]:
    """The HTTP functions, invoked through their handlers, on the test's engine."""
    from jobcore import api as http
    from localcloud.functions import http_routes
    from tests.support.http import ApiClient

    http.services.set(service)
    try:
        yield ApiClient(http_routes(template))
    finally:
        http.services.set(None)


@pytest.fixture
def live_service(dynamodb: Any, service: JobService, clock: ManualClock) -> LiveService:
    """Connections and subscriptions on the test's tables; subscribing to a job reads the test's engine."""
    connections = TableStore(dynamodb, CONNECTIONS_TABLE)
    return LiveService(connections, LiveSettings(CONNECTIONS_TABLE), jobs=lambda: service, clock=clock)


@pytest.fixture
def sockets() -> FakeSockets:
    return FakeSockets()


@pytest.fixture
def fan_out(live_service: LiveService, sockets: FakeSockets) -> Iterator[FanOut]:
    """The fan-out of the stream function, posting to fake sockets."""
    from jobcore.live_api import live

    fan = FanOut(live_service, sockets.post)
    live.set(live_service, fan)
    try:
        yield fan
    finally:
        live.set(None)
        fan.pool.shutdown()
