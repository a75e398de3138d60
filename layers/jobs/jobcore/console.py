"""The web console's files: one function serves the page on `GET /` and its assets under
`GET /console/{asset+}`, outside `/v1` and without a token (every call the page makes
carries the caller's own token).

Assets live under a path that names the build (`/console/<hash>/app.js`): the hash of every
file's bytes, so they are cached for a year and a new deployment is fetched at once; the
page itself is never cached. A module's relative imports (`./dom.js`) stay under the same
build. The Content-Security-Policy lets the page run its own scripts and styles only and
talk to its own origin and the WebSocket API; nothing inline runs.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from msgspec import Struct

# Flat names only: no directories, no dot-files, nothing a path could climb out of.
ASSET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\.(html|js|css|svg|png|ico|txt)$")
CONTENT_TYPES = {
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "svg": "image/svg+xml",
    "png": "image/png",
    "ico": "image/x-icon",
    "txt": "text/plain; charset=utf-8",
}
PAGE = "index.html"
BUILD_PLACEHOLDER = "{{build}}"
LIVE_URL_PLACEHOLDER = "{{live_url}}"
LIVE_URL_VARIABLE = "JOBS_CONSOLE_LIVE_URL"
IMMUTABLE = "public, max-age=31536000, immutable"
NEVER_CACHED = "no-cache"  # revalidate every time: the page names the build of its assets
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class Asset(Struct, frozen=True):
    body: bytes
    content_type: str


def content_security_policy(live_url: str) -> str:
    """Own scripts and styles only; fetches to this origin; the socket to the live API."""
    connect = ["'self'"]
    parts = urlsplit(live_url)
    if parts.scheme in ("ws", "wss") and parts.netloc:
        connect.append(f"{parts.scheme}://{parts.netloc}")
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src {' '.join(connect)}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def load_assets(directory: Path) -> dict[str, Asset]:
    assets = {}
    for path in sorted(directory.iterdir()):
        if path.is_file() and ASSET_NAME.match(path.name):
            kind = path.name.rsplit(".", 1)[1]
            assets[path.name] = Asset(path.read_bytes(), CONTENT_TYPES[kind])
    if PAGE not in assets:
        raise FileNotFoundError(f"{directory / PAGE} is missing")
    return assets


def build_of(assets: Mapping[str, Asset]) -> str:
    digest = hashlib.sha256()
    for name in sorted(assets):
        digest.update(name.encode() + b"\0" + assets[name].body + b"\0")
    return digest.hexdigest()[:12]


class Console:
    """Answers the console's routes from a directory of files, read once per container."""

    def __init__(self, directory: Path, environ: Mapping[str, str] | None = None) -> None:
        self.directory = directory
        self.environ = environ
        self._loaded: tuple[dict[str, Asset], str, bytes, str] | None = None

    def _load(self) -> tuple[dict[str, Asset], str, bytes, str]:
        if self._loaded is None:
            env = os.environ if self.environ is None else self.environ
            live_url = env.get(LIVE_URL_VARIABLE, "")
            assets = load_assets(self.directory)
            build = build_of(assets)
            page = (
                assets[PAGE]
                .body.decode("utf-8")
                .replace(BUILD_PLACEHOLDER, build)
                .replace(LIVE_URL_PLACEHOLDER, html.escape(live_url, quote=True))
            )
            self._loaded = (assets, build, page.encode("utf-8"), content_security_policy(live_url))
        return self._loaded

    def answer(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The API Gateway (payload 2.0) response to one request of the console's routes."""
        assets, build, page, policy = self._load()
        headers = {**SECURITY_HEADERS, "Content-Security-Policy": policy}
        if str(event.get("routeKey", "")).split(" ")[-1] == "/" or event.get("rawPath") == "/":
            return _reply(200, page, {**headers, "Content-Type": CONTENT_TYPES["html"], "Cache-Control": NEVER_CACHED})
        requested = str(((event.get("pathParameters") or {}).get("asset")) or "")
        found = _asset_of(requested)
        if found is None or found[1] not in assets or found[1] == PAGE:
            body = {"error": {"code": "not_found", "message": "no such console file", "details": {}}}
            return _reply(404, json.dumps(body).encode(), {**headers, "Content-Type": "application/json"})
        current, name = found
        asset = assets[name]
        # A page of an older build asks for its files once more while it lives: serve today's,
        # uncached, rather than break it.
        cache = IMMUTABLE if current == build else NEVER_CACHED
        return _reply(200, asset.body, {**headers, "Content-Type": asset.content_type, "Cache-Control": cache})


def _asset_of(requested: str) -> tuple[str, str] | None:
    """(build, name) of `<build>/<name>`; None for any other shape."""
    parts = requested.split("/")
    if len(parts) != 2 or not re.fullmatch(r"[0-9a-f]{12}", parts[0]) or not ASSET_NAME.match(parts[1]):
        return None
    return parts[0], parts[1]


def _reply(status: int, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    text_like = headers.get("Content-Type", "").startswith(("text/", "application/json", "image/svg"))
    if text_like:
        return {"statusCode": status, "headers": headers, "body": body.decode("utf-8"), "isBase64Encoded": False}
    return {"statusCode": status, "headers": headers, "body": base64.b64encode(body).decode(), "isBase64Encoded": True}
