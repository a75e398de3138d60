"""Which role may call which route (API.md "Routes"), for the tests that check it."""

from __future__ import annotations

# Routes users may not call (services and admins may).
SERVICE_ONLY = {
    ("POST", "/v1/jobs"), ("POST", "/v1/jobs/clean"), ("PATCH", "/v1/jobs/{id}"), ("DELETE", "/v1/jobs/{id}"),
    ("POST", "/v1/jobs/{id}/start"), ("POST", "/v1/queues/{type}/claim"), ("POST", "/v1/jobs/{id}/extend"),
    ("POST", "/v1/jobs/{id}/abort"), ("POST", "/v1/jobs/{id}/complete"), ("POST", "/v1/jobs/{id}/fail"),
    ("POST", "/v1/jobs/{id}/status"), ("GET", "/v1/queues"), ("GET", "/v1/queues/{type}/jobs"), ("POST", "/v1/batch"),
    ("GET", "/v1/queues/{type}"), ("PATCH", "/v1/queues/{type}"), ("GET", "/v1/queues/{type}/history"),
    ("POST", "/v1/jobs/{id}/retry"), ("POST", "/v1/queues/{type}/redrive"), ("POST", "/v1/claim"),
    ("GET", "/v1/schedules"), ("GET", "/v1/schedules/{name}"), ("DELETE", "/v1/schedules/{name}"),
    ("PATCH", "/v1/schedules/{name}"),
}  # fmt: skip
ADMIN_ONLY = {("DELETE", "/v1/jobs"), ("DELETE", "/v1/queues/{type}/jobs")}
# Writing a schedule: services alone (its jobs are the service's own). An admin may PATCH
# `paused` alone (the console's pause and resume); tests/unit/test_schedules.py holds the rest.
SERVICES_ALONE = {("PUT", "/v1/schedules/{name}")}


def may_call(role: str, route: tuple[str, str]) -> bool:
    if route in SERVICES_ALONE:
        return role == "service"
    if role == "admin":
        return True
    if route in ADMIN_ONLY:
        return False
    return not (role == "user" and route in SERVICE_ONLY)
