"""Minting HS256 tokens for a local or test deployment (the service's own secret)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

ROLES = ("service", "user", "admin")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint_token(secret: str, sub: str, role: str, *, ttl_s: int = 3600, queues: list[str] | None = None) -> str:
    """A JWT the service accepts: `sub`, `role`, `iat`, `exp`, signed with HS256; `queues`
    (names, or prefixes ending in `*`) scopes a service token to those queues."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if queues is not None and (role != "service" or not queues):
        raise ValueError("only a service token is scoped, to at least one queue")
    now = int(time.time())
    body: dict[str, object] = {"sub": sub, "role": role, "iat": now, "exp": now + ttl_s}
    if queues is not None:
        body["queues"] = list(queues)
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = _b64(json.dumps(body, separators=(",", ":")).encode())
    signature = hmac.new(secret.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{_b64(signature)}"
