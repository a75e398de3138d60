"""The console's function: its page, its files under their build, its headers, and its one
parser (the asset path) against any input."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from jobcore.console import ASSET_NAME, IMMUTABLE, NEVER_CACHED, Console, build_of, content_security_policy, load_assets

ASSETS = Path(__file__).resolve().parents[2] / "functions" / "console" / "assets"
LIVE_URL = "wss://abc123.execute-api.eu-west-1.amazonaws.com/live"
CONSOLE = Console(ASSETS, {"JOBS_CONSOLE_LIVE_URL": LIVE_URL})
BUILD = build_of(load_assets(ASSETS))


def page_event() -> dict[str, Any]:
    return {"routeKey": "GET /", "rawPath": "/"}


def asset_event(asset: str) -> dict[str, Any]:
    return {"routeKey": "GET /console/{asset+}", "rawPath": f"/console/{asset}", "pathParameters": {"asset": asset}}


def test_the_page_names_its_build_and_the_live_url_and_is_never_cached():
    answer = CONSOLE.answer(page_event())
    assert answer["statusCode"] == 200
    headers = answer["headers"]
    assert headers["Content-Type"] == "text/html; charset=utf-8" and headers["Cache-Control"] == NEVER_CACHED
    assert f'<meta name="jobs-live-url" content="{LIVE_URL}">' in answer["body"]
    assert f'src="/console/{BUILD}/app.js"' in answer["body"] and "{{" not in answer["body"]
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"


def test_the_policy_allows_own_scripts_and_the_socket_only():
    policy = CONSOLE.answer(page_event())["headers"]["Content-Security-Policy"]
    directives = dict(part.split(" ", 1) for part in policy.split("; "))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self' wss://abc123.execute-api.eu-west-1.amazonaws.com"
    assert directives["frame-ancestors"] == directives["base-uri"] == "'none'"
    assert "unsafe" not in policy
    # A live URL that is not a socket's adds nothing.
    assert "connect-src 'self';" in content_security_policy("javascript:alert(1)")


def test_a_hostile_live_url_is_escaped_in_the_page():
    hostile = Console(ASSETS, {"JOBS_CONSOLE_LIVE_URL": 'x"><script>alert(1)</script>'})
    body = hostile.answer(page_event())["body"]
    assert "<script>alert(1)" not in body and "&quot;&gt;&lt;script&gt;" in body


def test_files_of_this_build_are_cached_for_a_year_and_of_another_revalidated():
    for name, kind in (("app.js", "text/javascript"), ("console.css", "text/css"), ("favicon.svg", "image/svg+xml")):
        answer = CONSOLE.answer(asset_event(f"{BUILD}/{name}"))
        assert answer["statusCode"] == 200 and answer["headers"]["Content-Type"].startswith(kind)
        assert answer["headers"]["Cache-Control"] == IMMUTABLE
        assert answer["body"] == (ASSETS / name).read_text()
    older = CONSOLE.answer(asset_event("0123456789ab/app.js"))
    assert older["statusCode"] == 200 and older["headers"]["Cache-Control"] == NEVER_CACHED


def test_anything_else_is_a_404_in_the_contracts_shape():
    for asset in ("app.js", f"{BUILD}/index.html", f"{BUILD}/../template.yaml", f"{BUILD}/nothing.js",
                  f"{BUILD}/.env", f"{BUILD}/sub/app.js", f"{BUILD.upper()}/app.js", ""):  # fmt: skip
        answer = CONSOLE.answer(asset_event(asset))
        assert answer["statusCode"] == 404, asset
        assert '"code": "not_found"' in answer["body"]


def test_the_build_changes_with_any_file(tmp_path):
    for source in ASSETS.iterdir():
        (tmp_path / source.name).write_bytes(source.read_bytes())
    before = build_of(load_assets(tmp_path))
    assert before == BUILD
    (tmp_path / "console.css").write_text((ASSETS / "console.css").read_text() + "\n/* changed */\n")
    assert build_of(load_assets(tmp_path)) != before


@given(st.text(max_size=200))
def test_any_asset_path_is_a_file_of_the_console_or_a_404(asset):
    answer = CONSOLE.answer(asset_event(asset))
    assert answer["statusCode"] in (200, 404)
    if answer["statusCode"] == 200:
        build, name = asset.split("/")
        assert (ASSETS / name).is_file() and name != "index.html" and len(build) == 12


@given(
    st.sampled_from(sorted(p.name for p in ASSETS.iterdir() if p.name != "index.html")),
    st.from_regex(r"[0-9a-f]{12}", fullmatch=True),
)
def test_every_file_is_served_under_any_build_name(name, build):
    assert CONSOLE.answer(asset_event(f"{build}/{name}"))["statusCode"] == 200


def test_every_file_is_servable_and_every_import_and_link_names_one():
    names = {path.name for path in ASSETS.iterdir()}
    assert all(ASSET_NAME.match(name) for name in names), "a file the function would never serve"
    for script in ASSETS.glob("*.js"):
        for imported in re.findall(r'from "\./([^"]+)"', script.read_text()):
            assert imported in names, f"{script.name} imports {imported}"
    page = (ASSETS / "index.html").read_text()
    linked = re.findall(r"/console/\{\{build\}\}/([^\"]+)", page)
    assert set(linked) == {"app.js", "console.css", "favicon.svg"} and set(linked) <= names


def test_no_script_builds_markup_from_strings():
    """Every job field is rendered as text: nothing parses a string as HTML or code."""
    forbidden = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setAttribute\(\"on")
    for script in ASSETS.glob("*.js"):
        assert not forbidden.search(script.read_text()), script.name
    assert "<script>" not in (ASSETS / "index.html").read_text(), "no inline script: the policy forbids it"
