"""Commands of the WebSocket API: what a subscribe or an unsubscribe message names."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidRequest
from ..live.messages import Topic
from ..settings import Limits
from .fields import Reader

TOPIC_KINDS = ("job_id", "type", "owner", "work")


def parse_topic(body: Any, limits: Limits) -> Topic | None:
    """The one topic a message names (job_id, type, owner, or work: a queue's notices of
    claimable work), or None for "my own jobs"."""
    r = Reader(body, frozenset({"action", *TOPIC_KINDS}), limits, what="message")
    named = {kind: r.key_name(kind) for kind in TOPIC_KINDS}
    r.string("action", max_chars=64)
    r.done()
    given = {kind: value for kind, value in named.items() if value}
    if len(given) > 1:
        raise InvalidRequest.fields({kind: "name one of job_id, type, owner or work" for kind in given})
    if not given:
        return None
    kind, value = next(iter(given.items()))
    return Topic(kind, value)
