"""Embedded DynamoDB: moto's server in this process, with one lock around every request.

moto's update_item takes no lock, so two concurrent conditional updates can both win;
DynamoDB serializes writes per item. One lock around each request restores that (measured:
600/600 races clean). moto runs with the fixes of `dynamodb_fixes.py`, so that memory and
the time of a request stay flat however long it runs and however large its tables grow.
"""

from __future__ import annotations

import os
import threading
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from . import dynamodb_fixes

# DynamoDB keeps stream records 24 hours; the local pollers read them within milliseconds.
STREAM_RETENTION_S = float(os.environ.get("JOBS_LOCAL_STREAM_RETENTION_S", "60"))

StartResponse = Callable[..., Any]


class _LockedApp:
    """Runs each WSGI request, body included, under one lock."""

    def __init__(self, app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        with self.lock:
            result = self.app(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close:
                    close()


class _RequestHandler(MotoRequestHandler):
    # A response goes out in two writes (headers, then body): without TCP_NODELAY the second
    # waits for the client's delayed ACK of the first.
    disable_nagle_algorithm = True


class EmbeddedDynamoDB:
    """Serves DynamoDB (and moto's other services) on 127.0.0.1; stop() ends it."""

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._app: _LockedApp | None = None

    def start(self) -> str:
        import logging

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
        dynamodb_fixes.install(stream_retention_s=STREAM_RETENTION_S)
        app = self._app = _LockedApp(DomainDispatcherApplication(create_backend_app))
        self._server = make_server("127.0.0.1", self._port, app, threaded=True, request_handler=_RequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedded-dynamodb", daemon=True)
        self._thread.start()
        self.reset()
        return self.endpoint_url

    def reset(self) -> None:
        """Forget every table: moto keeps its state per process, not per server."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Between requests: what a request changes is not half-done."""
        assert self._app is not None, "start() first"
        with self._app.lock:
            yield

    def expired_keys(self, table_name: str, now_s: int) -> list[dict[str, Any]]:
        """Keys (DynamoDB JSON) of items whose TTL attribute is at or before now_s, from the
        table's TTL index: the TTL sweeper needs no Scan."""
        with self._locked():
            table = next((t for t in dynamodb_fixes.tables() if t.name == table_name), None)
            return dynamodb_fixes.expired_keys(table, now_s) if table is not None else []

    def changes(self, table_name: str) -> int:
        """Moves whenever the table is written: a snapshot of an unchanged table is skipped."""
        with self._locked():
            table = next((t for t in dynamodb_fixes.tables() if t.name == table_name), None)
            return dynamodb_fixes.changes(table) if table is not None else -1

    @property
    def endpoint_url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        if self._server is not None:
            self.reset()
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None
