"""What used to slip through the edge, over the HTTP handlers: every case is a 4xx now, and
nothing is written or deleted by a request that was refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.test_http_routes import JOB, ROUTES, assert_error, concrete

HOSTILE_BODIES = {
    "nested 1,000 deep": "[" * 1000 + "]" * 1000,
    "nested past the limit": json.dumps({"type": "q", "params": json.loads("[" * 70 + "]" * 70)}),
    "5,000 digits": '{"type": "q", "max_retries": ' + "9" * 5000 + "}",
    "NaN": '{"type": "q", "params": NaN}',
    "Infinity in progress": '{"progress": {"current": Infinity}}',
    "a lone surrogate": '{"type": "q", "title": "\\ud800", "new_status": "\\udc00"}',
    "not JSON": "{",
    "null": "null",
}


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
@pytest.mark.parametrize("raw", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_a_hostile_body_is_a_4xx_on_every_route(api, admin, svc, route, raw):
    from tests.support.routes import may_call

    # The role the route lets in, so that the body reaches its parser.
    result = api.call(route[0], concrete(route[1]), principal=admin if may_call("admin", route) else svc, raw_body=raw)
    assert 400 <= result.status < 500, (route, result.body)


@pytest.mark.parametrize("value", ["٣", "1" * 1000, "-1", "2.0"])
def test_an_if_match_that_is_no_version_is_a_400(api, svc, value):
    job = api.call("POST", "/v1/jobs", principal=svc, body={"type": "q"}).body
    result = api.call("PATCH", f"/v1/jobs/{job['id']}", principal=svc, body={"title": "x"}, headers={"If-Match": value})
    assert_error(result, 400, "invalid_request")
    assert "If-Match" in result.body["error"]["details"]["fields"]


def test_a_filtered_delete_all_deletes_nothing(api, svc, admin):
    kept = api.call("POST", "/v1/jobs", principal=svc, body={"type": "x"}).body
    result = api.call("DELETE", "/v1/jobs", principal=admin, query={"type": "x", "state": "finished"})
    assert_error(result, 400, "invalid_request")
    assert set(result.body["error"]["details"]["fields"]) == {"type", "state"}
    assert api.call("GET", f"/v1/jobs/{kept['id']}", principal=svc).status == 200


def test_every_route_refuses_a_query_parameter_it_does_not_know(api, admin, svc):
    from tests.support.routes import may_call

    for method, path in ROUTES:
        caller = admin if may_call("admin", (method, path)) else svc
        result = api.call(method, concrete(path), principal=caller, query={"colour": "red"}, body={})
        assert result.status in (400, 404), (method, path, result.body)
        if result.status == 400:
            assert result.body["error"]["details"]["fields"].get("colour") == "unknown query parameter"


def listed(api: Any, principal: Any, **query: str) -> Any:
    return api.call("GET", "/v1/jobs", principal=principal, query=query)


def test_an_edited_or_foreign_cursor_is_a_400_naming_cursor(api, svc, alice):
    for n in range(3):
        api.call("POST", "/v1/jobs", principal=svc, body={"type": "paged", "owner": alice.sub, "ref_id": f"r{n}"})
    first = listed(api, svc, type="paged", limit="1")
    cursor = first.body["next_cursor"]
    assert listed(api, svc, type="paged", limit="1", cursor=cursor).status == 200
    edited = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    other_listing = listed(api, svc, type="other", limit="1", cursor=cursor)
    other_caller = listed(api, alice, limit="1", cursor=cursor)
    fabricated = listed(api, svc, type="paged", cursor="eyJzIjoiam9icyJ9.AAAA")
    for result in (listed(api, svc, type="paged", cursor=edited), other_listing, other_caller, fabricated,
                   listed(api, svc, type="paged", cursor=cursor[:10])):  # fmt: skip
        assert_error(result, 400, "invalid_request")
        assert set(result.body["error"]["details"]["fields"]) == {"cursor"}


def test_many_jobs_by_id_in_the_order_asked(api, svc, alice):
    own = api.call("POST", "/v1/jobs", principal=svc, body={"type": "m", "owner": alice.sub}).body["id"]
    other = api.call("POST", "/v1/jobs", principal=svc, body={"type": "m", "owner": "User#else"}).body["id"]
    both = listed(api, svc, ids=f"{other},{JOB},{own}")
    assert [j["id"] for j in both.body["data"]] == [other, own]
    assert [j["id"] for j in listed(api, alice, ids=f"{other},{own}").body["data"]] == [own]
    assert_error(listed(api, svc, ids=own, type="m"), 400, "invalid_request")
