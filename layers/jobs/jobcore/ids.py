"""Job ids: ULIDs, so ids sort by creation time and need no coordination."""

from __future__ import annotations

import os
from datetime import datetime

from .clock import EPOCH

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_job_id(created: datetime) -> str:
    """48 bits of milliseconds since the epoch, then 80 random bits, in Crockford base32."""
    ms = int((created - EPOCH).total_seconds() * 1000)
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def is_job_id(text: str) -> bool:
    return len(text) == 26 and all(c in _CROCKFORD for c in text)
