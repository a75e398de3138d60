"""The client stands on its own: it imports nothing of the server side, and it builds as a
wheel whose only requirements are the ones it declares."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "client"


def declared() -> dict[str, str]:
    """Import name -> requirement, for each dependency in client/pyproject.toml."""
    requirements = tomllib.loads((CLIENT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {r.split("==")[0].split("[")[0]: r for r in requirements}


def test_the_client_imports_only_the_standard_library_itself_and_its_declared_dependencies():
    allowed = set(sys.stdlib_module_names) | {"jobs_client"} | set(declared())
    for path in (CLIENT / "jobs_client").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


def test_the_client_builds_a_wheel_that_requires_only_what_it_declares(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), str(CLIENT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("jobs_client-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert {"jobs_client/client.py", "jobs_client/worker.py", "jobs_client/cli.py", "jobs_client/py.typed"} <= set(names)
    requires = sorted(line.split(": ", 1)[1] for line in metadata.splitlines() if line.startswith("Requires-Dist: "))
    assert requires == sorted(declared().values())
    assert "jobs = jobs_client.cli:main" in entry_points
