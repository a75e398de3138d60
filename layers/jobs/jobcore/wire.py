"""The wire: request bodies decoded safely, responses encoded.

Whatever arrives, decoding ends in plain JSON values or in a 4xx: bodies nested deeper than
the limit, numbers of more digits than any field takes, `NaN` and `Infinity`, invalid UTF-8
and lone surrogates (which no store or log can hold) are refused here, before any command
is parsed.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .errors import InvalidJson, InvalidRequest, PayloadTooLarge
from .settings import Limits

_SURROGATE = re.compile("[\ud800-\udfff]")


class _Refused(ValueError):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def decode_json(data: bytes | str, limits: Limits, *, what: str = "body") -> Any:
    """Plain JSON values from a body or a message; InvalidJson, InvalidRequest or
    PayloadTooLarge for anything else."""
    size = len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    if size > limits.body_bytes:
        raise PayloadTooLarge(f"the {what} is {size} bytes; the limit is {limits.body_bytes}")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidJson(f"the {what} is not UTF-8: {error.reason} at byte {error.start}") from None

    def number(text: str) -> Any:
        digits = sum(c.isdigit() for c in text)
        if digits > limits.number_digits:
            raise _Refused(f"a number has {digits} digits; at most {limits.number_digits}")
        value = float(text) if any(c in text for c in ".eE") else int(text)
        if isinstance(value, float) and not math.isfinite(value):
            raise _Refused(f"the number {text[:40]} is out of range")
        return value

    def constant(name: str) -> Any:
        raise _Refused(f"{name} is not JSON")

    try:
        value = json.loads(data, parse_int=number, parse_float=number, parse_constant=constant)
    except _Refused as refused:
        raise InvalidRequest.fields({what: refused.problem}) from None
    except RecursionError:
        raise InvalidRequest.fields({what: f"nested deeper than {limits.json_depth} levels"}) from None
    except json.JSONDecodeError as error:
        raise InvalidJson(f"the {what} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    problem = check_json(value, limits)
    if problem:
        raise InvalidRequest.fields({what: problem})
    return value


def check_json(value: Any, limits: Limits) -> str | None:
    """What is wrong with a decoded value (depth, surrogates), or None."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, str):
            if _SURROGATE.search(current):
                return "a string holds a lone surrogate (not valid Unicode)"
        elif isinstance(current, dict | list):
            if depth > limits.json_depth:
                return f"nested deeper than {limits.json_depth} levels"
            items = current.items() if isinstance(current, dict) else enumerate(current)
            for key, item in items:
                if isinstance(key, str) and _SURROGATE.search(key):
                    return "a key holds a lone surrogate (not valid Unicode)"
                stack.append((item, depth + 1))
        elif isinstance(current, float) and not math.isfinite(current):
            return "NaN and Infinity are not JSON"
    return None


def has_surrogate(text: str) -> bool:
    return bool(_SURROGATE.search(text))


def encode_json(value: Any) -> str:
    """Compact JSON text, as answered and as stored."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
