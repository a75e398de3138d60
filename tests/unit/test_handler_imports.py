"""Each handler imports only what its route needs: the engine's families and the live parts
are imported on a container's first use (jobcore/engine/__init__.py, jobcore/wiring.py), so
a cold start pays for those its route calls. bench/cold_start.py times it; this test fails
when a top-level import brings the rest back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from localcloud.functions import functions
from localcloud.template import load_template

ROOT = Path(__file__).resolve().parents[2]
FAMILIES = {f"jobcore.engine.{name}" for name in ("creating", "leasing", "progress", "listing", "admin", "batch", "queues",
                                                   "recovery", "counting", "message_log", "schedules")}  # fmt: skip
LIVE = {"jobcore.live.delivery", "jobcore.live.subscriptions"}

LOADED = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("handler_module", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(sorted(name for name in sys.modules if name.startswith(("jobcore", "aws_lambda_powertools.utilities")))))
"""


def loaded_by(path: Path) -> set[str]:
    done = subprocess.run([sys.executable, "-c", LOADED, str(path)], capture_output=True, text=True, check=True, cwd=ROOT,
                          timeout=120)  # fmt: skip
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


SPECS = sorted(functions(load_template()).values(), key=lambda spec: spec.logical_id)


@pytest.mark.parametrize("spec", SPECS, ids=[spec.logical_id for spec in SPECS])
def test_a_handler_imports_no_engine_family_and_no_live_part_it_has_not_used(spec):
    loaded = loaded_by(spec.module_path)
    assert not loaded & FAMILIES, f"{spec.logical_id} imports {sorted(loaded & FAMILIES)} before its first call"
    websocket = "jobcore.websocket" in loaded
    # The WebSocket routes work on subscriptions from their first line; nothing else needs them.
    assert loaded & LIVE <= ({"jobcore.live.subscriptions"} if websocket else set()), spec.logical_id
    # Not even the stream consumers take powertools' batch utility (asyncio and more, ~35 ms).
    assert "aws_lambda_powertools.utilities.batch" not in loaded, spec.logical_id


def test_the_first_call_imports_the_family_its_route_uses():
    """The other half: the families still arrive when used, through the engine's properties."""
    probe = (
        "import random, sys\n"
        "from jobcore.engine import Engine\n"
        "from jobcore.settings import Settings\n"
        "engine = Engine(None, Settings(table_name='t'), rng=random.Random(1))\n"
        "assert 'jobcore.engine.listing' not in sys.modules\n"
        "engine.listing\n"
        "assert 'jobcore.engine.listing' in sys.modules and 'jobcore.engine.batch' not in sys.modules\n"
        "assert engine.listing is engine.listing\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, cwd=ROOT, timeout=120)
