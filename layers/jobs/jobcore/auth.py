"""Tokens: checking the JWTs callers present, and minting local ones.

HS256 with a shared secret (in AWS from an SSM SecureString, locally from
JOBS_JWT_SECRET), or RS256 against an identity provider's JWKS. PyJWT is imported here
only, so no other function pays for it at cold start.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from msgspec import Struct

from .errors import Unauthorized
from .model import Principal, Role

LEEWAY_S = 30
MAX_SCOPED_QUEUES = 50
# A queue name (the contract's `type`), or a prefix of one followed by "*".
QUEUE_PATTERN = re.compile(r"[A-Za-z0-9_.:@+=-]{1,256}|[A-Za-z0-9_.:@+=-]{0,255}\*")


class TokenPolicy(Struct, frozen=True):
    """How tokens are checked: a shared secret, a JWKS URL, or both."""

    secret: str | None = None
    jwks_url: str | None = None
    issuer: str | None = None
    audience: str | None = None


def _jwks_client(url: str) -> Any:
    import jwt

    cached = _JWKS_CLIENTS.get(url)
    if cached is None:
        cached = _JWKS_CLIENTS[url] = jwt.PyJWKClient(url, cache_keys=True, lifespan=3600, timeout=5)
    return cached


_JWKS_CLIENTS: dict[str, Any] = {}


def verify_token(token: str, policy: TokenPolicy) -> Principal:
    """The principal a token names; Unauthorized if it is missing, malformed, expired or badly signed."""
    import jwt

    if not token:
        raise Unauthorized("missing bearer token")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise Unauthorized("malformed token") from error
    algorithm = header.get("alg")
    try:
        if algorithm == "HS256" and policy.secret:
            key: Any = policy.secret
        elif algorithm == "RS256" and policy.jwks_url:
            key = _jwks_client(policy.jwks_url).get_signing_key_from_jwt(token).key
        else:
            raise Unauthorized(f"tokens signed with {algorithm!r} are not accepted")
        claims = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            options={"require": ["exp", "sub"]},
            leeway=LEEWAY_S,
            issuer=policy.issuer,
            audience=policy.audience,
        )
    except jwt.ExpiredSignatureError as error:
        raise Unauthorized("token expired") from error
    except jwt.PyJWTError as error:
        raise Unauthorized("invalid token") from error
    sub, role = claims.get("sub"), claims.get("role")
    if not isinstance(sub, str) or not sub or len(sub) > 256:
        raise Unauthorized("token has no valid sub claim")
    try:
        checked = Role(str(role))
    except ValueError as error:
        raise Unauthorized("token role must be service, user or admin") from error
    queues = queues_claim(claims.get("queues", None), checked) if "queues" in claims else None
    return Principal(sub, checked, queues)


def queues_claim(value: Any, role: Role) -> tuple[str, ...]:
    """A service token's `queues`: 1-50 queue names, each exact or a prefix ending in `*`.
    Anything else makes the token invalid: a scope that cannot be read must not widen to
    every queue."""
    if role is not Role.SERVICE:
        raise Unauthorized("only service tokens may carry a queues claim")
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_SCOPED_QUEUES:
        raise Unauthorized(f"the queues claim must be a list of 1 to {MAX_SCOPED_QUEUES} queue names")
    for name in value:
        if not isinstance(name, str) or not QUEUE_PATTERN.fullmatch(name):
            raise Unauthorized("each of the queues claim's names is a queue name, or a prefix ending in *")
    return tuple(value)


def encode_queues(queues: tuple[str, ...] | None) -> str:
    """The queues claim as an authorizer passes it on (context values are strings)."""
    return "" if queues is None else json.dumps(list(queues), separators=(",", ":"))


def decode_queues(text: Any) -> tuple[str, ...] | None:
    """What encode_queues wrote; anything else is no valid principal."""
    if text in (None, ""):
        return None
    try:
        value = json.loads(str(text))
    except ValueError:
        raise Unauthorized("the request carries a damaged queues scope") from None
    return queues_claim(value, Role.SERVICE)


def mint_token(secret: str, sub: str, role: Role | str, *, ttl_s: int = 3600, now: float | None = None,
               queues: list[str] | tuple[str, ...] | None = None) -> str:  # fmt: skip
    """An HS256 token for local use and tests; `queues` scopes a service token."""
    import jwt

    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {"sub": sub, "role": Role(role).value, "iat": issued, "exp": issued + ttl_s}
    if queues is not None:
        claims["queues"] = list(queues_claim(list(queues), Role(role)))
    return str(jwt.encode(claims, secret, algorithm="HS256"))


def bearer(header_value: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header, or ""."""
    if not header_value:
        return ""
    scheme, _, token = header_value.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""
