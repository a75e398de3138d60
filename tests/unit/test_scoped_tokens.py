"""Scoped service tokens: the `queues` claim, read at the edge and enforced in the engine
for every operation and for live updates. (Every route over HTTP: tests/e2e/test_auth_matrix.py.)"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobcore import keys
from jobcore.auth import TokenPolicy, decode_queues, encode_queues, mint_token, queues_claim, verify_token
from jobcore.errors import Forbidden, NotFound, Unauthorized
from jobcore.live.messages import Topic
from jobcore.live.subscriptions import Subscriber, allowed_topic
from jobcore.model import Principal, Role
from tests.support.jobs import Jobs

SECRET = "scoped-tests-secret-0123456789abcdef0123456789"
POLICY = TokenPolicy(secret=SECRET)
EMAIL = Principal("svc-email", Role.SERVICE, ("email.*", "audit"))


def test_names_are_exact_and_a_star_is_a_prefix():
    assert [EMAIL.reaches(t) for t in ("email.send", "email.", "audit", "audit.x", "emails", "pdf")] == [
        True, True, True, False, False, False
    ]  # fmt: skip
    assert Principal("s", Role.SERVICE, ("*",)).reaches("anything")
    assert Principal("s", Role.SERVICE).reaches("anything") and not Principal("s", Role.SERVICE).scoped
    assert Principal("root", Role.ADMIN, ("x",)).reaches("y")  # admins are never scoped


def test_a_token_carries_its_queues_through_the_authorizer_context():
    principal = verify_token(mint_token(SECRET, "svc-email", "service", queues=["email.*", "audit"]), POLICY)
    assert principal == EMAIL
    assert decode_queues(encode_queues(principal.queues)) == ("email.*", "audit")
    assert decode_queues("") is None and verify_token(mint_token(SECRET, "s", "service"), POLICY).queues is None


@pytest.mark.parametrize("claim", [[], "email.*", {"q": 1}, [1], [""], ["a b"], ["*x"], ["x**"], [None], ["q"] * 51, ["é"]])
def test_a_queues_claim_that_cannot_be_read_makes_the_token_invalid(claim):
    import jwt

    token = jwt.encode({"sub": "s", "role": "service", "queues": claim, "exp": 4102444800}, SECRET, algorithm="HS256")
    with pytest.raises(Unauthorized):
        verify_token(str(token), POLICY)


def test_only_a_service_token_may_be_scoped():
    import jwt

    for role in ("user", "admin"):
        token = jwt.encode({"sub": "s", "role": role, "queues": ["x"], "exp": 4102444800}, SECRET, algorithm="HS256")
        with pytest.raises(Unauthorized):
            verify_token(str(token), POLICY)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_the_queues_claim_parser_accepts_only_lists_of_names_and_refuses_all_else_cleanly(value: Any):
    try:
        parsed = queues_claim(value, Role.SERVICE)
    except Unauthorized:
        return
    assert isinstance(value, list) and parsed == tuple(value) and 1 <= len(parsed) <= 50
    assert decode_queues(encode_queues(parsed)) == parsed


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_damaged_scope_text_in_a_context_is_never_read_as_every_queue(text: str):
    try:
        found = decode_queues(text)
    except Unauthorized:
        return
    assert found is None if text == "" else found == tuple(json.loads(text))


# -- the engine -----------------------------------------------------------------------------
@pytest.fixture
def foreign(service: Jobs, svc: Principal) -> str:
    return service.create(svc, {"type": "pdf.render", "owner": "User#1"}).job.id


def test_another_queues_job_is_not_found_for_every_operation(service, svc, clock, foreign):
    job = service.create(svc, {"type": "pdf.render"}).job
    clock.advance(1)
    leased = service.claim(svc, "pdf.render", {"timeout_ms": 60_000})
    assert leased is not None
    token = leased.lease_token
    versions = {j: service.get(svc, j).version for j in (foreign, job.id)}
    operations = {
        "get": lambda j: service.get(EMAIL, j),
        "result": lambda j: service.result(EMAIL, j),
        "messages": lambda j: service.messages(EMAIL, j),
        "patch": lambda j: service.patch(EMAIL, j, {"title": "x"}),
        "delete": lambda j: service.delete(EMAIL, j),
        "cancel": lambda j: service.cancel(EMAIL, j),
        "start": lambda j: service.start(EMAIL, j, {"timeout_ms": 1000}),
        "retry": lambda j: service.retry(EMAIL, j),
        "complete": lambda j: service.complete(EMAIL, j, {"result": 1}),
        "status": lambda j: service.post_status(EMAIL, j, {"new_status": "s", "message_to_append": "m"}),
        "extend": lambda j: service.extend(EMAIL, j, {"lease_token": token, "timeout_ms": 1000}),
        "abort": lambda j: service.abort(EMAIL, j, {"lease_token": token}),
        "fail": lambda j: service.fail(EMAIL, j, {"lease_token": token}),
        "complete held": lambda j: service.complete(EMAIL, j, {"lease_token": token}),
    }
    for name, operation in operations.items():
        target = leased.id if name in ("extend", "abort", "fail", "complete held") else foreign
        with pytest.raises(NotFound):
            operation(target)
        clock.advance(1)
    assert {j: service.get(svc, j).version for j in versions} == versions  # nothing was written
    assert service.messages(svc, foreign).data == []


def test_creating_claiming_or_moving_into_another_queue_is_forbidden(service, svc, clock):
    with pytest.raises(Forbidden):
        service.create(EMAIL, {"type": "pdf.render"})
    with pytest.raises(Forbidden):
        service.claim(EMAIL, "pdf.render", {"timeout_ms": 1000})
    with pytest.raises(Forbidden):
        service.batch(EMAIL, {"create": [{"type": "email.send"}, {"type": "pdf.render"}]})
    own = service.create(EMAIL, {"type": "email.send"}).job
    with pytest.raises(Forbidden):
        service.patch(EMAIL, own.id, {"type": "pdf.render"})
    assert service.patch(EMAIL, own.id, {"type": "email.bulk"}).type == "email.bulk"
    for call in (lambda: service.queue("pdf.render", EMAIL), lambda: service.patch_queue("pdf.render", {"paused": True}, EMAIL),
                 lambda: service.queue_jobs("pdf.render", principal=EMAIL), lambda: service.redrive(EMAIL, "pdf.render"),
                 lambda: service.purge(EMAIL, "pdf.render")):  # fmt: skip
        with pytest.raises(Forbidden):
            call()


def test_a_batch_of_another_queues_jobs_fails_naming_them_not_found(service, svc, foreign):
    from jobcore.errors import BatchConflict

    for body in ({"update": [{"id": foreign, "version": 1, "title": "x"}]}, {"delete": [{"id": foreign}]},
                 {"create": [{"type": "email.send"}], "depends": [{"id": foreign}]}):  # fmt: skip
        with pytest.raises(BatchConflict) as conflict:
            service.batch(EMAIL, body)
        assert [f["reason"] for f in conflict.value.details["failures"]] == ["not_found"]
    assert service.get(svc, foreign).version == 1


def test_listings_show_only_the_queues_it_reaches(service, svc, foreign):
    own = service.create(EMAIL, {"type": "email.send", "owner": "User#1"}).job
    service.create(EMAIL, {"type": "audit"})
    assert {j.type for j in service.list_jobs(EMAIL, {"limit": "100"}).data} == {"email.send", "audit"}
    assert [j.id for j in service.list_jobs(EMAIL, {"owner": "User#1"}).data] == [own.id]
    assert [j.id for j in service.list_jobs(EMAIL, {"ids": f"{foreign},{own.id}"}).data] == [own.id]
    with pytest.raises(Forbidden):
        service.list_jobs(EMAIL, {"type": "pdf.render"})
    assert [q.type for q in service.queues(principal=EMAIL).data] == ["audit", "email.send"]
    assert {q.type for q in service.queues(principal=svc).data} >= {"audit", "email.send", "pdf.render"}


def test_live_updates_reach_a_scoped_service_only_for_its_queues():
    with pytest.raises(Forbidden):
        allowed_topic(EMAIL, Topic("type", "pdf.render"))
    assert allowed_topic(EMAIL, Topic("type", "email.send")) == Topic("type", "email.send")
    follower = Subscriber("c1", EMAIL.sub, Role.SERVICE, 4102444800, EMAIL.queues)
    # Following an owner: that owner's jobs of its queues only.
    assert follower.may_see("User#1", "email.send") and not follower.may_see("User#1", "pdf.render")
    assert Subscriber("c2", "svc", Role.SERVICE, 4102444800).may_see("User#1", "pdf.render")


def test_subscribing_to_another_queues_job_is_not_found(service, svc, foreign):
    with pytest.raises(NotFound):
        service.engine.listing.load_for(EMAIL, foreign)
    assert service.engine.listing.load_for(svc, foreign).id == foreign
    assert keys.job_key(foreign)["PK"].endswith(foreign)
