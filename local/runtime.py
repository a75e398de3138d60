"""Running template functions as Lambda runs them: each in worker processes of its own.

A worker process has exactly the function's environment, its layers importable as under
/opt/python and its code directory as under /var/task, and stays warm between invocations.
Module state is per process, so one function's state is never visible to another's. An
invocation past the function's Timeout kills the worker, as Lambda ends the sandbox.

What a function prints goes to the terminal as it is printed (``echo_logs``), or is kept
with its invocation's result, for the caller to show only when the invocation failed.
No worker outlives the runtime: ``close()`` ends busy ones too, and a worker whose parent
is gone (killed without a chance to clean up) ends itself within a second.
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
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TextIO, cast

from .iam import Policy, denial_error, first_denied, requests_of

LogSink = Callable[[str, str], None]
PARENT_CHECK_S = 0.5


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
    # True: print the function's lines as they come; False: return them with each result.
    echo_logs: bool = True
    # The role's policy: an SDK call it does not allow fails as in AWS. None: not enforced.
    policy: Policy | None = None


@dataclass
class Invocation:
    ok: bool
    payload: Any = None
    error_type: str | None = None
    error_message: str | None = None
    duration_ms: float = 0.0
    logs: list[str] = field(default_factory=list)

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
    """Writes whole lines, each prefixed by the function's name, to a stream or, when
    ``kept`` is a list, into it (returned with the invocation's result)."""

    def __init__(self, prefix: str, target: TextIO | Any, kept: list[str] | None = None) -> None:
        self.prefix = prefix
        self.target = target
        self.kept = kept
        self.buffer = ""

    def write(self, text: str) -> int:
        self.buffer += text
        while "\n" in self.buffer:
            line, self.buffer = self.buffer.split("\n", 1)
            if self.kept is not None:
                self.kept.append(f"{self.prefix} {line}")
            else:
                self.target.write(f"{self.prefix} {line}\n")
                self.target.flush()
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        return False


def _exit_with_parent(parent: int) -> None:
    """End this worker once its parent is gone (reparented), however the parent ended."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _enforce_policy(function_name: str, policy: Policy) -> None:
    """Make every botocore call of this process check the policy first, and fail as AWS
    does (AccessDeniedException, before anything is sent) when it does not allow it."""
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    original = BaseClient._make_api_call  # type: ignore[attr-defined]  # private: not in the stubs

    def checked(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        service = self.meta.service_model.service_name
        api = policy.connections_api(self.meta.endpoint_url) if service == "apigatewaymanagementapi" else ("", "")
        denied = first_denied(policy, requests_of(service, operation_name, api_params, connections_api=api))
        if denied is not None:
            response = denial_error(service, function_name, policy, *denied)
            # The modeled exception class of the code when the service has one, as botocore raises.
            error_class = cast("type[ClientError]", self.exceptions.from_code(response["Error"]["Code"]))
            raise error_class(response, operation_name)  # type: ignore[arg-type]
        return original(self, operation_name, api_params)

    setattr(BaseClient, "_make_api_call", checked)  # noqa: B010 (mypy: no assigning to a method)


def _worker_main(connection: Connection, config: FunctionConfig, parent: int) -> None:
    """The worker process: set the stage as Lambda does, then invoke on request."""
    _exit_with_parent(parent)
    os.environ.clear()
    os.environ.update(config.environment)
    for path in reversed([str(config.code_dir), *(str(p) for p in config.layer_dirs)]):
        sys.path.insert(0, path)
    assert sys.__stdout__ is not None and sys.__stderr__ is not None
    kept: list[str] | None = None if config.echo_logs else []
    sys.stdout = _PrefixedStream(f"[{config.name}]", sys.__stdout__, kept)
    sys.stderr = _PrefixedStream(f"[{config.name}]", sys.__stderr__, kept)
    if config.policy is not None:
        _enforce_policy(config.name, config.policy)
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
        logs: list[str] = []
        if kept is not None:
            logs, kept[:] = list(kept), []
        connection.send((*reply, logs))


class _Worker:
    def __init__(self, config: FunctionConfig) -> None:
        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process = context.Process(
            target=_worker_main, args=(child, config, os.getpid()), name=f"lambda-{config.name}", daemon=True
        )
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
        with contextlib.suppress(OSError):
            self.connection.close()


class FunctionRuntime:
    """A pool of warm workers for one function, at most ``max_concurrency`` at a time."""

    def __init__(self, config: FunctionConfig, *, max_concurrency: int = 4) -> None:
        self.config = config
        self.max_concurrency = max_concurrency
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()  # idle and busy: close() ends every one
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
            worker = _Worker(self.config)
        except Exception:
            with self._condition:
                self._count -= 1
                self._condition.notify()
            raise
        with self._condition:
            self._all.add(worker)
            closed = self._closed
        if closed:  # close() ran while it started: it must not outlive the runtime
            self._release(worker, healthy=False)
            raise RuntimeError("runtime closed")
        return worker

    def _release(self, worker: _Worker, *, healthy: bool) -> None:
        with self._condition:
            keep = healthy and not self._closed
            if keep:
                self._idle.append(worker)
            else:
                self._count -= 1
                self._all.discard(worker)
            self._condition.notify()
        if not keep:
            worker.kill()

    def invoke(self, event: Any, *, timeout_s: float | None = None) -> Invocation:
        """Invoke once; the function's Timeout (or a shorter caller timeout) is enforced."""
        limit = min(self.config.timeout_s, timeout_s) if timeout_s else self.config.timeout_s
        try:
            worker = self._acquire()
        except RuntimeError as error:  # closed: the local cloud is stopping
            return Invocation(False, None, "Runtime.Closed", str(error))
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
            return Invocation(True, reply[1], duration_ms=reply[2], logs=reply[3])
        return Invocation(False, None, reply[1], reply[2], reply[3], logs=reply[4])

    def close(self, *, grace_s: float = 2.0) -> None:
        """Stop idle workers; give busy ones ``grace_s`` to finish, then kill them."""
        with self._condition:
            self._closed = True
            idle, self._idle = self._idle, []
            self._condition.notify_all()
        for worker in idle:
            worker.stop()
        deadline = time.monotonic() + grace_s
        with self._condition:
            while self._count > len(idle) and time.monotonic() < deadline:
                self._condition.wait(timeout=max(0.0, deadline - time.monotonic()))
            busy = [w for w in self._all if w not in idle]
            self._all.clear()
        for worker in busy:
            worker.kill()


def stop_resource_tracker() -> None:
    """Stop multiprocessing's resource tracker: spawning a worker starts it, and it would
    otherwise end only after this process has (a moment after Ctrl-C, with parent 1)."""
    from multiprocessing import resource_tracker

    stop = getattr(resource_tracker._resource_tracker, "_stop", None)
    if callable(stop):
        stop()
