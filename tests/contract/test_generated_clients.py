"""docs/openapi.yaml as a product (issue 18): it lints clean with Redocly and Spectral, and
clients generated from it by well-known generators, at their defaults, drive a job's whole
life against the local cloud: openapi-typescript + openapi-fetch type-checked as strict
TypeScript (no casts, no `any`), and openapi-python-client. The tools are pinned and
installed by `make test` (contract/package-lock.json, .venv-openapi)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import DEADLINE_S, LocalService

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "contract"
BIN = CONTRACT / "node_modules" / ".bin"
SPEC = ROOT / "docs" / "openapi.yaml"
OPENAPI_PYTHON_CLIENT = ROOT / ".venv-openapi" / "bin" / "openapi-python-client"
TOOL_ENV = {**os.environ, "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true", "NO_COLOR": "1"}


def tool(name: str) -> Path:
    path = BIN / name
    assert path.exists(), f"{name} is installed by `make test` (npm ci in contract/)"
    return path


def run(command: list[str | Path], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, timeout=DEADLINE_S * 3, env=env or TOOL_ENV, check=False
    )


def client_env(local: LocalService) -> dict[str, str]:
    return {
        **TOOL_ENV,
        "JOBS_URL": local.http_url,
        "JOBS_SERVICE_TOKEN": local.token("service", "svc-generated"),
        "JOBS_ADMIN_TOKEN": local.token("admin", "admin-generated"),
    }


def test_redocly_recommended_strict_finds_nothing() -> None:
    done = run([tool("redocly"), "lint", SPEC, "--config", CONTRACT / "redocly.yaml", "--format", "json"])
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["totals"] == {"errors": 0, "warnings": 0, "ignored": 0}, report["problems"][:10]


def test_spectral_oas_finds_nothing() -> None:
    done = run([tool("spectral"), "lint", SPEC, "--ruleset", CONTRACT / ".spectral.yaml", "--format", "json", "--quiet"])
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert json.loads(done.stdout or "[]") == []


def test_the_typescript_program_uses_no_escape_hatch() -> None:
    """What makes the check below mean something: the program reads the types as generated."""
    source = (CONTRACT / "typescript" / "life.ts").read_text()
    code = "\n".join(line.split("//")[0] for line in source.splitlines())
    code = re.sub(r'"(?:[^"\\]|\\.)*"|`(?:[^`\\]|\\.)*`', '""', code)  # strings say what they like
    assert not re.search(r"\bany\b|\bas\s+[A-Za-z{(\[]|<[A-Za-z]+>\s*\w|@ts-|!\.", code), "a cast, any or a directive"


def test_a_typescript_client_generated_at_its_defaults_runs_a_job_life(local_service: LocalService) -> None:
    generated = CONTRACT / "typescript" / "generated"
    shutil.rmtree(generated, ignore_errors=True)
    done = run([tool("openapi-typescript"), SPEC, "--output", generated / "schema.d.ts"])
    assert done.returncode == 0, done.stderr[-4000:]
    checked = run([tool("tsc"), "-p", CONTRACT / "typescript" / "tsconfig.json"])
    assert checked.returncode == 0, checked.stdout[-6000:]
    program = CONTRACT / "typescript" / "build" / "life.js"
    ran = subprocess.run(
        ["node", str(program)], capture_output=True, text=True, timeout=DEADLINE_S * 2, env=client_env(local_service), check=False
    )
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-4000:]
    summary = json.loads(ran.stdout.strip().splitlines()[-1])
    assert summary == {"ok": True, "calls": summary["calls"]} and summary["calls"] >= 25


def test_a_python_client_generated_by_openapi_python_client_runs_a_job_life(local_service: LocalService, tmp_path: Path) -> None:
    assert OPENAPI_PYTHON_CLIENT.exists(), "openapi-python-client is installed by `make test` (.venv-openapi)"
    out = tmp_path / "client"
    # Its post-generation hooks (ruff) come from its own venv.
    path = f"{OPENAPI_PYTHON_CLIENT.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    done = run(
        [
            OPENAPI_PYTHON_CLIENT,
            "generate",
            "--path",
            SPEC,
            "--output-path",
            out,
            "--config",
            CONTRACT / "python" / "config.yaml",
        ],
        env={**TOOL_ENV, "PATH": path},
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "Warning" not in done.stdout, done.stdout[-4000:]
    env = {**client_env(local_service), "PYTHONPATH": str(out)}
    ran = subprocess.run(
        [sys.executable, str(CONTRACT / "python" / "life.py")],
        capture_output=True, text=True, timeout=DEADLINE_S * 2, env=env, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-4000:]
    summary = json.loads(ran.stdout.strip().splitlines()[-1])
    assert summary == {"ok": True, "calls": summary["calls"]} and summary["calls"] >= 25
