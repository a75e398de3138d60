"""A handler's import as a new Lambda container makes it, measured in a fresh interpreter:
CPU time, and the pages it touched (minor page faults, which come out the same run after run).
Shared by bench/cold_start.py (both, against the baseline) and tests/unit/test_handler_pages.py
(the pages alone)."""

from __future__ import annotations

import compileall
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[2]

BASELINE = "import boto3\nfrom aws_lambda_powertools import Logger\nLogger()"
_HANDLER = """
import importlib
import importlib.util
spec = importlib.util.spec_from_file_location("handler_module", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
assert callable(module.{attribute})
for name in {first_call!r}:
    importlib.import_module(name)
"""
# CPU time of the importing process: what a cold start spends, less the noise of other
# processes competing for this machine's two cores; and the pages it touched.
_MEASURED = """
import resource
import time
_pages = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
_start = time.process_time()
{code}
print(time.process_time() - _start, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - _pages)
"""

# What a function has in Lambda that matters for imports: its environment, and no X-Ray
# daemon address unless tracing is really on.
ENV = {
    **os.environ,
    "AWS_DEFAULT_REGION": "us-east-1",
    "JOBS_TABLE_NAME": "jobs",
    "POWERTOOLS_SERVICE_NAME": "jobs",
    "POWERTOOLS_METRICS_NAMESPACE": "Jobs",
    # Every module is loaded from bytecode compiled before the measurements (compile_bytecode),
    # as the layer ships it; nothing is written while measuring.
    "PYTHONDONTWRITEBYTECODE": "1",
}


class Sample(NamedTuple):
    cpu_s: float
    pages: int  # minor page faults: the memory it touched, the same run after run


def handler_code(path: Path, attribute: str, first_call: Sequence[str] = ()) -> str:
    """Load a handler's module from its file, as Lambda does, then what its first call imports."""
    return _HANDLER.format(path=str(path), attribute=attribute, first_call=list(first_call))


def compile_bytecode(tree: Path = ROOT) -> None:
    """jobcore and the handlers as bytecode, as Lambda loads them from the layer (its build,
    layers/jobs/Makefile, compiles them ahead): a measurement that compiled a module from
    source would time the compiler, not the import. The venv's packages were compiled by pip."""
    for folder in (tree / "layers" / "jobs" / "jobcore", tree / "functions"):
        if not compileall.compile_dir(folder, quiet=1):
            raise RuntimeError(f"could not compile {folder}")


def measure(code: str) -> Sample:
    result = subprocess.run([sys.executable, "-c", _MEASURED.format(code=code)], capture_output=True, text=True,
                            check=True, env=ENV, cwd=ROOT, timeout=120)  # fmt: skip
    cpu_s, pages = result.stdout.strip().splitlines()[-1].split()
    return Sample(float(cpu_s), int(pages))


def valgrind() -> str | None:
    return shutil.which("valgrind")


def count_instructions(code: str, pythonpath: str | None = None) -> int:
    """The instructions a fresh interpreter runs for `code`, counted by valgrind's callgrind:
    unlike CPU time, the same to a few hundred in 700 million run after run, however loaded the
    machine (the hash seed is fixed: it decides how dicts and sets iterate). `pythonpath` puts
    another tree's packages first (bench/cold_start.py counts an earlier commit's handlers)."""
    tool = valgrind()
    if tool is None:
        raise RuntimeError("valgrind is not installed")
    env = {**ENV, "PYTHONHASHSEED": "0"} | ({"PYTHONPATH": pythonpath} if pythonpath else {})
    with tempfile.TemporaryDirectory() as folder:
        result = subprocess.run([tool, "--tool=callgrind", f"--callgrind-out-file={folder}/out", sys.executable, "-c", code],
                                capture_output=True, text=True, check=True, env=env, cwd=ROOT, timeout=600)  # fmt: skip
    collected = re.search(r"Collected : (\d+)", result.stderr)
    if collected is None:
        raise RuntimeError(f"callgrind printed no count: {result.stderr[-500:]}")
    return int(collected.group(1))
