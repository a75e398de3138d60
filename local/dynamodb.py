"""Embedded DynamoDB: moto's server in this process, with one lock around every request.

moto's update_item takes no lock, so two concurrent conditional updates can both win;
DynamoDB serializes writes per item. One lock around each request restores that (measured:
600/600 races clean, see DESIGN.md).
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

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


class EmbeddedDynamoDB:
    """Serves DynamoDB (and moto's other services) on 127.0.0.1; stop() ends it."""

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        import logging

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
        app = _LockedApp(DomainDispatcherApplication(create_backend_app))
        self._server = make_server("127.0.0.1", self._port, app, threaded=True, request_handler=MotoRequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedded-dynamodb", daemon=True)
        self._thread.start()
        self.reset()
        return self.endpoint_url

    def reset(self) -> None:
        """Forget every table: moto keeps its state per process, not per server."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

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
