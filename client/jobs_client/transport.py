"""`HttpSession`: calls to the jobs service's HTTP API over one reused connection pool, with
the retry rules below; the contract's errors are raised as ApiError.

Retries: a 429 or 503 means the service wrote nothing, so every call is retried on them,
after `Retry-After` when the service says, else after a jittered exponential backoff. A
lost connection, a timeout or a gateway's 502/504 leaves unknown whether the call took
effect, so only idempotent calls are retried on those (the caller says which call is:
jobs_client.client lists them).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

import httpx

from .errors import TransportError, error_for
from .models import Progress, Speed, format_time

USER_AGENT = "jobs-client/0.1"
_GATEWAY_STATUSES = (502, 504)
UNSET: Any = object()  # an argument left out, where None is a value to send


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    base_s: float = 0.2
    cap_s: float = 5.0
    max_retry_after_s: float = 30.0

    def backoff_s(self, attempt: int) -> float:
        """Full jitter: spreads the retries of many clients over the window."""
        return random.uniform(0, min(self.cap_s, self.base_s * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    correlation_id: str | None


def _retry_after_s(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _wire(value: Any) -> Any:
    """A value as JSON carries it: times in the contract's format, dataclasses as objects."""
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, Progress | Speed):
        return value.to_wire()
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value


class HttpSession:
    """The HTTP side of JobsClient: base URL, bearer token, connection pool, retries."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        if not self.base_url.endswith("/v1"):
            self.base_url += "/v1"
        self.token = token
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
            headers={"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT, "Accept": "application/json"},
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = UNSET,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool,
        timeout_s: float | None = None,
    ) -> Reply:
        """One call with the retry rules above; raises the contract's error as an ApiError."""
        correlation_id = uuid.uuid4().hex
        query = {k: _wire(v) if not isinstance(v, bool) else str(v).lower() for k, v in (params or {}).items() if v is not None}
        sent_headers = {"X-Correlation-Id": correlation_id, **(headers or {})}
        content = None if body is UNSET else json.dumps(_wire(body), separators=(",", ":")).encode("utf-8")
        if content is not None:
            sent_headers["Content-Type"] = "application/json"
        timeout = httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)) if timeout_s else None
        attempt = 0
        while True:
            attempt += 1
            last = attempt >= self.retry.max_attempts
            try:
                response = self._http.request(
                    method, path, content=content, params=query, headers=sent_headers, timeout=timeout or self._http.timeout
                )
            except httpx.TransportError as error:
                if idempotent and not last:
                    self._sleep(self.retry.backoff_s(attempt))
                    continue
                raise TransportError(
                    f"{method} {self.base_url}{path}: {error.__class__.__name__}: {error}",
                    url=self.base_url,
                    unreachable=isinstance(error, httpx.ConnectError),
                ) from error
            status = response.status_code
            retry_after = _retry_after_s(response)
            if status in (429, 503) and not last:
                wait_s = self.retry.backoff_s(attempt) if retry_after is None else min(retry_after, self.retry.max_retry_after_s)
                self._sleep(wait_s)
                continue
            if status in _GATEWAY_STATUSES and idempotent and not last:
                self._sleep(self.retry.backoff_s(attempt))
                continue
            reply_id = response.headers.get("X-Correlation-Id") or correlation_id
            try:
                parsed = response.json() if response.content else None
            except ValueError:
                parsed = None
            if status >= 400:
                raise error_for(status, parsed, correlation_id=reply_id, retry_after_s=retry_after)
            return Reply(status, parsed, reply_id)
