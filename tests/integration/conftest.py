"""Integration fixtures: the embedded DynamoDB server (moto, one lock per request)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from jobcore.store import make_client
from localcloud.dynamodb import EmbeddedDynamoDB
from localcloud.template import create_tables

TABLE_NAME = "jobs-race"


@pytest.fixture
def dynamodb_endpoint(template: dict[str, Any], _aws_environment: None) -> Iterator[str]:
    server = EmbeddedDynamoDB()
    endpoint = server.start()
    try:
        admin = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
        create_tables(admin, template, {"JobsTable": TABLE_NAME})
        yield endpoint
    finally:
        server.stop()


@pytest.fixture
def client_factory(dynamodb_endpoint: str) -> Any:
    """A new client per worker thread, as each Lambda container has its own."""
    return lambda: make_client(dynamodb_endpoint)


@pytest.fixture(autouse=True)
def _quiet_server_log() -> None:
    """werkzeug logs every request at INFO: thousands of lines a race."""
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
