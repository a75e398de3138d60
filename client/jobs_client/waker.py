"""Waiting for work on the WebSocket instead of in a long poll.

An idle worker that long-polls `claim` keeps a Lambda running the whole time it waits
(about $17 a month per idle worker). A `WorkWaker` waits on the WebSocket instead, where an
idle connection costs connection-minutes: it subscribes to each queue's notices of
claimable work (`{"action": "subscribe", "work": <queue>}`), and each `work_available`
notice (sent by the stream fan-out when a job enters the queue's claimable set) wakes the
worker's idle slots, which then claim over HTTP without waiting. A notice for a job that is
claimable later (a delay, a retry's backoff) wakes them at that time.

What becomes claimable without a write (a lease that ran out) sends no notice, and a
notice can be lost (a reconnect, a failed post): the worker also claims every
`safety_poll_s` while idle. While the socket is not connected, the worker long-polls as
before.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import logging
import random
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

logger = logging.getLogger("jobs_client.waker")

PING_INTERVAL_S = 240.0  # API Gateway closes a connection after 10 minutes without a message
RECV_TIMEOUT_S = 5.0  # how often the reader looks at whether it must stop


def epoch_of(at: str) -> float | None:
    """Seconds since the epoch of an ISO-8601 time; None if it is not one."""
    try:
        return datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return None


class WorkWaker:
    """A background thread holding one WebSocket subscribed to the queues' work notices.

    Slots call `wait(since, timeout)` with the `generation` they read before their empty
    claim: a notice that arrived meanwhile makes the wait return at once, so no wake-up is
    lost between a claim and the wait that follows it.
    """

    def __init__(self, ws_url: str, token: str, queues: Sequence[str], *, ping_interval_s: float = PING_INTERVAL_S,
                 max_backoff_s: float = 10.0) -> None:  # fmt: skip
        self.url = f"{ws_url.rstrip('/')}/?token={token}"
        self.queues = list(queues)
        self.ping_interval_s = ping_interval_s
        self.max_backoff_s = max_backoff_s
        self.notices = 0
        self._cond = threading.Condition()
        self._generation = 0
        self._connected = False
        self._refused = False
        self._stopped = threading.Event()
        self._first_try = threading.Event()  # the first connection succeeded or failed
        self._due: list[float] = []  # wall-clock times at which a delayed job becomes claimable
        self._socket: Any = None
        self._thread = threading.Thread(target=self._run, name="work-waker", daemon=True)

    # -- what the worker's slots see ------------------------------------------------------
    @property
    def connected(self) -> bool:
        """Subscribed to every queue: slots may claim without a long poll."""
        return self._connected and not self._stopped.is_set()

    @property
    def generation(self) -> int:
        with self._cond:
            return self._generation

    def wait(self, since: int, timeout_s: float) -> bool:
        """Until a notice newer than `since`, a delayed job's time, a stop or `timeout_s`;
        True when woken by work (a notice or a due time)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not self._stopped.is_set():
                if self._generation != since:
                    return True
                wall = time.time()
                if self._due and self._due[0] <= wall:
                    while self._due and self._due[0] <= wall:
                        heapq.heappop(self._due)
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if self._due:
                    left = min(left, self._due[0] - wall)
                self._cond.wait(max(0.0, left))
        return False

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, *, ready_timeout_s: float = 10.0) -> WorkWaker:
        """Start the reader; return once its first connection is subscribed or has failed
        (or after `ready_timeout_s`), so that a worker does not begin with a long poll."""
        self._thread.start()
        self._first_try.wait(ready_timeout_s)
        return self

    def stop(self) -> None:
        """Close the socket and wake every waiting slot; returns once the thread has ended."""
        self._stopped.set()
        with self._cond:
            self._cond.notify_all()
        socket = self._socket
        if socket is not None:
            with contextlib.suppress(Exception):  # closing a socket that may be failing anyway
                socket.close()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=RECV_TIMEOUT_S + 5)

    # -- the reader thread ----------------------------------------------------------------
    def _wake(self, due: float | None = None) -> None:
        with self._cond:
            if due is not None and due > time.time():
                heapq.heappush(self._due, due)
            else:
                self._generation += 1
            self._cond.notify_all()

    def _run(self) -> None:
        from websockets.exceptions import ConnectionClosed, InvalidStatus

        attempt = 0
        while not self._stopped.is_set() and not self._refused:
            try:
                self._connect_and_read()
                attempt = 0
            except InvalidStatus as refused:
                if refused.response.status_code in (401, 403):
                    logger.warning("the WebSocket refused the token (%s): waiting in long polls", refused.response.status_code)
                    self._refused = True
            except (ConnectionClosed, OSError, TimeoutError, ValueError) as error:  # ValueError: not JSON
                logger.info("work notices: connection lost (%s); reconnecting", error)
            finally:
                self._connected = False
                self._socket = None
                self._first_try.set()
            attempt += 1
            self._stopped.wait(random.uniform(0, min(self.max_backoff_s, 0.25 * 2**attempt)))

    def _connect_and_read(self) -> None:
        from websockets.sync.client import connect

        with connect(self.url, open_timeout=30, ping_interval=None, max_size=256 * 1024) as socket:
            self._socket = socket
            if self._stopped.is_set():
                return
            for queue in self.queues:
                socket.send(json.dumps({"action": "subscribe", "work": queue}))
            answered = 0
            while answered < len(self.queues):
                message = json.loads(socket.recv(timeout=30))
                if message.get("type") == "subscribed":
                    answered += 1
                elif message.get("type") == "error":
                    logger.warning("work notices refused: %s; waiting in long polls", message.get("error"))
                    self._refused = True
                    return
                else:
                    self._handle(message)
            self._connected = True
            self._first_try.set()
            self._wake()  # work may have arrived while nobody listened: claim once now
            last_sent = time.monotonic()
            while not self._stopped.is_set():
                try:
                    raw = socket.recv(timeout=RECV_TIMEOUT_S)
                except TimeoutError:
                    if time.monotonic() - last_sent >= self.ping_interval_s:
                        socket.send(json.dumps({"action": "ping"}))
                        last_sent = time.monotonic()
                    continue
                self._handle(json.loads(raw))

    def _handle(self, message: dict[str, Any]) -> None:
        if message.get("type") != "work_available" or message.get("queue") not in self.queues:
            return  # pong, or anything newer than this client
        self.notices += 1
        self._wake(epoch_of(str(message.get("at", ""))))
