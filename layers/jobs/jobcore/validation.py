"""Reading request bodies and query parameters into typed values.

Every problem is collected, so one 400 names each bad field at once; unknown fields are
refused. Query parameters arrive as strings and are converted here as well.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .clock import parse_iso
from .errors import InvalidRequest, PayloadTooLarge
from .model import json_size

# Queue names: no "#" (it separates the parts of our keys) and no "/" (they sit in paths).
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.:@+=-]+$")
_MISSING = object()
MIN_YEAR, MAX_YEAR = 1970, 9000


class Reader:
    """Reads fields of one JSON object, collecting a problem per bad field."""

    def __init__(self, body: Any, allowed: set[str] | frozenset[str], *, prefix: str = "", text_values: bool = False) -> None:
        self.problems: dict[str, str] = {}
        self.prefix = prefix
        # Query parameters arrive as text: "5" and "true" are read as 5 and True there, and
        # only there; a JSON body must send numbers and booleans as such.
        self.text_values = text_values
        if body is None:
            body = {}
        if not isinstance(body, Mapping):
            raise InvalidRequest.fields({prefix.rstrip(".") or "body": "must be a JSON object"})
        self.body: Mapping[str, Any] = body
        for name in body:
            if name not in allowed:
                self.problems[self._at(str(name))] = "unknown field"

    def _at(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def has(self, name: str) -> bool:
        return name in self.body

    def problem(self, name: str, text: str) -> None:
        self.problems.setdefault(self._at(name), text)

    def raw(self, name: str, default: Any = None) -> Any:
        return self.body.get(name, default)

    def string(self, name: str, *, required: bool = False, max_chars: int = 256, name_like: bool = False) -> str | None:
        value = self.body.get(name, _MISSING)
        if value is _MISSING or value is None:
            if required:
                self.problem(name, "required")
            return None
        if not isinstance(value, str):
            self.problem(name, "must be a string")
            return None
        if required and not value:
            self.problem(name, "must not be empty")
            return None
        if len(value) > max_chars:
            self.problem(name, f"at most {max_chars} characters")
            return None
        if name_like and value and not NAME_PATTERN.match(value):
            self.problem(name, "letters, digits and _.:@+=- only")
            return None
        return value

    def integer(self, name: str, *, required: bool = False, minimum: int = 0, maximum: int | None = None) -> int | None:
        value = self.body.get(name, _MISSING)
        if value is _MISSING or value is None:
            if required:
                self.problem(name, "required")
            return None
        if self.text_values and isinstance(value, str) and re.fullmatch(r"-?\d{1,18}", value.strip()):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(name, "must be an integer")
            return None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            self.problem(name, f"must be {bound}")
            return None
        return value

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self.body.get(name, _MISSING)
        if value is _MISSING or value is None:
            return default
        if self.text_values and isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            self.problem(name, "must be true or false")
            return default
        return value

    def time(self, name: str) -> datetime | None:
        value = self.body.get(name, _MISSING)
        if value is _MISSING or value is None:
            return None
        if not isinstance(value, str):
            self.problem(name, "must be an ISO-8601 time string")
            return None
        try:
            moment = parse_iso(value)
        except (ValueError, OverflowError):
            self.problem(name, "must be an ISO-8601 time with a zone, e.g. 2026-11-22T10:00:00.000Z")
            return None
        if not MIN_YEAR <= moment.year <= MAX_YEAR:
            # Epoch-second TTLs start at 1970; far dates would overflow when a delay is added.
            self.problem(name, f"must be a time between the years {MIN_YEAR} and {MAX_YEAR}")
            return None
        return moment

    def json_value(self, name: str, *, max_bytes: int) -> Any:
        """Any JSON; over ``max_bytes`` of compact UTF-8 it is a 413, raised at once."""
        value = self.body.get(name)
        if value is not None:
            try:
                size = json_size(value)
            except ValueError:
                self.problem(name, "must be finite JSON")
                return None
            if size > max_bytes:
                raise PayloadTooLarge(
                    f"{self._at(name)} is {size} bytes; the limit is {max_bytes}",
                    {"field": self._at(name), "limit_bytes": max_bytes, "size_bytes": size},
                )
        return value

    def choice(self, name: str, options: tuple[str, ...], *, default: str | None = None) -> str | None:
        value = self.body.get(name, _MISSING)
        if value is _MISSING or value is None:
            return default
        if value not in options:
            self.problem(name, "one of " + ", ".join(options))
            return default
        return str(value)

    def done(self) -> None:
        if self.problems:
            raise InvalidRequest.fields(self.problems)


def merge_problems(*readers: Reader) -> None:
    problems: dict[str, str] = {}
    for reader in readers:
        problems.update(reader.problems)
    if problems:
        raise InvalidRequest.fields(problems)
