"""Leases: start a job by id, claim the next of a queue (long poll included), extend, abort,
complete and fail. Every write after a claim is conditional on the current lease token."""

from __future__ import annotations

import contextlib
import os
from datetime import datetime
from typing import Any

from msgspec import Struct

from .. import keys
from ..clock import epoch_seconds, plus_ms, to_iso
from ..commands.leases import AbortJob, ClaimJob, CompleteJob, ExtendLease, FailJob, StartJob
from ..errors import (
    AlreadyFinished,
    DeadlineExceeded,
    DependencyFailed,
    DependencyPending,
    NotFound,
    QueuePaused,
    RetriesExhausted,
)
from ..model import Job, JobState, Principal
from ..rules import (
    ABORT,
    AT_VERSION,
    CLAIM,
    DEFER,
    EXISTS,
    FINISHED_DEPENDENCY,
    HOLD,
    RETIRE,
    RETRY,
    START,
    START_WITH_DEPENDENCIES,
    UNLEASED_ONLY,
    CancelInstead,
    EndsNow,
    Refused,
    Transition,
    Unstartable,
    startable_reason,
)
from ..store import Expr, Item, Write
from ..wire import encode_json
from .context import Family, now_values
from .scope import require_queues
from .writes import TERMINAL_REMOVES, Change, ExtraWritesFailed, ended, load, terminal_sets, visible, write

# A long poll stops this long before the function would time out: room for the last claim.
LONG_POLL_MARGIN_MS = 2000
# No claim max: every job passes the claim's own test (#attempts < :claim_max).
NO_LIMIT = 10**9
QUARANTINE_MESSAGES = {
    RetriesExhausted.code: "the job was started as often as its max_retries allows",
    DeadlineExceeded.code: "the job was not started before its execute_until deadline",
    DependencyFailed.code: "a job this job depends on ended without finishing",
}


def new_token(attempt: int | None) -> str:
    """A lease token. A claim's carries the attempt it was granted for, so that a failed
    attempt's backoff is known without reading the job (conditions compare the whole token)."""
    secret = os.urandom(16).hex()
    return f"{attempt}-{secret}" if attempt is not None else secret


def attempt_of(token: str) -> int | None:
    head, _, rest = token.partition("-")
    return int(head) if rest and head.isascii() and head.isdigit() and len(head) <= 6 else None


def lease_sets(job_id: str, worker: str, timeout_ms: int, now: datetime, token: str) -> dict[str, Any]:
    locked_until = to_iso(plus_ms(now, timeout_ms))
    return {
        "state": JobState.RUNNING.value,
        "lease_token": token,
        "lease_owner": worker,
        "locked_until": locked_until,
        "started": to_iso(now),
        "QSK": keys.visible_key(locked_until, job_id),
    }


class _DependencyCheck(Struct):
    job_id: str
    must_finish: bool = False  # one of the job's own depends_on
    from_claim: bool = False  # named by the claim's depends
    version: int | None = None


def _dependency_writes(checks: list[_DependencyCheck], now: datetime) -> list[Write]:
    """One check per dependency item (a transaction may touch an item once)."""
    writes = []
    for check in checks:
        rule = FINISHED_DEPENDENCY if check.must_finish else (AT_VERSION if check.version is not None else EXISTS)
        given = {**now_values(now), ":version": check.version}
        e = Expr()
        e.names.update(rule.names)
        e.values.update(rule.values(given))
        if check.must_finish and check.version is not None:  # both: finished, and at this version
            e.names.update(AT_VERSION.names)
            e.values.update(AT_VERSION.values(given))
            condition = f"{rule.condition} AND #version = :version"
        else:
            condition = rule.condition
        writes.append(Write("check", key=keys.job_key(check.job_id), condition=condition, expr=e))
    return writes


# A page of a partition's claim candidates, and the key to read on from (None: its end).
_Page = tuple[list[Item], Item | None]


