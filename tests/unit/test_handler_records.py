"""jobcore's records are msgspec Structs, not dataclasses.

A dataclass compiles its methods from source when its module is imported: about 3.9 million
instructions for a frozen one of five fields, against 0.16 million for a Struct (callgrind).
A route loaded 29-45 of them, most of what its cold start cost beyond the baseline
(docs/benchmarks.md "cold-start"). This holds the line: no jobcore module creates one."""

from __future__ import annotations

import json
import subprocess
import sys

import msgspec
import pytest

from jobcore.live.subscriptions import Subscriber
from jobcore.model import Job
from jobcore.settings import Limits, Settings

# Imports every jobcore module in a fresh interpreter with `dataclasses.dataclass` counting
# the classes it is applied to (a module binds the decorator when it imports it).
_COUNT_DATACLASSES = """
import dataclasses, importlib, json, pkgutil
made = []
original = dataclasses.dataclass
def counting(cls=None, /, **options):
    def wrap(target):
        made.append(f"{target.__module__}.{target.__qualname__}")
        return original(target, **options)
    return wrap if cls is None else wrap(cls)
dataclasses.dataclass = counting
import jobcore
modules = [info.name for info in pkgutil.walk_packages(jobcore.__path__, "jobcore.")]
for name in modules:
    importlib.import_module(name)
print(json.dumps({"modules": modules, "dataclasses": [m for m in made if m.startswith("jobcore.")]}))
"""


def test_no_jobcore_module_creates_a_dataclass() -> None:
    result = subprocess.run([sys.executable, "-c", _COUNT_DATACLASSES], capture_output=True, text=True, check=True,
                            timeout=120)  # fmt: skip
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(found["modules"]) >= 40  # every module was imported: the walk found the tree
    assert found["dataclasses"] == []


def test_records_keep_what_the_dataclasses_gave() -> None:
    """Equality by value and type, frozen records, and the replace that tests and bench use."""
    limits = Limits()
    assert limits == Limits() and hash(limits) == hash(Limits())
    assert Limits(params_bytes=1) != limits
    with pytest.raises(AttributeError):
        limits.params_bytes = 1  # type: ignore[misc]
    settings = Settings("jobs")
    changed = msgspec.structs.replace(settings, claim_candidates=2)
    assert (changed.claim_candidates, changed.table_name, settings.claim_candidates) == (2, "jobs", 16)
    assert "claim_candidates=16" in repr(settings)
    # Job.from_item and the stream index's projection read the fields from the record's class.
    assert "lease_token" in Job.__struct_fields__ and "expires_at" in Subscriber.__struct_fields__
