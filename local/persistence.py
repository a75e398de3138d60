"""Keeping the embedded tables across restarts (JOBS_DATA_DIR).

At start, each table's items are loaded from `<data dir>/<table>.json` before any stream
poller opens its iterator, so a restore emits no stream records (as a restore in AWS
does not). A snapshot of every table is written every few seconds and at a clean stop,
each to a temporary file renamed over the old one, so a file is never half-written.
A crash loses what changed since the last snapshot (at most SNAPSHOT_INTERVAL_S).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .template import tables

if TYPE_CHECKING:
    from .config import Stage

SNAPSHOT_INTERVAL_S = float(os.environ.get("JOBS_LOCAL_SNAPSHOT_S", "5"))


def _path(directory: Path, table_name: str) -> Path:
    return directory / f"{table_name}.json"


def load(stage: Stage, directory: Path) -> int:
    """Put back every item of the last snapshot; returns how many."""
    client = stage.client("dynamodb")
    loaded = 0
    for logical_id in tables(stage.template):
        table_name = stage.table_names[logical_id]
        path = _path(directory, table_name)
        if not path.exists():
            continue
        items: list[dict[str, Any]] = json.loads(path.read_text())
        for start in range(0, len(items), 25):
            request: Any = {table_name: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
            while request:
                request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or None
        loaded += len(items)
    return loaded


def snapshot(stage: Stage, directory: Path, seen: dict[str, int] | None = None) -> None:
    """Write each table that changed since the last snapshot (``seen``: its change counter)."""
    client = stage.client("dynamodb")
    directory.mkdir(parents=True, exist_ok=True)
    for logical_id in tables(stage.template):
        table_name = stage.table_names[logical_id]
        changes = stage.moto.changes(table_name) if stage.moto is not None else -1
        if seen is not None and changes >= 0 and seen.get(table_name) == changes:
            continue
        items: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while True:
            page = client.scan(TableName=table_name, **({"ExclusiveStartKey": start} if start else {}))
            items += page.get("Items", [])
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        target = _path(directory, table_name)
        temporary = target.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(items))
        temporary.replace(target)
        if seen is not None:
            seen[table_name] = changes


def start_persistence(stage: Stage, directory: Path) -> Callable[[], None]:
    """Load the last snapshot, then keep taking them; returns the stopper (a last snapshot)."""
    count = load(stage, directory)
    stage.log(f"[data] {count} item(s) loaded from {directory}")
    stop = threading.Event()
    seen: dict[str, int] = {}

    def keep_snapshotting() -> None:
        while not stop.wait(SNAPSHOT_INTERVAL_S):
            try:
                snapshot(stage, directory, seen)
            except Exception as error:  # keep trying: the next one may succeed
                stage.log(f"[data] snapshot failed: {error}")

    thread = threading.Thread(target=keep_snapshotting, name="snapshots", daemon=True)
    thread.start()

    def stopper() -> None:
        stop.set()
        thread.join(timeout=10)
        snapshot(stage, directory)
        stage.log(f"[data] saved to {directory}")

    return stopper
