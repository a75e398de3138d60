"""The worker runtime: claim jobs of one queue, run a handler on each, keep the lease alive,
and report the outcome.

- Idle, it waits for work on the WebSocket when it knows its URL (`ws_url`, or the
  `JOBS_WS_URL` environment variable): a notice of claimable work wakes the idle slots, which
  claim at once, and they also claim every `safety_poll_s` for work no notice announces (a
  lease that ran out). Without a WebSocket, or while it is down, the slots long-poll
  (`wait_ms`). Waiting on the socket costs connection-minutes instead of a Lambda held for
  every long poll: `waker.py`, and docs/benchmarks.md "cost".
- Each of `concurrency` slots claims, runs the handler in its thread, then
  completes the job with the handler's return value, or fails it: an ordinary exception is
  retried by the service (with its backoff), a `NonRetryableError` ends the job in `error`.
- With `max_jobs` above 1, an idle slot claims up to min(`max_jobs`, free slots) jobs at once,
  runs the first and hands the others to idle slots: the jobs held (claimed and not yet
  settled) plus those asked for by claims in flight never exceed `concurrency`, so every
  leased job starts at once and none waits unattended while its lease runs down.
- A heartbeat extends the lease every third of `lease_ms`, unless the handler reported
  progress in that time (`JobContext.report` is a status post that extends the lease in the
  same write). When an extend or a report answers `cancel_requested`, or says the lease is
  lost, the handler is told to stop (`ctx.stopping`, `ctx.check()`, `ctx.sleep()`).
- A handler that runs past `max_run_s` is given up: its heartbeat stops, so its lease
  expires and another worker retries the job; a fresh slot takes its place. Only the
  handler's run counts: once it has returned, a slow report of its outcome is not an overrun.
- SIGTERM or SIGINT (or `stop()`): no new claims; jobs claimed but not started are aborted at
  once; running handlers get `shutdown_grace_s` to finish, then are told to stop, and the
  leases still held are aborted (their jobs are claimable again at once).
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .client import JobsClient
from .errors import AlreadyFinished, ApiError, JobsClientError, LeaseLost, NotFound, NotRunning
from .models import Job, Progress, Speed
from .waker import WorkWaker

logger = logging.getLogger("jobs_client.worker")

# A worker serves at most this many queues (POST /v1/claim's `types`).
MAX_QUEUES = 10
# One claim leases at most this many jobs (the claim's `max_jobs`).
MAX_JOBS = 10
# Answers that mean this worker no longer holds the lease.
_LEASE_GONE = (LeaseLost, NotRunning, AlreadyFinished, NotFound)


class NonRetryableError(Exception):
    """Raise from a handler to end the job in `error` without a retry."""

    def __init__(self, message: str, *, code: str = "non_retryable") -> None:
        super().__init__(message)
        self.code = code


class JobStopped(Exception):
    """Raised by `JobContext.check()` / `sleep()` once the job must stop."""


@dataclass
class WorkerStats:
    claimed: int = 0
    completed: int = 0
    failed: int = 0
    aborted: int = 0
    lost: int = 0
    abandoned: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {name: getattr(self, name) for name in ("claimed", "completed", "failed", "aborted", "lost", "abandoned")}


class JobContext:
    """What a handler gets: the job, progress reporting, and the signal to stop."""

    def __init__(self, worker: Worker, job: Job) -> None:
        assert job.lease_token is not None
        self.job = job
        self.lease_token: str = job.lease_token
        self._worker = worker
        self._stop = threading.Event()
        self.stop_reason: str | None = None  # cancel_requested | lease_lost | shutdown | timeout
        self.last_refresh = time.monotonic()
        self._lock = threading.Lock()
        self._handler_returned = False

    @property
    def params(self) -> Any:
        return self.job.params

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self, reason: str) -> None:
        with self._lock:
            if self.stop_reason is None:
                self.stop_reason = reason
        self._stop.set()

    def give_up(self) -> bool:
        """Stop for overrunning `max_run_s`, unless the handler has returned already (its
        outcome is being reported: a slow `complete` is not a hung handler)."""
        with self._lock:
            if self._handler_returned:
                return False
            self.stop_reason = "timeout"
        self._stop.set()
        return True

    def handler_returned(self) -> bool:
        """The handler is done; False if the worker gave the job up first (another worker
        will run it: this outcome must not be reported)."""
        with self._lock:
            self._handler_returned = True
            return self.stop_reason != "timeout"

    def wait(self, seconds: float) -> bool:
        """Wait up to `seconds`; True if the job must stop."""
        return self._stop.wait(seconds)

    def check(self) -> None:
        """Raise JobStopped if the job was cancelled, its lease lost, or the worker stops."""
        if self._stop.is_set():
            raise JobStopped(self.stop_reason or "stopped")

    def sleep(self, seconds: float) -> None:
        """Wait, but raise JobStopped as soon as the job must stop."""
        if self.wait(seconds):
            raise JobStopped(self.stop_reason or "stopped")

    def report(
        self,
        *,
        current: float | None = None,
        maximum: float | None = None,
        title: str | None = None,
        status: str | None = None,
        message: str | None = None,
        speeds: list[Speed] | None = None,
        new_title: str | None = None,
    ) -> None:
        """Post progress (and status, message, speeds); it also extends the lease."""
        progress = Progress(title, current, maximum) if current is not None or maximum is not None else None
        try:
            job = self._worker.client.post_status(
                self.job.id,
                new_title=new_title,
                new_status=status,
                progress=progress,
                speeds=speeds,
                message_to_append=message,
                lease_token=self.lease_token,
                extend_ms=self._worker.lease_ms,
            )
        except _LEASE_GONE:
            self.stop("lease_lost")
            raise JobStopped("lease_lost") from None
        self.last_refresh = time.monotonic()
        if job.cancel_requested:
            self.stop("cancel_requested")


Handler = Callable[[JobContext], Any]


class Worker:
    def __init__(
        self,
        client: JobsClient,
        type: str | Sequence[str],
        handler: Handler,
        *,
        concurrency: int = 1,
        max_jobs: int = 1,
        lease_ms: int = 60_000,
        wait_ms: int = 20_000,
        max_run_s: float | None = None,
        shutdown_grace_s: float = 25.0,
        name: str | None = None,
        max_retries: int | None = None,
        ws_url: str | None = None,
        safety_poll_s: float = 30.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if not 1 <= max_jobs <= MAX_JOBS:
            raise ValueError(f"max_jobs must be 1 to {MAX_JOBS}")
        queues = [type] if isinstance(type, str) else list(type)
        if not queues or len(queues) > MAX_QUEUES or len(set(queues)) != len(queues):
            raise ValueError(f"give 1 to {MAX_QUEUES} distinct queues")
        if not all(isinstance(queue, str) and queue for queue in queues):
            raise TypeError("each queue is a non-empty string")
        self.client = client
        self.queues = queues
        self.type = queues[0]
        self._turn = itertools.count()
        self.handler = handler
        self.concurrency = concurrency
        self.max_jobs = max_jobs
        self.lease_ms = lease_ms
        self.wait_ms = wait_ms
        self.max_run_s = max_run_s
        self.shutdown_grace_s = shutdown_grace_s
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.max_retries = max_retries
        # "" turns the WebSocket off; None takes JOBS_WS_URL if it is set.
        self.ws_url = (os.environ.get("JOBS_WS_URL") if ws_url is None else ws_url) or None
        self.safety_poll_s = safety_poll_s
        self.waker: WorkWaker | None = None
        self.stats = WorkerStats()
        self._stopping = threading.Event()
        # Held: claimed and not yet settled, by lease (a job lost and leased to this worker
        # again is two holds until the first settles).
        self._running: dict[str, JobContext] = {}
        self._ready: deque[JobContext] = deque()  # held, claimed by a slot for another to start
        self._reserved = 0  # jobs asked for by the claims in flight
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # slots wait here for a job or a free slot
        self._slots: list[threading.Thread] = []

    # -- lifecycle ------------------------------------------------------------------------
    def run(self, *, install_signal_handlers: bool = True) -> None:
        """Work until stop() (or SIGTERM/SIGINT); returns once every lease is settled."""
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self.stop())
        if self.ws_url:
            self.waker = WorkWaker(self.ws_url, self.client.token, self.queues).start()
        for _ in range(self.concurrency):
            self._start_slot()
        self._stopping.wait()
        try:
            self._drain()
        finally:
            if self.waker is not None:
                self.waker.stop()

    def stop(self) -> None:
        """Stop claiming; run() then settles the running jobs and returns."""
        self._stopping.set()
        if self.waker is not None:
            self.waker.stop()  # slots waiting for a notice see the stop at once

    def _start_slot(self) -> None:
        thread = threading.Thread(target=self._slot, name=f"worker-slot-{len(self._slots)}", daemon=True)
        self._slots.append(thread)
        thread.start()

    def _drain(self) -> None:
        with self._wake:
            unstarted = list(self._ready)
            self._ready.clear()
            self._wake.notify_all()  # idle slots see the stop and end
        for ctx in unstarted:  # give them back now rather than let their leases run out
            self._settle(ctx, abort=True)
        deadline = time.monotonic() + self.shutdown_grace_s
        while self._held() and time.monotonic() < deadline:
            time.sleep(0.05)
        for ctx in self._held():
            ctx.stop("shutdown")
        settle = time.monotonic() + 5
        while self._held() and time.monotonic() < settle:
            time.sleep(0.05)
        for ctx in self._held():  # handlers that ignore the stop: give their jobs back
            self._settle(ctx, abort=True)

    def _held(self) -> list[JobContext]:
        with self._lock:
            return list(self._running.values())

    # -- one slot -------------------------------------------------------------------------
    def _slot(self) -> None:
        while True:
            ctx, count = self._next_turn()
            if ctx is None and count == 0:
                return  # stopping
            if ctx is None:
                ctx = self._claim_for(count)
                if ctx is None:
                    continue
            if not self._run(ctx):
                return  # abandoned: a fresh slot took over

    def _next_turn(self) -> tuple[JobContext | None, int]:
        """What this slot does next: start a job another slot claimed, or claim up to
        min(max_jobs, free slots) jobs, reserved until the claim answers so that no claim
        leases a job no slot is free to start; (None, 0) once stopping."""
        with self._wake:
            while not self._stopping.is_set():
                if self._ready:
                    return self._ready.popleft(), 0
                free = self.concurrency - len(self._running) - self._reserved
                if free > 0:
                    count = min(self.max_jobs, free)
                    self._reserved += count
                    return None, count
                self._wake.wait()
            return None, 0

    def _claim_for(self, count: int) -> JobContext | None:
        """Claim up to `count` (reserved) jobs: the first to run in this slot, the others for
        the idle slots; held + reserved <= concurrency means there are enough of them."""
        jobs: list[Job] = []
        try:
            jobs = self._claim_up_to(count)
        except JobsClientError as error:
            logger.warning("claim failed: %s", error)
            self._stopping.wait(1.0)  # still reserved: the other slots do not pile on a failing service
        finally:  # the reservation is returned whatever the claim did
            contexts = [JobContext(self, job) for job in jobs]
            for _ in contexts:
                self.stats.add("claimed")
            with self._wake:
                self._reserved -= count
                for ctx in contexts:
                    self._running[ctx.lease_token] = ctx
                # Decided under the lock that _drain takes to empty _ready: after stop(),
                # nothing is queued that no one would start or give back.
                stopping = self._stopping.is_set()
                if not stopping:
                    self._ready.extend(contexts[1:])
                self._wake.notify_all()
        if stopping:  # a long poll answered after stop(): give them back
            for ctx in contexts:
                self._settle(ctx, abort=True)
            return None
        return contexts[0] if contexts else None

    def _claim(self) -> Job | None:
        """One job, or None: the one-job form of `_claim_up_to`."""
        jobs = self._claim_up_to(1)
        return jobs[0] if jobs else None

    def _claim_up_to(self, count: int) -> list[Job]:
        """Up to `count` jobs. Subscribed to work notices: claim without waiting, and when
        nothing was claimable wait for a notice (or the safety poll) before returning;
        otherwise one long poll."""
        waker = self.waker
        if waker is None or not waker.connected:
            return self._claim_request(count, self.wait_ms)
        since = waker.generation  # read before the claim: a notice during it is not lost
        jobs = self._claim_request(count, 0)
        if not jobs:
            waker.wait(since, self.safety_poll_s)
        return jobs

    def _claim_request(self, count: int, wait_ms: int) -> list[Job]:
        """One claim: from the queue, or from the first of the queues with work, their order
        rotated at every claim so that a busy first queue does not starve the others."""
        if len(self.queues) == 1 and count == 1:
            job = self.client.claim(
                self.type, timeout_ms=self.lease_ms, worker=self.name, wait_ms=wait_ms, max_retries=self.max_retries
            )
            return [] if job is None else [job]
        types: str | list[str] = self.type
        if len(self.queues) > 1:
            turn = next(self._turn) % len(self.queues)
            types = self.queues[turn:] + self.queues[:turn]
        return self.client.claim_many(types, max_jobs=count, timeout_ms=self.lease_ms, worker=self.name,
                                      wait_ms=wait_ms, max_retries=self.max_retries)  # fmt: skip

    def _run(self, ctx: JobContext) -> bool:
        """Run one held job; False when the handler overran max_run_s and was abandoned."""
        heartbeat = threading.Thread(target=self._heartbeat, args=(ctx,), name=f"heartbeat-{ctx.job.id}", daemon=True)
        heartbeat.start()
        outcome: tuple[str, Any] = ("stopped", None)
        try:
            outcome = ("result", self.handler(ctx))
        except JobStopped:
            outcome = ("stopped", None)
        except NonRetryableError as error:
            outcome = ("fatal", error)
        except Exception as error:
            logger.info("job %s failed: %s", ctx.job.id, error)
            outcome = ("error", error)
        if not ctx.handler_returned():
            return False
        self._finish(ctx, *outcome)
        return True

    def _finish(self, ctx: JobContext, kind: str, value: Any) -> None:
        try:
            if ctx.stop_reason == "lease_lost":
                self.stats.add("lost")
            elif kind == "result":
                self.client.complete(ctx.job.id, lease_token=ctx.lease_token, result=value)
                self.stats.add("completed")
            elif kind == "fatal":
                self.client.fail(ctx.job.id, ctx.lease_token, code=value.code, message=str(value), retry=False)
                self.stats.add("failed")
            elif kind == "error":
                message = f"{value.__class__.__name__}: {value}"[:4000]
                self.client.fail(ctx.job.id, ctx.lease_token, code="exception", message=message)
                self.stats.add("failed")
            else:  # stopped: cancelled jobs end cancelled, others are claimable again
                self._settle(ctx, abort=True)
                return
        except _LEASE_GONE:
            self.stats.add("lost")
        except ApiError as error:
            logger.warning("could not report job %s: %s", ctx.job.id, error)
        except JobsClientError as error:
            logger.warning("could not reach the service for job %s: %s", ctx.job.id, error)
        self._release(ctx)

    def _settle(self, ctx: JobContext, *, abort: bool) -> None:
        if abort:
            try:
                self.client.abort(ctx.job.id, ctx.lease_token)
                self.stats.add("aborted")
            except _LEASE_GONE:
                self.stats.add("lost")
            except JobsClientError as error:
                logger.warning("could not abort job %s: %s", ctx.job.id, error)
        self._release(ctx)

    def _release(self, ctx: JobContext) -> None:
        ctx.stop(ctx.stop_reason or "done")
        with self._wake:
            self._running.pop(ctx.lease_token, None)
            self._wake.notify_all()  # a slot is free

    # -- the heartbeat --------------------------------------------------------------------
    def _heartbeat(self, ctx: JobContext) -> None:
        interval = self.lease_ms / 3000
        started = time.monotonic()
        while not ctx.wait(max(0.05, ctx.last_refresh + interval - time.monotonic())):
            if self.max_run_s is not None and time.monotonic() - started > self.max_run_s and ctx.give_up():
                # Stop extending: the lease expires and another worker retries the job.
                logger.warning("job %s ran past %.0f s; giving it up", ctx.job.id, self.max_run_s)
                with self._wake:
                    self._running.pop(ctx.lease_token, None)
                    self._wake.notify_all()
                self.stats.add("abandoned")
                if not self._stopping.is_set():
                    self._start_slot()
                return
            if time.monotonic() - ctx.last_refresh < interval:
                continue  # a progress report extended it meanwhile
            try:
                job = self.client.extend(ctx.job.id, ctx.lease_token, timeout_ms=self.lease_ms)
            except _LEASE_GONE:
                ctx.stop("lease_lost")
                return
            except JobsClientError as error:
                logger.warning("extend of job %s failed: %s", ctx.job.id, error)
                ctx.last_refresh = time.monotonic() - interval + 1  # try again in a second
                continue
            ctx.last_refresh = time.monotonic()
            if job.cancel_requested:
                ctx.stop("cancel_requested")