class _ClaimBudget(Struct):
    """What one claim may spend over all levels: pages that gave nothing, jobs quarantined."""

    max_pages_lost: int
    max_retired: int
    pages_lost: int = 0
    retired: int = 0

    def left(self) -> bool:
        return self.pages_lost < self.max_pages_lost and self.retired < self.max_retired


class Leasing(Family):
    # Claims that lost a candidate to another worker (a lost conditional write), since made.
    conflicts: int = 0

    # -- start ----------------------------------------------------------------------------
    def start(self, principal: Principal, command: StartJob) -> Job:
        """Lease one job by id: idle, pending, or running with an expired lease; its
        dependencies finished and its queue not paused, exactly as for a claim. A read (its
        queue and dependencies), then one write; a transaction with dependency checks."""
        now = self.ctx.clock.now()
        current = load(self.ctx, command.job_id, now)
        if current is None or not principal.reaches(current.type):
            raise NotFound(f"job {command.job_id} not found")
        if self.ctx.queue_settings.of(current.type).paused:
            raise QueuePaused(f"queue {current.type} is paused", {"type": current.type})
        checks = [_DependencyCheck(dep, must_finish=True) for dep in current.depends_on]
        rule = START_WITH_DEPENDENCIES if checks else START
        token = new_token(current.attempts + 1)
        job = self._start(command, rule, checks, token, command.worker or principal.sub, now)
        self.ctx.count("JobsClaimed", queue=job.type)
        return job

    def _start(self, command: StartJob, rule: Transition, checks: list[_DependencyCheck], token: str, worker: str,
               now: datetime) -> Job:  # fmt: skip
        change = Change(
            sets=lease_sets(command.job_id, worker, command.timeout_ms, now, token),
            increments=("attempts",),
            extra=(lambda _: _dependency_writes(checks, now)) if checks else None,
        )
        try:
            return write(self.ctx, command.job_id, rule, {}, change, now)
        except Unstartable as unstartable:
            self._raise_unstartable(command.job_id, unstartable.reason, now)
            raise
        except ExtraWritesFailed as failed:
            self._dependencies_unmet(command.job_id, None, failed.reasons, checks, now)
            raise DependencyPending(f"job {command.job_id} waits for a job it depends on") from None

    def _raise_unstartable(self, job_id: str, reason: str, now: datetime) -> None:
        """A job that may never start again is moved out of the queue, then reported."""
        self.retire(job_id, reason, now)
        if reason == "cancelled":
            raise AlreadyFinished(f"job {job_id} was cancelled", {"state": JobState.CANCELLED.value})
        if reason == DeadlineExceeded.code:
            raise DeadlineExceeded(f"job {job_id} is past its deadline")
        raise RetriesExhausted(f"job {job_id} was started as often as its max_retries allows")

    def retire(self, job_id: str, reason: str, now: datetime) -> Job | None:
        """Quarantine: a job that may never run again leaves the queue (`cancelled` for a
        requested cancel, else `error` with the reason as its code). None when it changed."""
        if reason == "cancelled":
            sets = terminal_sets(self.ctx, job_id, JobState.CANCELLED.value, now)
        else:
            error = {"code": reason, "message": QUARANTINE_MESSAGES[reason]}
            sets = terminal_sets(self.ctx, job_id, JobState.ERROR.value, now, error)
        try:
            job = write(self.ctx, job_id, RETIRE, {}, Change(sets=sets, removes=TERMINAL_REMOVES), now)
        except (Refused, NotFound):
            return None
        return ended(self.ctx, job)

    # -- claim ----------------------------------------------------------------------------
    def claim(self, principal: Principal, command: ClaimJob, *, time_left_ms: int | None = None) -> Job | None:
        """Lease the next available job of the queues, or None when there is none."""
        jobs = self.claim_many(principal, command, time_left_ms=time_left_ms)
        return jobs[0] if jobs else None

    def claim_many(self, principal: Principal, command: ClaimJob, *, time_left_ms: int | None = None) -> list[Job]:
        """Lease up to `max_jobs` jobs from the first of the queues that has any, or none
        (after waiting up to `wait_ms`, bounded by what is left of the function's time). A
        long poll returns as soon as one job is leased."""
        require_queues(principal, command.types)
        wait_ms = command.wait_ms
        if time_left_ms is not None:
            wait_ms = max(0, min(wait_ms, time_left_ms - LONG_POLL_MARGIN_MS))
        give_up_at = plus_ms(self.ctx.clock.now(), wait_ms)
        reread: set[str] = set()  # queues whose settings this claim read afresh after a miss
        while True:
            for queue in command.types:
                # A paused queue leases nothing; a long poll waits on, and takes work once resumed.
                if self.ctx.queue_settings.of(queue).paused:
                    continue
                jobs = self._claim_once(principal, command, queue, self.ctx.clock.now(), reread)
                if jobs:
                    self.ctx.count("JobsClaimed", len(jobs), queue=queue)
                    return jobs
            remaining_ms = (give_up_at - self.ctx.clock.now()).total_seconds() * 1000
            if remaining_ms <= 0:
                return []
            self.ctx.clock.sleep(min(self.ctx.settings.poll_interval_ms, remaining_ms) / 1000)

    def _claim_once(self, principal: Principal, command: ClaimJob, queue: str, now: datetime,
                    reread: set[str]) -> list[Job]:  # fmt: skip
        """Up to `max_jobs` jobs of the queue, most urgent priority level first, among the
        levels the queue has used: one Query when that level has a visible job, at most one
        per level (and shard) otherwise.

        An answer of none never rests on levels this container cached: a level another
        container registered since (a new queue's first job, a first urgent job) would be
        missed for the cache's time. So a miss on cached levels reads the queue's item again
        (once per claim call) and looks at the levels (and shards) that are new."""
        settings, fresh = self.ctx.queue_settings.read(queue)
        budget = _ClaimBudget(self.ctx.settings.claim_max_pages, self.ctx.settings.claim_retire_budget)
        leased: list[Job] = []
        groups = self._partitions(queue, settings.levels, settings.span)
        self._claim_partitions(principal, command, queue, groups, settings.fifo, now, leased, budget)
        if not leased and not fresh and queue not in reread:
            reread.add(queue)
            renewed, _ = self.ctx.queue_settings.read(queue, fresh=True)
            seen = {partition for group in groups for partition in group}
            added = [[p for p in group if p not in seen] for group in self._partitions(queue, renewed.levels, renewed.span)]
            if any(added) and not renewed.paused:
                self._claim_partitions(principal, command, queue, [g for g in added if g], renewed.fifo, now, leased, budget)
        return leased

    def _partitions(self, queue: str, levels: tuple[int, ...], span: int) -> list[list[str]]:
        """Where a claim looks, in order: each level, most urgent first; within a level every
        shard, starting at two random ones (workers spread over the shards, and a claim still
        finds a job when those are empty; docs/reliability.md "Hot queues: shards")."""
        first = self.ctx.rng.randrange(span) if span > 1 else 0
        shards = [(first + step) % span for step in range(span)]
        if span > 2:  # the second of the two a claim compares: any other shard, at random
            shards.insert(1, shards.pop(1 + self.ctx.rng.randrange(span - 1)))
        return [[keys.queue_partition(queue, level, shard) for shard in shards] for level in levels]

    def _claim_partitions(self, principal: Principal, command: ClaimJob, queue: str, groups: list[list[str]], fifo: bool,
                          now: datetime, leased: list[Job], budget: _ClaimBudget) -> None:  # fmt: skip
        for group in groups:
            pages: dict[str, _Page] = {}
            ordered = self._older_head_first(group, now, pages) if len(group) > 1 else group
            for partition in ordered:
                if not self._claim_partition(principal, command, queue, partition, fifo, now, leased, budget,
                                             pages.get(partition)):  # fmt: skip
                    return

    def _older_head_first(self, group: list[str], now: datetime, pages: dict[str, _Page]) -> list[str]:
        """The first two shards of a level, the one whose oldest claimable job is older first
        (their first pages kept in `pages` for the claim to use). Two random choices, not one:
        a shard that fell behind is drained first, so the shards' backlogs stay even and claims
        stay near the oldest of the whole queue (bench/hot_queue.py); one more Query a claim."""
        for partition in group[:2]:
            pages[partition] = self._candidates(partition, now, None)
        heads = [str(pages[p][0][0]["QSK"]) if pages[p][0] else keys.KEY_HIGH for p in group[:2]]
        return [group[1], group[0], *group[2:]] if heads[1] < heads[0] else group

    def _candidates(self, partition: str, now: datetime, start_key: Item | None) -> _Page:
        """One page of a partition's claimable jobs, oldest first."""
        bound = keys.visible_key(to_iso(now), keys.KEY_HIGH)
        e = Expr()
        condition = f"{e.n('QPK')} = {e.v(partition)} AND {e.n('QSK')} <= {e.v(bound)}"
        return self.ctx.store.query(
            condition, e, index=keys.QUEUE_INDEX, limit=self.ctx.settings.claim_candidates, start_key=start_key
        )

    def _claim_partition(self, principal: Principal, command: ClaimJob, queue: str, partition: str, fifo: bool,
                         now: datetime, leased: list[Job], budget: _ClaimBudget,
                         first_page: _Page | None = None) -> bool:  # fmt: skip
        """Candidates of one level (one shard of it) from the queue index, oldest first, in
        pages (the first one may be read already); leased one by
        one (one write each) into `leased`. Jobs that may never run again are quarantined on
        the way (up to a budget); jobs this claim's own max_retries rules out are passed by.
        A page whose every candidate went to other workers or was passed by counts against
        `claim_max_pages`: that bounds the reads of one claim, at the price of answering
        "none" while a job its max_retries allows may still sit behind more than that many
        pages of jobs it does not. Returns whether the claim should look at the next partition."""
        start_key: Item | None = None
        while budget.left():
            found, start_key = first_page if first_page is not None else self._candidates(partition, now, start_key)
            first_page = None
            usable: list[Item] = []
            retired_before, leased_before = budget.retired, len(leased)
            at = now_values(now)
            for item in found:
                if "expires_at" in item and int(item["expires_at"]) <= epoch_seconds(now):
                    continue
                reason = startable_reason(item, at)
                if reason is not None:
                    self.retire(str(item["id"]), reason, now)
                    budget.retired += 1
                elif command.max_retries is None or int(item.get("attempts", 0)) < command.max_retries:
                    usable.append(item)
            # Random order among the oldest: concurrent workers rarely pick the same job. A fifo
            # queue takes strictly the oldest first, and pays with conflicts (docs/benchmarks.md).
            if not fifo:
                self.ctx.rng.shuffle(usable)
            for candidate in usable:
                job = self._try_lease(principal, command, queue, partition, candidate, now)
                if job is not None:
                    leased.append(job)
                    if len(leased) >= command.wanted:
                        return False
            if leased and len(leased) == leased_before:
                return False  # a page that gave nothing after some did
            if start_key is None:
                return True  # the level's end
            if budget.retired == retired_before and len(leased) == leased_before:
                budget.pages_lost += 1
        return False

    def _try_lease(self, principal: Principal, command: ClaimJob, queue: str, partition: str, candidate: Item,
                   now: datetime) -> Job | None:  # fmt: skip
        job_id = str(candidate["id"])
        if any(dep.job_id == job_id for dep in command.depends):
            return None  # a claim cannot depend on the job it would take
        checks = {dep: _DependencyCheck(dep, must_finish=True) for dep in candidate.get("depends_on") or []}
        for dep in command.depends:
            entry = checks.setdefault(dep.job_id, _DependencyCheck(dep.job_id))
            entry.from_claim, entry.version = True, dep.version
        token = new_token(int(candidate.get("attempts", 0)) + 1)
        given = {
            ":queue": partition,
            ":bound": keys.visible_key(to_iso(now), keys.KEY_HIGH),
            ":claim_max": command.max_retries or NO_LIMIT,
        }
        change = Change(
            sets=lease_sets(job_id, command.worker or principal.sub, command.timeout_ms, now, token),
            increments=("attempts",),
            extra=(lambda _: _dependency_writes(list(checks.values()), now)) if checks else None,
        )
        try:
            return write(self.ctx, job_id, CLAIM, given, change, now)
        except Unstartable as unstartable:
            self.retire(job_id, unstartable.reason, now)
        except (Refused, NotFound):
            self.conflicts += 1
            self.ctx.count("LeaseConflicts", queue=queue)
        except ExtraWritesFailed as failed:  # only dependency checks ride along with a lease
            self._dependencies_unmet(job_id, candidate, failed.reasons, list(checks.values()), now)
        return None

    def _dependencies_unmet(
        self,
        job_id: str,
        candidate: Item | None,
        reasons: list[tuple[str, Item | None]],
        checks: list[_DependencyCheck],
        now: datetime,
    ) -> None:
        """reasons[0] is the job itself, then one per dependency check, in order."""
        claim_failures = []
        broken = unfinished = False
        for check, (code, item) in zip(checks, reasons[1:], strict=False):
            if code != "ConditionalCheckFailed":
                continue
            found = visible(item, now)
            if check.from_claim and (found is None or (check.version is not None and found.version != check.version)):
                reason = "not_found" if found is None else "version_mismatch"
                claim_failures.append({"id": check.job_id, "reason": reason, "version": check.version})
            elif check.must_finish:
                if found is None or found.state in (JobState.ERROR, JobState.CANCELLED):
                    broken = True
                else:
                    unfinished = True
        if claim_failures:
            raise DependencyFailed("a job this claim depends on is missing or changed", {"failures": claim_failures})
        if broken:
            self.retire(job_id, DependencyFailed.code, now)
            if candidate is None:  # start: say so
                raise DependencyFailed(f"a job job {job_id} depends on ended without finishing")
        elif unfinished and candidate is not None:
            self._defer(job_id, str(candidate.get("QSK", "")), now)

    def _defer(self, job_id: str, seen: str, now: datetime) -> None:
        """Put back a job whose dependencies are unfinished, so the head of the queue moves on."""
        later = to_iso(plus_ms(now, self.ctx.settings.dependency_poll_ms))
        change = Change(sets={"available_at": later, "QSK": keys.visible_key(later, job_id)})
        with contextlib.suppress(Refused, NotFound):
            write(self.ctx, job_id, DEFER, {":seen": seen}, change, now)

    # -- the holder's writes --------------------------------------------------------------
    def extend(self, principal: Principal, command: ExtendLease) -> Job:
        now = self.ctx.clock.now()
        locked_until = to_iso(plus_ms(now, command.timeout_ms))
        change = Change(sets={"locked_until": locked_until, "QSK": keys.visible_key(locked_until, command.job_id)})
        return write(self.ctx, command.job_id, HOLD, {":token": command.lease_token}, change, now, scope=principal)

    def abort(self, principal: Principal, command: AbortJob) -> Job:
        """Release a lease: back to pending, claimable now; the attempt stays counted. A job
        asked to cancel is cancelled instead."""
        now = self.ctx.clock.now()
        change = Change(
            sets={"state": JobState.PENDING.value, "available_at": to_iso(now),
                  "QSK": keys.visible_key(to_iso(now), command.job_id)},
            removes=("lease_token", "lease_owner", "locked_until"),
        )  # fmt: skip
        try:
            return write(self.ctx, command.job_id, ABORT, {":token": command.lease_token}, change, now, scope=principal)
        except CancelInstead:
            return self._finish_held(command.job_id, command.lease_token, JobState.CANCELLED.value, now, scope=principal)

    def _finish_held(self, job_id: str, token: str, state: str, now: datetime, *, error: dict[str, str] | None = None,
                     result: Any = None, with_result: bool = False, scope: Principal | None = None) -> Job:  # fmt: skip
        sets = terminal_sets(self.ctx, job_id, state, now, error)
        if with_result:
            sets["result"] = encode_json(result)
        change = Change(sets=sets, removes=TERMINAL_REMOVES)
        job = write(self.ctx, job_id, HOLD, {":token": token}, change, now, scope=scope)
        return ended(self.ctx, job)

    def complete(self, principal: Principal, command: CompleteJob) -> Job:
        now = self.ctx.clock.now()
        if command.lease_token is None:
            sets = terminal_sets(self.ctx, command.job_id, JobState.FINISHED.value, now)
            sets["result"] = encode_json(command.result)
            change = Change(sets=sets, removes=("QSK", "locked_until", "error"))
            return ended(self.ctx, write(self.ctx, command.job_id, UNLEASED_ONLY, {}, change, now, scope=principal))
        try:
            return self._finish_held(command.job_id, command.lease_token, JobState.FINISHED.value, now,
                                     result=command.result, with_result=True, scope=principal)  # fmt: skip
        except AlreadyFinished:
            # A repeated complete from the worker that finished it answers as the first did
            # (its result stays the first one).
            finished = load(self.ctx, command.job_id, now)
            if finished is not None and finished.state is JobState.FINISHED and finished.lease_token == command.lease_token:
                return finished
            raise

    def fail(self, principal: Principal, command: FailJob) -> Job:
        """A failed attempt: back to pending after a delay while it may run again (one
        write), else `error`; a job asked to cancel ends cancelled."""
        now = self.ctx.clock.now()
        error = command.error_body
        if not command.retry:
            return self._finish_held(command.job_id, command.lease_token, JobState.ERROR.value, now, error=error,
                                     scope=principal)  # fmt: skip
        attempt = attempt_of(command.lease_token) or 1
        delay = command.retry_in_ms if command.retry_in_ms is not None else self._backoff_ms(attempt)
        retry_at = to_iso(plus_ms(now, delay))
        change = Change(
            # failed_at: the queue's history counts this as a retry (engine/counting.py).
            sets=lambda stamp: {"state": JobState.PENDING.value, "error": encode_json(error), "available_at": retry_at,
                                "QSK": keys.visible_key(retry_at, command.job_id), "failed_at": stamp},
            removes=("lease_token", "lease_owner", "locked_until"),
        )  # fmt: skip
        try:
            given = {":token": command.lease_token, ":retry_at": retry_at}
            job = write(self.ctx, command.job_id, RETRY, given, change, now, scope=principal)
        except CancelInstead:
            return self._finish_held(command.job_id, command.lease_token, JobState.CANCELLED.value, now, error=error,
                                     scope=principal)  # fmt: skip
        except EndsNow:
            return self._finish_held(command.job_id, command.lease_token, JobState.ERROR.value, now, error=error,
                                     scope=principal)  # fmt: skip
        self.ctx.count("JobsRetried", queue=job.type)
        return job

    def _backoff_ms(self, attempts: int) -> int:
        """Exponential in the attempts made, capped, with "equal jitter": half fixed, half random."""
        settings = self.ctx.settings
        ceiling = min(settings.backoff_cap_ms, settings.backoff_base_ms * 2 ** max(0, min(attempts - 1, 30)))
        return int(ceiling // 2 + self.ctx.rng.randint(0, ceiling - ceiling // 2))
