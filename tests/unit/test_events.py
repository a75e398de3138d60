"""events/: one sample per function, each the event API Gateway would send for its route,
and each answered as the contract says when its handler is invoked with it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from jobcore import keys
from jobcore.model import Principal, Role
from localcloud.functions import api_routes, functions, http_routes, load_handler
from localcloud.template import PROJECT_ROOT, load_template
from localcloud.websocket_api import websocket_apis

EVENTS = PROJECT_ROOT / "events"
SAMPLE_JOB = "01JDA3Q0Z8M6W4K2T9R7P5N3B1"
# What each sample gets against a pending "thumbnail" job SAMPLE_JOB owned by User#1234
# (version 1, never leased), reasoned from the contract.
EXPECTED = {
    "create_job": 201,
    "list_jobs": 200,
    "delete_all_jobs": 200,
    "clean_jobs": 200,
    "get_job": 200,
    "patch_job": 200,  # If-Match: 1 is the current version
    "delete_job": 200,
    "start_job": 200,
    "claim_job": 200,
    "claim_any": 200,  # {"data": [the sample job]}: max_jobs is given
    "extend_lease": 409,  # not_running: the sample job holds no lease
    "abort_job": 409,
    "complete_job": 409,
    "fail_job": 409,
    "cancel_job": 200,
    "post_status": 200,  # a pending job takes status posts without a token
    "list_messages": 200,
    "get_result": 409,  # not_finished
    "list_queues": 200,
    "list_queue_jobs": 200,
    "batch": 200,
    "get_schema": 200,
    "get_queue": 200,
    "patch_queue": 200,
    "queue_history": 200,
    "retry_job": 409,  # not_retryable: the sample job is pending
    "redrive_queue": 200,
    "purge_queue": 200,
    "put_schedule": 200,  # replaces the sample schedule
    "get_schedule": 200,
    "list_schedules": 200,
    "patch_schedule": 200,
    "delete_schedule": 200,  # an admin may delete a schedule
}
TEMPLATE = load_template()
HTTP_MODULES = sorted(r.function.handler.split(".")[0] for r in api_routes(TEMPLATE))


def load_event(module: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / f"{module}.json").read_text()))


def test_one_event_file_per_function_and_no_other():
    modules = {spec.handler.split(".")[0] for spec in functions(TEMPLATE).values()}
    assert {p.stem for p in EVENTS.glob("*.json")} == modules
    assert set(EXPECTED) == set(HTTP_MODULES)


@pytest.mark.parametrize("route", api_routes(TEMPLATE), ids=lambda r: r.route_key)
def test_each_http_event_is_its_routes_event(route):
    event = load_event(route.function.handler.split(".")[0])
    assert event["version"] == "2.0"
    assert event["routeKey"] == event["requestContext"]["routeKey"] == route.route_key
    expected_path = route.path
    for name in re.findall(r"\{(\w+)\}", route.path):
        expected_path = expected_path.replace("{" + name + "}", event["pathParameters"][name])
    assert event["rawPath"] == event["requestContext"]["http"]["path"] == expected_path
    assert event["requestContext"]["http"]["method"] == route.method
    authorizer = event["requestContext"]["authorizer"]["lambda"]
    assert authorizer["sub"] and authorizer["role"] in {r.value for r in Role}
    if "body" in event:
        json.loads(event["body"])


def test_the_console_event_is_its_page_route_and_gets_the_page():
    """The console's routes take no token: its sample is the page's request, without one."""
    (page,) = [r for r in http_routes(TEMPLATE) if not r.authorized and r.path == "/"]
    event = load_event(page.function.handler.split(".")[0])
    assert event["routeKey"] == event["requestContext"]["routeKey"] == page.route_key == "GET /"
    assert event["rawPath"] == "/" and "authorizer" not in event["requestContext"]
    response = load_handler(page.function)(event, None)
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in response["headers"]["Content-Security-Policy"]


def seed_sample_job(service: Any) -> None:
    item, _ = service._new_job_item(
        Principal("svc-thumbnails", Role.SERVICE), {"type": "thumbnail", "owner": "User#1234"}, service.clock.now()
    )  # fmt: skip
    item.update(id=SAMPLE_JOB, **keys.job_key(SAMPLE_JOB))
    item.update(keys.index_attributes(item))
    service.store.put(item)
    # The queue's item, with the priority level the job is in, as its create registered them.
    service.store.put({**keys.queue_name_key("thumbnail"), "type": "thumbnail", "levels": {keys.priority_of(item)}})
    # A schedule of the queue: 03:00 in Berlin (02:00 UTC in November), from the clock's 10:00.
    service.put_schedule(Principal("svc-thumbnails", Role.SERVICE), "nightly-thumbnails",
                         {"cron": "0 3 * * *", "timezone": "Europe/Berlin", "job": {"type": "thumbnail"}})  # fmt: skip


@pytest.mark.parametrize("module", HTTP_MODULES)
def test_each_handler_answers_its_sample(module, api, service, clock):
    seed_sample_job(service)
    clock.advance(1)
    route = next(r for r in api_routes(TEMPLATE) if r.function.handler.startswith(f"{module}."))
    event = load_event(module)
    response = api.handler_for(route)(event, None)
    assert response["headers"]["X-Correlation-Id"] == event["headers"]["x-correlation-id"]
    assert response["statusCode"] == EXPECTED[module], response["body"]
    body = json.loads(response["body"]) if response["body"] else None
    if response["statusCode"] >= 400:
        assert set(body["error"]) == {"code", "message", "details"}


def test_the_authorizer_event_gets_a_simple_response(monkeypatch):
    monkeypatch.setenv("JOBS_JWT_SECRET", "events-test-secret-0123456789abcdef")
    handler = load_handler(functions(TEMPLATE)["AuthorizerFunction"])
    verdict = handler(json.loads(Path(EVENTS / "authorizer.json").read_text()), None)
    assert verdict["isAuthorized"] is True
    assert verdict["context"] == {"auth_error": "malformed token"}  # the sample's token is redacted


WS_ROUTES = websocket_apis(TEMPLATE)[0].routes
WS_MODULES = {key: functions(TEMPLATE)[r.function].handler.split(".")[0] for key, r in WS_ROUTES.items() if r.function}
EVENT_TYPES = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}


def ws_handler(module: str) -> Any:
    spec = next(s for s in functions(TEMPLATE).values() if s.handler.startswith(f"{module}."))
    return load_handler(spec)


@pytest.mark.parametrize("route_key", sorted(WS_MODULES))
def test_each_websocket_event_is_its_routes_event(route_key):
    event = load_event(WS_MODULES[route_key])
    context = event["requestContext"]
    assert context["routeKey"] == route_key
    assert context["eventType"] == EVENT_TYPES.get(route_key, "MESSAGE")
    assert context["connectionId"]
    assert context["authorizer"]["sub"] and context["authorizer"]["role"] in {r.value for r in Role}
    if context["eventType"] == "MESSAGE":
        action = json.loads(event["body"])["action"]
        assert (action == route_key) == (route_key != "$default")


def test_each_websocket_handler_answers_its_sample(live_service, subscriptions, service, dynamodb):
    from jobcore.wiring import wiring

    wiring.use(subscriptions=subscriptions)
    try:
        replies = {key: ws_handler(m)(load_event(m), None) for key, m in WS_MODULES.items() if key != "$disconnect"}
        connection = load_event(WS_MODULES["$connect"])["requestContext"]["connectionId"]
        assert replies["$connect"] == {"statusCode": 200}
        assert json.loads(replies["subscribe"]["body"]) == {"type": "subscribed", "topic": {"owner": "User#1234"}}
        assert json.loads(replies["unsubscribe"]["body"]) == {"type": "unsubscribed", "topic": {"owner": "User#1234"}}
        assert json.loads(replies["ping"]["body"]) == {"type": "pong"}
        refused = json.loads(replies["$default"]["body"])
        assert refused["type"] == "error"
        assert refused["error"]["code"] == "invalid_request"
        assert "status" in refused["error"]["details"]["fields"]["action"]
        assert ws_handler(WS_MODULES["$disconnect"])(load_event(WS_MODULES["$disconnect"]), None) == {"statusCode": 200}
        assert live_service.disconnect(connection) == 0  # $disconnect already removed everything
    finally:
        wiring.reset()


def test_the_fan_out_sample_reaches_the_owners_socket(fan_out, live_service, sockets):
    owner = Principal("User#1234", Role.USER)
    live_service.connect("phone", owner)
    live_service.subscribe("phone", owner, {"action": "subscribe"})
    result = ws_handler("fan_out")(load_event("fan_out"), None)
    assert result == {"batchItemFailures": []}
    (update,) = sockets.received["phone"]
    assert (update["job_id"], update["version"], update["message_to_append"]) == (SAMPLE_JOB, 2, "Resized IMG_0001.jpg")


def test_the_counts_sample_counts_a_created_and_started_job(engine, service):
    from jobcore.wiring import wiring

    wiring.use(engine=engine)
    try:
        event = load_event("queue_counts")
        assert ws_handler("queue_counts")(event, None) == {"state": {}}
        assert ws_handler("queue_counts")(event, None) == {"state": {}}  # delivered twice: counted once
    finally:
        wiring.reset()
    queue = service.queue("thumbnail")
    assert queue.counts == {"idle": 0, "pending": 0, "running": 1, "finished": 0, "error": 0, "cancelled": 0}
    minute = engine.ctx.store.get(keys.history_key("thumbnail", "2026-11-22T10:00:00.000Z"))
    assert minute is not None and (minute["created"], minute["started"]) == (1, 1)


def test_the_scheduled_sample_runs_the_due_schedule_at_its_time(engine, service):
    from jobcore.wiring import wiring

    seed_sample_job(service)
    wiring.use(engine=engine)
    try:
        handler = load_handler(functions(TEMPLATE)["RunSchedulesFunction"])
        assert handler(load_event("run_schedules"), None) == {"fired": 1, "skipped": 0, "failed": 0, "more": False}
        assert handler(load_event("run_schedules"), None)["fired"] == 0  # delivered twice: one job
    finally:
        wiring.reset()
    schedule = service.schedule(Principal("svc-thumbnails", Role.SERVICE), "nightly-thumbnails")
    assert schedule.last_run_at == "2026-11-23T02:00:00.000Z" and schedule.next_run_at == "2026-11-24T02:00:00.000Z"


def test_disconnect_needs_no_principal(live_service, subscriptions):
    from jobcore.wiring import wiring

    owner = Principal("User#1234", Role.USER)
    event = load_event(WS_MODULES["$disconnect"])
    live_service.connect(event["requestContext"]["connectionId"], owner)
    del event["requestContext"]["authorizer"]
    wiring.use(subscriptions=subscriptions)
    try:
        assert ws_handler(WS_MODULES["$disconnect"])(event, None) == {"statusCode": 200}
    finally:
        wiring.reset()
    assert live_service.disconnect(event["requestContext"]["connectionId"]) == 0
