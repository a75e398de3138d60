"""The Lambda REQUEST authorizer, for the HTTP API and the WebSocket API.

HTTP API: it always allows and says what it found in the context (``sub``, ``role``, or
``auth_error``), so the function answers a bad token with the contract's 401 instead of
API Gateway's own 403 page. WebSocket ``$connect``: a bad token is denied (the upgrade is
refused) since there is no function response to carry an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .auth import TokenPolicy, bearer, encode_queues, verify_token
from .errors import Unauthorized
from .settings import AuthSettings

SECRET_MAX_AGE_S = 300


def token_policy(settings: AuthSettings | None = None) -> TokenPolicy:
    """The secret from JOBS_JWT_SECRET, or the SSM SecureString named by JOBS_JWT_SECRET_PARAMETER."""
    settings = settings or AuthSettings.from_env()
    secret = settings.secret
    if not secret and settings.secret_parameter:
        from aws_lambda_powertools.utilities import parameters

        secret = str(parameters.get_parameter(settings.secret_parameter, decrypt=True, max_age=SECRET_MAX_AGE_S))
    return TokenPolicy(secret=secret, jwks_url=settings.jwks_url, issuer=settings.issuer, audience=settings.audience)


def token_of(event: Mapping[str, Any]) -> str:
    """The bearer token of the Authorization header; for the WebSocket API's $connect (whose
    event carries a methodArn) also `?token=`, since browsers cannot set headers on a
    WebSocket. The HTTP API never reads tokens from URLs: they end up in logs."""
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    token = bearer(headers.get("authorization"))
    if not token and "methodArn" in event:
        token = str((event.get("queryStringParameters") or {}).get("token") or "")
    return token


def authorize(event: Mapping[str, Any], policy: TokenPolicy | None = None) -> dict[str, Any]:
    try:
        principal = verify_token(token_of(event), policy or token_policy())
        context: dict[str, Any] = {"sub": principal.sub, "role": principal.role.value}
        if principal.queues is not None:
            context["queues"] = encode_queues(principal.queues)
        allowed = True
    except Unauthorized as error:
        context = {"auth_error": error.message}
        allowed = False
    if "methodArn" in event:  # WebSocket API: an IAM policy response
        return {
            "principalId": context.get("sub", "anonymous"),
            "policyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {"Action": "execute-api:Invoke", "Effect": "Allow" if allowed else "Deny", "Resource": event["methodArn"]}
                ],
            },
            "context": context,
        }
    return {"isAuthorized": True, "context": context}
