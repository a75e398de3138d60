"""Recovery after an incident: retry one job, redrive a queue's failed jobs (SQS redrive),
purge a queue. A retried job keeps its id, history and messages; a unique one takes its
guard back in the same transaction, or is left where it is (`duplicate`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from msgspec import Struct

from .. import keys
from ..clock import epoch_seconds, parse_iso, plus_ms, to_iso
from ..commands.jobs import JobById
from ..commands.queues import Purge, Redrive
from ..errors import Duplicate, NotFound, ServiceUnavailable
from ..model import Job, JobState, Principal
from ..rules import ABSENT, REQUEUE, Refused
from ..store import ConditionFailed, Expr, Item, Write
from . import message_log
from .context import Family
from .creating import conditional, guard_write
from .scope import require_queue
from .writes import Change, ExtraWritesFailed, delete_messages, load, release_guard_of, visible, write, write_only

# How many jobs one purge call deletes at most before it answers `more`, and how many of
# the queue's jobs it reads at most looking for them (running ones are read and kept).
PURGE_BUDGET = 500
PURGE_READS = 5000
# A redrive or purge run not called again for this long starts over (see _open_run).
RUN_IDLE_S = 300
RETRIED_MESSAGE = "retried"
# Attempts at one job before a bulk call skips it: each lost round is another writer's change.
REQUEUE_ATTEMPTS = 4


TimeLeft = Callable[[], "int | None"]
# A bulk call answers `more` while this much of its function's time is left.
TIME_MARGIN_MS = 4000


def _out_of_time(time_left_ms: TimeLeft | None) -> bool:
    left = time_left_ms() if time_left_ms is not None else None
    return left is not None and left < TIME_MARGIN_MS


class Redriven(Struct, frozen=True):
    retried: int
    skipped: int
    more: bool


class Purged(Struct, frozen=True):
    deleted: int
    more: bool


class Recovery(Family):
    def retry(self, principal: Principal, command: JobById) -> Job:
        """An `error` or `cancelled` job back to pending, claimable now, its attempts at 0."""
        now = self.ctx.clock.now()
        item = self.ctx.store.get(keys.job_key(command.job_id))
        found = visible(item, now)
        if found is None or not principal.reaches(found.type):
            raise NotFound(f"job {command.job_id} not found")
        assert item is not None
        job = self._requeue(item, now, read_back=True)
        assert job is not None
        return job

    def _requeue(self, item: Item, now: datetime, *, read_back: bool) -> Job | None:
        """One transaction: the job back to pending, a `retried` message, its guard again.
        `item` needs only what the queue-ended index projects (keys.REDRIVE_READS)."""
        job_id = str(item["id"])
        expires: int | None = None
        if item.get("execute_until"):  # past its deadline it expires as a job that ended then would
            expires = epoch_seconds(plus_ms(parse_iso(str(item["execute_until"])), self.ctx.settings.retention_ms))
        unique_key = str(item["unique_key"]) if item.get("unique_key") else None

        def sets(stamp: str) -> dict[str, Any]:
            values: dict[str, Any] = {
                "state": JobState.PENDING.value, "attempts": 0, "available_at": stamp, "cancel_requested": False,
                "QSK": keys.visible_key(stamp, job_id), "last_message": RETRIED_MESSAGE,
            }  # fmt: skip
            if expires is not None:
                values["expires_at"] = expires
            return values

        def extra(stamp: str) -> list[Write]:
            entry = message_log.entry(job_id, stamp, RETRIED_MESSAGE, self.ctx.settings.message_retention_ms)
            writes = [conditional(ABSENT, {}, kind="put", item=entry)]
            if unique_key is not None:
                writes.append(guard_write(unique_key, job_id, now, expires))
            return writes

        removes = ["error", "completed", "ESK", "lease_token", "lease_owner", "locked_until"]
        if expires is None:
            removes.append("expires_at")
        change = Change(sets=sets, removes=removes, increments=("msg_count",), extra=extra)
        for _ in range(REQUEUE_ATTEMPTS):
            try:
                if read_back:
                    job: Job | None = write(self.ctx, job_id, REQUEUE, {}, change, now)
                else:
                    job = None
                    write_only(self.ctx, job_id, REQUEUE, {}, change, now)
            except ExtraWritesFailed as failed:
                guard = (
                    failed.reasons[2][1] if len(failed.reasons) > 2 and failed.reasons[2][0] == "ConditionalCheckFailed" else None
                )
                if guard is None:
                    continue  # a concurrent transaction touched one of the items: again
                holder = load(self.ctx, str(guard.get("job_id", "")), now)
                if holder is not None and not holder.complete:
                    raise Duplicate(
                        f"job {holder.id} of the same type and ref_id is unfinished", {"existing_id": holder.id}
                    ) from None
                # Left over from a job that ended (this one, or another): free it, then again.
                release_guard_of(self.ctx, str(guard["PK"]), str(guard.get("job_id", "")))
                continue
            self.ctx.count("JobsRetried", queue=str(item["type"]))
            return job
        raise ServiceUnavailable(f"job {job_id} kept changing; retry")

    # -- runs ---------------------------------------------------------------------------------
    # A redrive or a purge of a deep queue takes many calls. Where the last call stopped is
    # kept in a run item, so the next call reads on from there: jobs it skipped are not read
    # again, and jobs that ended (redrive) or were created (purge) after the run began wait
    # for the next run, so a run ends even while workers keep failing jobs or producers keep
    # adding them. A run left alone for RUN_IDLE_S is forgotten (TTL).
    def _open_run(self, kind: str, scope: str, now: datetime) -> tuple[dict[str, str], str, Item | None]:
        key = keys.run_key(kind, scope)
        run = self.ctx.store.get(key, consistent=True)
        if run is None or int(run.get("expires_at", 0)) <= epoch_seconds(now):
            return key, to_iso(now), None
        start = json.loads(str(run["start_key"])) if run.get("start_key") else None
        return key, str(run["started"]), start

    def _save_run(self, key: dict[str, str], started: str, start_key: Item, now: datetime) -> None:
        self.ctx.store.put({**key, "started": started, "start_key": json.dumps(start_key, sort_keys=True),
                            "expires_at": epoch_seconds(now) + RUN_IDLE_S})  # fmt: skip

    def redrive(self, principal: Principal, command: Redrive, *, time_left_ms: TimeLeft | None = None) -> Redriven:
        """The queue's jobs in the states asked (and with the error code, if given) that ended
        before the run began, oldest first, up to `limit` of them a call, each retried; read
        from the queue-ended index, which holds exactly these jobs and what a retry needs.
        A call also stops while it has time left to answer (its Lambda's timeout)."""
        require_queue(principal, command.type)
        now = self.ctx.clock.now()
        scope = f"{command.type}|{','.join(command.states)}|{command.error_code or ''}"
        run_key, started, resume = self._open_run("redrive", scope, now)
        retried = skipped = 0
        budget = command.limit
        states = list(command.states)
        if resume is not None and resume.get("state") in states:  # where the last call stopped
            states = states[states.index(str(resume["state"])) :]
        else:
            resume = None
        span = self.ctx.queue_settings.of(command.type).span
        for state in states:
            # A run that stopped in this state goes on in the shard it stopped in (a run saved
            # before queues had shards names none: shard 0).
            first_shard = int(resume.get("shard", 0)) if resume is not None and resume.get("state") == state else 0
            for shard in range(min(first_shard, span), span):
                # The key of the last job examined: the next Query (or call) reads on after it.
                resuming = resume is not None and resume.get("state") == state and shard == first_shard
                after: Item | None = resume.get("key") if resume is not None and resuming else None
                e = Expr()
                prefix = keys.ended_prefix(state, command.error_code if state == JobState.ERROR.value else None)
                condition = (f"{e.n('TPK')} = {e.v(keys.type_partition(command.type, shard))} AND "
                             f"begins_with({e.n('ESK')}, {e.v(prefix)})")  # fmt: skip
                ended_before = f"{e.n('completed')} <= {e.v(started)}"
                while True:
                    if budget <= 0 or _out_of_time(time_left_ms):
                        self._save_run(run_key, started, {"state": state, "shard": shard, "key": after}, now)
                        return Redriven(retried, skipped, True)
                    found, next_start = self.ctx.store.query(condition, e, index=keys.ENDED_INDEX, limit=budget,
                                                             start_key=after, filter_expression=ended_before)  # fmt: skip
                    for entry in found:
                        if budget <= 0 or _out_of_time(time_left_ms):
                            break
                        budget -= 1
                        try:
                            self._requeue(entry, now, read_back=False)
                            retried += 1
                        except (Duplicate, Refused, NotFound, ServiceUnavailable):
                            skipped += 1  # changed since it was read, or its ref_id is taken
                        after = {name: entry[name] for name in keys.INDEX_KEYS[keys.ENDED_INDEX]}
                    else:
                        if next_start is None:
                            break  # this shard of this state is done
                        after = next_start
                        if not found:
                            budget -= 1  # a page of jobs that ended after the run began counts too
        self.ctx.store.delete(run_key)
        return Redriven(retried, skipped, False)

    def purge(self, principal: Principal, command: Purge, *, budget: int = PURGE_BUDGET,
              time_left_ms: TimeLeft | None = None) -> Purged:  # fmt: skip
        """Delete the queue's jobs that are not running (of one state, if given) and were
        created before the run began, with their guards and messages, up to a budget of
        jobs a call (and PURGE_READS read). Each delete is conditional on the job's state,
        so a job claimed since it was read is kept."""
        require_queue(principal, command.type)
        now = self.ctx.clock.now()
        run_key, started, start = self._open_run("purge", f"{command.type}|{command.state or ''}", now)
        span = self.ctx.queue_settings.of(command.type).span
        # A run goes on in the shard it stopped in: the TPK of its start key names it (a key of
        # only TPK: that shard from its start).
        shard = keys.shard_of_partition(str(start["TPK"])) if start and "TPK" in start else 0
        after = start if start and len(start) > 1 else None
        deleted = read = 0
        while shard < span:
            e = Expr()
            condition = (f"{e.n('TPK')} = {e.v(keys.type_partition(command.type, shard))} AND "
                         f"{e.n('CSK')} <= {e.v(keys.created_key(started, keys.KEY_HIGH))}")  # fmt: skip
            while True:
                if deleted >= budget or read >= PURGE_READS or _out_of_time(time_left_ms):
                    self._save_run(run_key, started, after or {"TPK": keys.type_partition(command.type, shard)}, now)
                    return Purged(deleted, True)
                limit = min(budget - deleted, PURGE_READS - read, 500)
                # The index holds keys only. Without a state, a delete's condition alone spares the
                # few running jobs; with one, reading the jobs first (a read costs a tenth of the
                # failed conditional delete it saves) skips those of other states.
                victims, next_start = self.ctx.store.query(condition, e, index=keys.TYPE_INDEX, limit=limit, start_key=after)
                read += limit if next_start is not None else len(victims)
                states = self._states_of(victims) if command.state is not None else {}
                for victim in victims:
                    if _out_of_time(time_left_ms):
                        break
                    job_id = keys.job_id_of(str(victim["PK"]))
                    if (command.state is None or states.get(job_id) == command.state) and self._delete_unless_running(
                        job_id, command.state
                    ):
                        deleted += 1
                    after = {name: victim[name] for name in keys.INDEX_KEYS[keys.TYPE_INDEX]}
                else:
                    if next_start is None:
                        break  # this shard is done
                    after = next_start
            shard, after = shard + 1, None
        self.ctx.store.delete(run_key)
        return Purged(deleted, False)

    def _states_of(self, victims: list[Item]) -> dict[str, str]:
        found = self.ctx.store.batch_get(({"PK": str(v["PK"]), "SK": str(v["SK"])} for v in victims), consistent=False)
        return {str(i["id"]): str(i.get("state")) for i in found}

    def _delete_unless_running(self, job_id: str, state: str | None) -> bool:
        d = Expr()
        kept = f"{d.n('state')} = {d.v(state)}" if state else f"{d.n('state')} <> {d.v(JobState.RUNNING.value)}"
        try:
            old = self.ctx.store.delete(keys.job_key(job_id), condition=f"attribute_exists({d.n('PK')}) AND {kept}", expr=d)
        except ConditionFailed:
            return False  # claimed, changed or deleted since it was read
        assert old is not None
        job = Job.from_item(old)
        if job.unique_key:
            release_guard_of(self.ctx, job.unique_key, job.id)
        if job.msg_count:
            delete_messages(self.ctx, job.id)
        return True
