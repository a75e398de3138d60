"""A job's progress: status posts (title, status, progress, speeds, a message, completion and
the holder's heartbeat in one write), and cancel."""

from __future__ import annotations

from typing import Any

from .. import keys
from ..clock import plus_ms, to_iso
from ..commands.jobs import JobById
from ..commands.status import PostStatus
from ..errors import ServiceUnavailable
from ..model import Job, JobState, Principal
from ..rules import (
    CANCEL,
    CANCEL_OWN,
    HOLD,
    REQUEST_CANCEL,
    REQUEST_CANCEL_OWN,
    UNLEASED_ONLY,
    AlreadyDone,
    OnlyRequest,
    Refused,
)
from ..wire import encode_json
from . import message_log
from .context import Family
from .writes import MAX_WRITE_ATTEMPTS, TERMINAL_REMOVES, Change, ended, terminal_sets, write


class Progress(Family):
    def post_status(self, principal: Principal, command: PostStatus) -> Job:
        now = self.ctx.clock.now()

        def sets(stamp: str) -> dict[str, Any]:
            values: dict[str, Any] = {}
            if command.new_title is not None:
                values["title"] = command.new_title
            if command.new_status is not None:
                values["status"] = command.new_status
            if command.progress is not None:
                values["progress"] = encode_json(command.progress)
            if command.speeds is not None:
                values["speeds"] = encode_json(list(command.speeds))
            if command.message is not None:
                values["last_message"] = command.message
            if command.complete:
                values.update(terminal_sets(self.ctx, command.job_id, JobState.FINISHED.value, now))
            elif command.extend_ms is not None:
                locked_until = to_iso(plus_ms(now, command.extend_ms))
                values["locked_until"] = locked_until
                values["QSK"] = keys.visible_key(locked_until, command.job_id)
            return values

        rule, given = (HOLD, {":token": command.lease_token}) if command.lease_token is not None else (UNLEASED_ONLY, {})
        change = Change(
            sets=sets,
            removes=TERMINAL_REMOVES if command.complete else (),
            increments=("msg_count",) if command.message is not None else (),
        )
        job = write(self.ctx, command.job_id, rule, given, change, now, scope=principal)
        if command.message is not None:
            # The job's write took the message (last_message, msg_count): now its log entry,
            # keyed by that write's stamp (message_log.py says why not one transaction).
            message_log.append(self.ctx, job.id, job.modified, command.message)
        return ended(self.ctx, job) if command.complete else job

    def cancel(self, principal: Principal, command: JobById) -> Job:
        """idle/pending (or running with an expired lease): cancelled now. running: sets
        `cancel_requested` for the worker to see. Ended already: no change."""
        now = self.ctx.clock.now()
        own = {":user": principal.sub} if principal.is_user else {}
        cancel, request = (CANCEL_OWN, REQUEST_CANCEL_OWN) if principal.is_user else (CANCEL, REQUEST_CANCEL)
        for _ in range(MAX_WRITE_ATTEMPTS):
            try:
                cancelled = Change(
                    sets=terminal_sets(self.ctx, command.job_id, JobState.CANCELLED.value, now), removes=TERMINAL_REMOVES
                )
                job = write(self.ctx, command.job_id, cancel, own, cancelled, now, scope=principal)
                return ended(self.ctx, job)
            except AlreadyDone as done:
                return Job.from_item(dict(done.item))
            except OnlyRequest:
                pass
            try:
                requested = Change(sets={"cancel_requested": True})
                return write(self.ctx, command.job_id, request, own, requested, now, scope=principal)
            except AlreadyDone as done:
                return Job.from_item(dict(done.item))
            except Refused:
                continue  # the lease ran out meanwhile: cancel it outright
        raise ServiceUnavailable(f"job {command.job_id} kept changing; retry")
