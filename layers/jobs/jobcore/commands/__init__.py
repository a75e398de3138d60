"""Commands: every request parsed once, at the edge, into a typed, immutable value.

A parser takes the parts of a request (path parameters, query, headers, decoded body) and
returns the command of its operation, or raises a 4xx naming every bad field. The engine
takes commands and never sees raw JSON. Each module holds one family of operations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from msgspec import Struct, field

from ..errors import InvalidRequest, NotFound
from ..ids import is_job_id
from ..settings import Limits
from .fields import NAME_PATTERN, Reader


class Parts(Struct, frozen=True):
    """A request as the edge hands it over: names of headers in lower case, the body decoded."""

    path: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None

    def query_reader(self, allowed: frozenset[str], limits: Limits) -> Reader:
        """The query, read as text values; a parameter the route does not know is a 400."""
        return Reader(dict(self.query), allowed, limits, text_values=True, what="query")

    def body_reader(self, allowed: frozenset[str], limits: Limits) -> Reader:
        return Reader(self.body, allowed, limits)

    def no_query(self, limits: Limits) -> None:
        self.query_reader(frozenset(), limits).done()

    def no_body(self) -> None:
        if self.body not in (None, {}):
            raise InvalidRequest.fields({"body": "this route takes no body"})

    def job_id(self) -> str:
        """The job id in the path; anything that is no job id names no job (404)."""
        value = self.path.get("id", "")
        if not is_job_id(value):
            raise NotFound("job not found")
        return value

    def queue(self, limits: Limits) -> str:
        """The queue named in the path: the rule of `type` at create (no job is in any other)."""
        value = self.path.get("type", "")
        if not value or len(value) > limits.name_chars or not NAME_PATTERN.match(value):
            raise InvalidRequest.fields({"type": f"1 to {limits.name_chars} characters of A-Z a-z 0-9 _ . : @ + = -"})
        return value

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


__all__ = ["Parts", "Reader"]
