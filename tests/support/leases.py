"""What the lease tests (tests/unit/test_leases*.py) share: one moto backend for each test
module with fresh tables for every test, and helpers that drive the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from moto import mock_aws

from jobcore.clock import ManualClock, plus_ms, to_iso
from jobcore.model import Job, Principal
from localcloud.template import create_tables
from tests.conftest import TABLE_NAME
from tests.support.jobs import Jobs

TYPE = "work"


# ==========================================================================================
# fixtures: one moto backend for the module, fresh tables for every test
# ==========================================================================================
@pytest.fixture(scope="module")
def _moto_dynamodb() -> Any:
    with mock_aws():
        yield boto3.client("dynamodb", region_name="us-east-1")


@pytest.fixture
def dynamodb(_moto_dynamodb: Any, template: dict[str, Any], _aws_environment: None) -> Any:
    """The conftest's tables, built from template.yaml the same way, without starting moto
    and a client for every test (most of a test's time otherwise)."""
    for name in _moto_dynamodb.list_tables()["TableNames"]:
        _moto_dynamodb.delete_table(TableName=name)
    create_tables(_moto_dynamodb, template, {"JobsTable": TABLE_NAME})
    return _moto_dynamodb


# ==========================================================================================
# helpers
# ==========================================================================================
def new_job(service: Jobs, principal: Principal, **fields: Any) -> Job:
    result = service.create(principal, {"type": TYPE, **fields})
    assert result.created
    return result.job


def claim(service: Jobs, principal: Principal, job_type: str = TYPE, **body: Any) -> Job | None:
    return service.claim(principal, job_type, {"timeout_ms": 1000, "worker": "w1", **body})


def must_claim(service: Jobs, principal: Principal, job_type: str = TYPE, **body: Any) -> Job:
    job = claim(service, principal, job_type, **body)
    assert job is not None, "expected a job to be claimable"
    return job


def wire(service: Jobs, principal: Principal, job_id: str) -> dict[str, Any]:
    return service.get(principal, job_id).to_wire()


def iso_in(clock: ManualClock, ms: int) -> str:
    return to_iso(plus_ms(clock.now(), ms))


def messages(service: Jobs, principal: Principal, job_id: str) -> list[str]:
    return [m.message for m in service.messages(principal, job_id, {"limit": 100}).data]


def assert_unchanged_by(
    service: Jobs, principal: Principal, job_id: str, error: type[Exception], calls: dict[str, Callable[[], Any]]
) -> None:
    """Each call raises ``error`` and leaves the job exactly as it was."""
    before = wire(service, principal, job_id)
    before_messages = messages(service, principal, job_id)
    for name, call in calls.items():
        with pytest.raises(error):
            call()
        assert wire(service, principal, job_id) == before, f"{name} changed the job"
    assert messages(service, principal, job_id) == before_messages


def token_calls(service: Jobs, principal: Principal, job_id: str, token: str) -> dict[str, Callable[[], Any]]:
    """Every write a lease holder sends with its token."""
    return {
        "extend": lambda: service.extend(principal, job_id, {"lease_token": token, "timeout_ms": 60_000}),
        "complete": lambda: service.complete(principal, job_id, {"lease_token": token, "result": {"stale": True}}),
        "fail": lambda: service.fail(principal, job_id, {"lease_token": token, "error": {"code": "x", "message": "y"}}),
        "fail_no_retry": lambda: service.fail(principal, job_id, {"lease_token": token, "retry": False}),
        "abort": lambda: service.abort(principal, job_id, {"lease_token": token}),
        "status": lambda: service.post_status(
            principal, job_id, {"lease_token": token, "new_status": "stale", "message_to_append": "stale"}
        ),
        "status_extend": lambda: service.post_status(principal, job_id, {"lease_token": token, "extend_ms": 60_000}),
        "status_complete": lambda: service.post_status(principal, job_id, {"lease_token": token, "complete": True}),
    }
