"""The `fake` fixture: the CLI's client talks to a scripted service (tests/client/test_queue_client.Fake)."""

from __future__ import annotations

import httpx
import pytest
from jobs_client import JobsClient, RetryPolicy
from jobs_client import cli as cli_module

from tests.client.cli_harness import NOW
from tests.client.test_queue_client import Fake


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Fake:
    service = Fake()

    def client(url: str, token: str) -> JobsClient:
        assert (url, token) == ("http://jobs.test", "tok")
        return JobsClient(
            url, token, transport=httpx.MockTransport(service.handle), retry=RetryPolicy(max_attempts=1), sleep=lambda _s: None
        )

    monkeypatch.setattr(cli_module, "client_factory", client)
    monkeypatch.setattr(cli_module, "clock", lambda: NOW)
    return service
