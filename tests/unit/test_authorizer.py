"""Tokens and the Lambda authorizer."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import boto3
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from moto import mock_aws

from jobcore.auth import TokenPolicy, bearer, mint_token, verify_token
from jobcore.authorizer import authorize, token_policy
from jobcore.errors import Unauthorized
from jobcore.model import Role
from jobcore.settings import AuthSettings
from localcloud.functions import functions, load_handler

SECRET = "unit-test-secret-0123456789abcdef0123"
POLICY = TokenPolicy(secret=SECRET)


def http_event(headers: dict[str, str] | None = None, query: dict[str, str] | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"version": "2.0", "type": "REQUEST", "routeKey": "GET /v1/jobs", "headers": headers or {}}
    if query:
        event["queryStringParameters"] = query
    return event


@pytest.mark.parametrize("role", list(Role))
def test_a_good_token_names_its_principal(role):
    principal = verify_token(mint_token(SECRET, "svc-a", role), POLICY)
    assert (principal.sub, principal.role) == ("svc-a", role)


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": "svc-a", "role": "service", "iat": now, "exp": now + 60, **overrides}


def signed(key: str | None = SECRET, algorithm: str = "HS256", **overrides: Any) -> Any:
    """A token built when the test runs (not at collection: its exp must be fresh)."""

    def build() -> str:
        body = claims(**overrides)
        for name in [k for k, v in overrides.items() if v is None]:
            body.pop(name)
        return str(jwt.encode(body, key, algorithm=algorithm))

    return build


@pytest.mark.parametrize(
    ("make_token", "message"),
    [
        (lambda: "", "missing bearer token"),
        (lambda: "abc", "malformed token"),
        (lambda: "a.b.c", "malformed token"),
        (signed(key="another-secret-0123456789abcdef0123"), "invalid token"),
        (signed(exp=int(time.time()) - 31), "token expired"),  # only more expired by run time
        (signed(exp=None), "invalid token"),
        (signed(sub=None), "invalid token"),
        (signed(role="root"), "token role must be service, user or admin"),
        (signed(key=None, algorithm="none"), "tokens signed with 'none' are not accepted"),
    ],
)
def test_bad_tokens_are_refused(make_token, message):
    with pytest.raises(Unauthorized) as caught:
        verify_token(make_token(), POLICY)
    assert caught.value.message == message


def test_expiry_has_a_small_leeway():
    assert verify_token(jwt.encode(claims(exp=int(time.time()) - 10), SECRET, algorithm="HS256"), POLICY)


def test_hs256_needs_a_secret():
    with pytest.raises(Unauthorized):
        verify_token(mint_token(SECRET, "svc-a", "service"), TokenPolicy(jwks_url="http://127.0.0.1:9/jwks"))


def test_issuer_and_audience_are_enforced_when_set():
    policy = TokenPolicy(secret=SECRET, issuer="https://idp", audience="jobs")
    good = jwt.encode(claims(iss="https://idp", aud="jobs"), SECRET, algorithm="HS256")
    assert verify_token(good, policy).sub == "svc-a"
    for bad in (claims(iss="https://other", aud="jobs"), claims(iss="https://idp", aud="other"), claims()):
        with pytest.raises(Unauthorized):
            verify_token(jwt.encode(bad, SECRET, algorithm="HS256"), policy)


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, Any]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/jwks.json", key
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_rs256_tokens_are_checked_against_the_jwks(jwks_server):
    url, key = jwks_server
    policy = TokenPolicy(jwks_url=url)
    token = jwt.encode(claims(role="user", sub="User#1"), key, algorithm="RS256", headers={"kid": "k1"})
    assert verify_token(token, policy).sub == "User#1"
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(claims(), other, algorithm="RS256", headers={"kid": "k1"})
    with pytest.raises(Unauthorized):
        verify_token(forged, policy)


def test_bearer_scheme():
    assert bearer("Bearer abc") == "abc"
    assert bearer("bearer  abc ") == "abc"
    assert bearer("Basic abc") == ""
    assert bearer(None) == ""


def test_http_authorizer_always_allows_and_says_what_it_found():
    good = authorize(http_event({"Authorization": f"Bearer {mint_token(SECRET, 'svc-a', 'service')}"}), POLICY)
    assert good == {"isAuthorized": True, "context": {"sub": "svc-a", "role": "service"}}
    bad = authorize(http_event({"authorization": "Bearer nope"}), POLICY)
    assert bad == {"isAuthorized": True, "context": {"auth_error": "malformed token"}}
    missing = authorize(http_event(), POLICY)
    assert missing["context"] == {"auth_error": "missing bearer token"}


def test_websocket_authorizer_allows_or_denies_with_a_policy():
    arn = "arn:aws:execute-api:us-east-1:000000000000:api/$default/$connect"
    token = mint_token(SECRET, "User#1", "user")
    allowed = authorize({"methodArn": arn, "queryStringParameters": {"token": token}}, POLICY)
    assert allowed["principalId"] == "User#1"
    assert allowed["policyDocument"]["Statement"][0] == {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": arn}
    assert allowed["context"] == {"sub": "User#1", "role": "user"}
    denied = authorize({"methodArn": arn, "queryStringParameters": {"token": "x"}}, POLICY)
    assert denied["policyDocument"]["Statement"][0]["Effect"] == "Deny"


def test_token_policy_reads_the_secret_from_ssm(monkeypatch):
    from aws_lambda_powertools.utilities import parameters

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        boto3.client("ssm").put_parameter(Name="/jobs/test-secret", Value="from-ssm", Type="SecureString")
        parameters.clear_caches()
        policy = token_policy(AuthSettings.from_env({"JOBS_JWT_SECRET_PARAMETER": "/jobs/test-secret"}))
        parameters.clear_caches()
    assert policy.secret == "from-ssm"
    both = AuthSettings.from_env({"JOBS_JWT_SECRET": "direct", "JOBS_JWT_SECRET_PARAMETER": "/x"})
    assert token_policy(both).secret == "direct"


def test_authorizer_function_then_api_function(template, api, monkeypatch):
    monkeypatch.setenv("JOBS_JWT_SECRET", SECRET)
    authorizer = load_handler(functions(template)["AuthorizerFunction"])

    def call_with(token: str) -> Any:
        verdict = authorizer(http_event({"authorization": f"Bearer {token}"}), None)
        event, route = api.event("GET", "/v1/jobs")
        event["requestContext"]["authorizer"] = {"lambda": verdict["context"]}
        return api.handler_for(route)(event, None)

    assert call_with(mint_token(SECRET, "svc-a", "service"))["statusCode"] == 200
    expired = call_with(mint_token(SECRET, "svc-a", "service", ttl_s=-120))
    assert expired["statusCode"] == 401
    assert json.loads(expired["body"])["error"] == {"code": "unauthorized", "message": "token expired", "details": {}}
    assert call_with(mint_token("wrong-secret-0123456789abcdef0123", "svc-a", "service"))["statusCode"] == 401
