"""Scoped service tokens: a service whose token names its queues reaches only their jobs,
queues and live updates (model.Principal.reaches). Another queue's job is 404, exactly as a
missing one; naming another queue (a route of it, a create, a claim, a move) is 403.

Reads check the job they read. Writes that do not read first carry the scope in their
condition (`scope_condition`), so it costs nothing: a refused write whose item is of
another queue is answered 404 (writes.py)."""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import Forbidden
from ..model import Principal
from ..store import Expr


def require_queue(principal: Principal, job_type: str) -> None:
    if not principal.reaches(job_type):
        raise Forbidden(f"this token does not reach queue {job_type}", {"type": job_type})


def require_queues(principal: Principal, job_types: Iterable[str]) -> None:
    for job_type in job_types:
        require_queue(principal, job_type)


def scope_condition(principal: Principal, e: Expr, attribute: str = "type") -> str | None:
    """A condition (or filter) that holds for items of the queues the caller reaches; None
    when it reaches every queue."""
    if not principal.scoped or principal.queues is None:
        return None
    exact = [q for q in principal.queues if not q.endswith("*")]
    prefixes = [q[:-1] for q in principal.queues if q.endswith("*")]
    if "" in prefixes:  # "*": every queue
        return None
    parts = [f"begins_with({e.n(attribute)}, {e.v(prefix)})" for prefix in prefixes]
    if exact:
        parts.insert(0, f"{e.n(attribute)} IN ({', '.join(e.v(name) for name in exact)})")
    return "(" + " OR ".join(parts) + ")"
