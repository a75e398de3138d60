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
from jobcore.engine import Engine
from jobcore.live.delivery import FanOut
from jobcore.live.subscriptions import Subscriptions
from jobcore.model import Principal, Role
from jobcore.observability import Recorder
from jobcore.settings import LiveSettings, Settings
from jobcore.store import TableStore
from localcloud import dynamodb_fixes
from localcloud.template import create_tables, load_template
from tests.support.counting import RequestCounter
from tests.support.jobs import Jobs
from tests.support.live import LiveRoutes
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


CURSOR_KEY = b"tests-cursor-key"


@pytest.fixture
def settings() -> Settings:
    return Settings(table_name=TABLE_NAME, cursor_key=CURSOR_KEY)


@pytest.fixture
def events() -> Recorder:
    """The domain events the engine counted."""
    return Recorder()


@pytest.fixture
def engine(dynamodb: Any, settings: Settings, clock: ManualClock, events: Recorder) -> Engine:
    return Engine(TableStore(dynamodb, TABLE_NAME), settings, clock=clock, rng=random.Random(7), count=events)


@pytest.fixture
def service(engine: Engine) -> Jobs:
    """The engine, driven with request bodies as the edge parses them."""
    return Jobs(engine)


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
def api(template: dict[str, Any], engine: Engine) -> Iterator[Any]:
    """The HTTP functions, invoked through their handlers, on the test's engine."""
    from jobcore.wiring import wiring
    from localcloud.functions import api_routes
    from tests.support.http import ApiClient

    wiring.use(engine=engine)
    try:
        yield ApiClient(api_routes(template))
    finally:
        wiring.reset()


@pytest.fixture
def subscriptions(dynamodb: Any, engine: Engine, clock: ManualClock) -> Subscriptions:
    """Connections and subscriptions on the test's tables; subscribing to a job reads the test's engine."""
    connections = TableStore(dynamodb, CONNECTIONS_TABLE)
    return Subscriptions(connections, LiveSettings(CONNECTIONS_TABLE), check_job=engine.listing.load_for, clock=clock)


@pytest.fixture
def live_service(subscriptions: Subscriptions) -> LiveRoutes:
    """The same, driven with WebSocket message bodies."""
    return LiveRoutes(subscriptions)


@pytest.fixture
def sockets() -> FakeSockets:
    return FakeSockets()


@pytest.fixture
def fan_out(subscriptions: Subscriptions, sockets: FakeSockets) -> Iterator[FanOut]:
    """The fan-out of the stream function, posting to fake sockets."""
    from jobcore.wiring import wiring

    fan = FanOut(subscriptions, sockets.post)
    wiring.use(subscriptions=subscriptions, fan_out=fan)
    try:
        yield fan
    finally:
        wiring.reset()
        fan.pool.shutdown()
