"""Running template functions as Lambda runs them: each in worker processes of its own.

A worker process has exactly the function's environment, its layers importable as under
/opt/python and its code directory as under /var/task, and stays warm between invocations.
Module state is per process, so one function's state is never visible to another's. An
invocation past the function's Timeout kills the worker, as Lambda ends the sandbox.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TextIO

LogSink = Callable[[str, str], None]


@dataclass(frozen=True)
class FunctionConfig:
    """What a worker needs to run one function."""

    name: str
    code_dir: Path
    handler: str  # module.attribute
    layer_dirs: tuple[Path, ...]
    environment: dict[str, str]
    timeout_s: float
    memory_mb: int = 128


@dataclass
class Invocation:
    ok: bool
    payload: Any = None
    error_type: str | None = None
    error_message: str | None = None
    duration_ms: float = 0.0

    @property
    def timed_out(self) -> bool:
        return self.error_type == "Sandbox.Timedout"


class _Context:
    """The Lambda context object, as handlers see it."""

    def __init__(self, config: FunctionConfig, request_id: str, deadline: float) -> None:
        self.function_name = config.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:local:000000000000:function:{config.name}"
        self.memory_limit_in_mb = str(config.memory_mb)
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{config.name}"
        self.log_stream_name = f"local/{os.getpid()}"
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


class _PrefixedStream:
    """Writes whole lines to a stream, each prefixed by the function's name."""

    def __init__(self, prefix: str, target: TextIO | Any) -> None:
        self.prefix = prefix
        self.target = target
        self.buffer = ""

    def write(self, text: str) -> int:
        self.buffer += text
        while "\n" in self.buffer:
            line, self.buffer = self.buffer.split("\n", 1)
            self.target.write(f"{self.prefix} {line}\n")
            self.target.flush()
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        return False


def _worker_main(connection: Connection, config: FunctionConfig) -> None:
    """The worker process: set the stage as Lambda does, then invoke on request."""
    os.environ.clear()
    os.environ.update(config.environment)
    for path in reversed([str(config.code_dir), *(str(p) for p in config.layer_dirs)]):
        sys.path.insert(0, path)
    assert sys.__stdout__ is not None and sys.__stderr__ is not None
    sys.stdout = _PrefixedStream(f"[{config.name}]", sys.__stdout__)
    sys.stderr = _PrefixedStream(f"[{config.name}]", sys.__stderr__)
    handler: Callable[[Any, Any], Any] | None = None
    import importlib
    import json

    while True:
        try:
            message = connection.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if message is None:
            return
        event, request_id, deadline = message
        started = time.perf_counter()
        try:
            if handler is None:
                module_name, _, attribute = config.handler.rpartition(".")
                handler = getattr(importlib.import_module(module_name), attribute)
            result = handler(event, _Context(config, request_id, deadline))
            json.dumps(result)  # Lambda serializes the result; an unserializable one is an error
            reply: tuple[Any, ...] = ("ok", result, (time.perf_counter() - started) * 1000)
        except Exception as error:
            traceback.print_exc()
            reply = ("error", type(error).__name__, str(error), (time.perf_counter() - started) * 1000)
        connection.send(reply)


class _Worker:
    def __init__(self, config: FunctionConfig) -> None:
        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, config), name=f"lambda-{config.name}", daemon=True)
        self.process.start()
        child.close()

    def stop(self) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self.connection.send(None)
        self.process.join(timeout=2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=2)
        self.connection.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.join(timeout=5)
        self.connection.close()


class FunctionRuntime:
    """A pool of warm workers for one function, at most ``max_concurrency`` at a time."""

    def __init__(self, config: FunctionConfig, *, max_concurrency: int = 4) -> None:
        self.config = config
        self.max_concurrency = max_concurrency
        self._idle: list[_Worker] = []
        self._count = 0
        self._closed = False
        self._condition = threading.Condition()

    def _acquire(self) -> _Worker:
        with self._condition:
            while True:
                if self._closed:
                    raise RuntimeError("runtime closed")
                if self._idle:
                    return self._idle.pop()
                if self._count < self.max_concurrency:
                    self._count += 1
                    break
                self._condition.wait()
        try:
            return _Worker(self.config)
        except Exception:
            with self._condition:
                self._count -= 1
                self._condition.notify()
            raise

    def _release(self, worker: _Worker, *, healthy: bool) -> None:
        with self._condition:
            if healthy and not self._closed:
                self._idle.append(worker)
            else:
                self._count -= 1
            self._condition.notify()
        if not healthy:
            worker.kill()

    def invoke(self, event: Any, *, timeout_s: float | None = None) -> Invocation:
        """Invoke once; the function's Timeout (or a shorter caller timeout) is enforced."""
        limit = min(self.config.timeout_s, timeout_s) if timeout_s else self.config.timeout_s
        worker = self._acquire()
        started = time.perf_counter()
        request_id = str(uuid.uuid4())
        try:
            worker.connection.send((event, request_id, time.time() + limit))
            if not worker.connection.poll(limit):
                self._release(worker, healthy=False)
                elapsed = time.perf_counter() - started
                return Invocation(False, None, "Sandbox.Timedout", f"Task timed out after {elapsed:.2f} seconds", elapsed * 1000)
            reply = worker.connection.recv()
        except (EOFError, OSError, BrokenPipeError) as error:
            self._release(worker, healthy=False)
            return Invocation(False, None, "Runtime.ExitError", f"the worker process ended: {error}")
        self._release(worker, healthy=True)
        if reply[0] == "ok":
            return Invocation(True, reply[1], duration_ms=reply[2])
        return Invocation(False, None, reply[1], reply[2], reply[3])

    def close(self) -> None:
        with self._condition:
            self._closed = True
            idle, self._idle = self._idle, []
            self._condition.notify_all()
        for worker in idle:
            worker.stop()
