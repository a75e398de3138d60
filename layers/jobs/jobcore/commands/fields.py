"""Reading the fields of one JSON object (a body, a query, a nested object) into typed values.

Every problem is collected, so one 400 names each bad field at once; unknown fields are
refused. Query parameters arrive as text and are converted here, and only there.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..clock import parse_iso
from ..errors import InvalidRequest, PayloadTooLarge
from ..ids import is_job_id
from ..settings import Limits
from ..wire import check_json, encode_json, has_surrogate

# Queue and schedule names: no "#" (it separates the parts of our keys), no "/" (paths).
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.:@+=-]+$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TEXT_INTEGER = re.compile(r"-?[0-9]{1,18}")
MIN_YEAR, MAX_YEAR = 1970, 9000
_MISSING = object()


class Reader:
    """Reads fields of one JSON object, collecting a problem per bad field."""

    def __init__(
        self,
        body: Any,
        allowed: frozenset[str] | set[str],
        limits: Limits,
        *,
        prefix: str = "",
        text_values: bool = False,
        what: str = "body",
    ) -> None:
        self.problems: dict[str, str] = {}
        self.prefix = prefix
        self.limits = limits
        # Query parameters arrive as text: "5" and "true" are read as 5 and True there, and
        # only there; a JSON body must send numbers and booleans as such.
        self.text_values = text_values
        if body is None:
            body = {}
        if not isinstance(body, Mapping):
            raise InvalidRequest.fields({prefix.rstrip(".") or what: "must be a JSON object"})
        self.body: Mapping[str, Any] = body
        for name in body:
            if name not in allowed:
                shown = name if isinstance(name, str) and not has_surrogate(name) else repr(name)
                self.problems[self._at(shown[:64])] = "unknown field" if what != "query" else "unknown query parameter"

    def _at(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def has(self, name: str) -> bool:
        return name in self.body

    def problem(self, name: str, text: str) -> None:
        self.problems.setdefault(self._at(name), text)

    def adopt(self, other: Reader) -> None:
        """Take a nested reader's problems as this one's."""
        for name, text in other.problems.items():
            self.problems.setdefault(name, text)

    def raw(self, name: str, default: Any = None) -> Any:
        return self.body.get(name, default)

    def string(
        self,
        name: str,
        *,
        required: bool = False,
        max_chars: int = 256,
        max_bytes: int | None = None,
        name_like: bool = False,
    ) -> str | None:
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
        if has_surrogate(value):
            self.problem(name, "not valid Unicode (a lone surrogate)")
            return None
        if max_bytes is not None and len(value.encode("utf-8")) > max_bytes:
            self.problem(name, f"at most {max_bytes} bytes of UTF-8")
            return None
        if name_like and value and not NAME_PATTERN.match(value):
            self.problem(name, "letters, digits and _.:@+=- only")
            return None
        return value

    def key_name(self, name: str, *, required: bool = False, name_like: bool = False) -> str | None:
        """A value that becomes part of an index key: type, ref_id, owner."""
        value = self.string(
            name, required=required, max_chars=self.limits.name_chars, max_bytes=self.limits.name_bytes, name_like=name_like
        )
        if value is not None and _CONTROL.search(value):
            self.problem(name, "no control characters")
            return None
        return value

    def integer(self, name: str, *, required: bool = False, minimum: int = 0, maximum: int | None = None) -> int | None:
        value = self.body.get(name, _MISSING)
        if value is _MISSING or value is None:
            if required:
                self.problem(name, "required")
            return None
        if self.text_values and isinstance(value, str):
            text = value.strip()
            if not _TEXT_INTEGER.fullmatch(text):
                self.problem(name, "must be an integer")
                return None
            value = int(text)
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
        if not isinstance(value, str) or len(value) > 64 or not value.isascii():
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
        if value is None:
            return None
        problem = check_json(value, self.limits)
        if problem:
            self.problem(name, problem)
            return None
        try:
            size = len(encode_json(value).encode("utf-8"))
        except (ValueError, TypeError, RecursionError):
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
        if not isinstance(value, str) or value not in options:
            self.problem(name, "one of " + ", ".join(options))
            return default
        return value

    def job_id(self, name: str, *, required: bool = True) -> str | None:
        value = self.string(name, required=required, max_chars=26)
        if value is not None and not is_job_id(value):
            self.problem(name, "not a job id")
            return None
        return value

    def done(self) -> None:
        if self.problems:
            raise InvalidRequest.fields(self.problems)


def finite_number(value: Any) -> bool:
    """A JSON number DynamoDB and JSON can hold (no NaN, no Infinity, no bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) if isinstance(value, float) else abs(value) < 10**38


def number_or_none(reader: Reader, name: str) -> float | int | None:
    """A finite number, at least 0 (progress)."""
    value = reader.raw(name)
    if value is None:
        return None
    if not finite_number(value) or value < 0:
        reader.problem(name, "must be a number, at least 0")
        return None
    number: float | int = value
    return number
