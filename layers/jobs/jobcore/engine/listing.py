"""Reading: one job, its result, many by id, listings by filter, queues, a queue's claimable
jobs, a job's messages. Each listing is a Query on the index its filters select, never a Scan;
every page comes from the store's one paging helper, with a cursor sealed to the listing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, TypeVar

from msgspec import Struct

from .. import keys
from ..clock import epoch_seconds, to_iso
from ..commands.jobs import JobById, ListJobs
from ..commands.status import ListMessages, ListQueueJobs
from ..cursors import open_cursor, seal
from ..errors import InvalidRequest, NotFinished, NotFound
from ..model import Job, JobState, Principal
from ..store import Expr, Item
from .context import Family
from .scope import require_queue
from .writes import visible

T = TypeVar("T")
# Keys a listing looks at in one request before it answers a short page with a cursor: a
# filter that keeps few jobs must not hold a request until the API's timeout.
LOOKED_MAX = 1000


class Page(Struct, Generic[T], frozen=True):
    data: list[T]
    next_cursor: str | None


class Message(Struct, frozen=True):
    message: str
    at: str

    def to_wire(self) -> dict[str, str]:
        return {"message": self.message, "at": self.at}


def _not_expired(e: Expr, now: datetime) -> str:
    return f"(attribute_not_exists({e.n('expires_at')}) OR {e.n('expires_at')} > {e.v(epoch_seconds(now))})"


class Listing(Family):
    # -- one job ----------------------------------------------------------------------------
    def load_for(self, principal: Principal, job_id: str) -> Job:
        """The job, if the caller may see it: 404 for missing, expired and another user's."""
        job = visible(self.ctx.store.get(keys.job_key(job_id)), self.ctx.clock.now())
        if job is None or not principal.sees(job):
            raise NotFound(f"job {job_id} not found")
        return job

    def get(self, principal: Principal, command: JobById) -> Job:
        return self.load_for(principal, command.job_id)

    def result(self, principal: Principal, command: JobById) -> Any:
        job = self.load_for(principal, command.job_id)
        if job.state is not JobState.FINISHED:
            raise NotFinished(f"job {job.id} is {job.state.value}, not finished", {"state": job.state.value})
        return job.result

    def many(self, principal: Principal, ids: tuple[str, ...]) -> Page[Job]:
        """These jobs, in the order asked, those missing or not the caller's left out."""
        now = self.ctx.clock.now()
        found = {str(i.get("id")): i for i in self.ctx.store.batch_get([keys.job_key(i) for i in dict.fromkeys(ids)])}
        jobs = [visible(found.get(job_id), now) for job_id in ids]
        return Page([j for j in jobs if j is not None and principal.sees(j)], None)

    # -- pages --------------------------------------------------------------------------------
    def _page(self, scope: str, cursor: str | None, read: Callable[[Item | None], tuple[list[Item], Item | None]]) -> Page[Item]:
        start = open_cursor(self.ctx.cursor_key(), scope, cursor) if cursor else None
        items, next_start = read(start)
        return Page(items, seal(self.ctx.cursor_key(), scope, next_start) if next_start else None)

    def messages(self, principal: Principal, command: ListMessages) -> Page[Message]:
        self.load_for(principal, command.job_id)
        e = Expr()
        condition = (
            f"{e.n('PK')} = {e.v(keys.job_key(command.job_id)['PK'])} AND begins_with({e.n('SK')}, {e.v(keys.MESSAGE_PREFIX)})"
        )
        page = self._page(
            f"messages|{command.job_id}|{principal.sub}",
            command.cursor,
            lambda start: self.ctx.store.page(condition, e, limit=command.limit, start_key=start, consistent=True),
        )
        return Page([Message(str(i["message"]), str(i["at"])) for i in page.data], page.next_cursor)

    def list_jobs(self, principal: Principal, command: ListJobs) -> Page[Job]:
        """Newest first, from the index its filters select; a user sees only own jobs."""
        if command.ids is not None:
            return self.many(principal, command.ids)
        if command.type is not None:
            require_queue(principal, command.type)
        now = self.ctx.clock.now()
        owner = command.owner
        if principal.is_user:
            if owner is not None and owner != principal.sub:
                return Page([], None)
            owner = principal.sub
        # Both bounds inclusive: "<time>#~" sorts after every id created in that millisecond.
        low = to_iso(command.created_from) if command.created_from else None
        high = to_iso(command.created_to) + "#" + keys.KEY_HIGH if command.created_to else None
        if low and high and low > high:
            return Page([], None)  # DynamoDB refuses a BETWEEN whose bounds are reversed
        scope = "|".join(
            ["jobs", principal.sub, *(str(x) for x in (command.type, command.ref_id, owner, command.state, low, high))]
        )
        if owner is None and command.type is None:
            kept = _listed(principal, now, state=command.state, ref_id=command.ref_id)
            return self._list_merged(command, scope, low, high, (keys.ALL_INDEX, "APK", keys.all_partitions()), kept)
        kept = _listed(principal, now, state=command.state, job_type=command.type, ref_id=command.ref_id)
        if owner is None and command.ref_id is None and command.type is not None:
            span = self.ctx.queue_settings.of(command.type).span
            if span > 1:  # a sharded queue: its type-created partitions, merged
                shards = (keys.TYPE_INDEX, "TPK", keys.type_partitions(command.type, span))
                return self._list_merged(command, scope, low, high, shards, kept)
        if owner is not None:
            index, partition_attr, partition = keys.OWNER_INDEX, "OPK", keys.owner_partition(owner)
        elif command.type is not None and command.ref_id is not None:
            index, partition_attr, partition = keys.REF_INDEX, "RPK", keys.ref_partition(command.type, command.ref_id)
        else:
            assert command.type is not None
            index, partition_attr, partition = keys.TYPE_INDEX, "TPK", keys.type_partition(command.type)
        e = Expr()
        condition = f"{e.n(partition_attr)} = {e.v(partition)}" + _created_range(e, low, high)
        page = self._page(
            scope,
            command.cursor,
            lambda start: self.ctx.store.fetched_page(
                condition,
                e,
                index=index,
                limit=command.limit,
                keep=kept,
                start_key=start,
                forward=False,
                max_looked=LOOKED_MAX,
            ),
        )
        return Page([Job.from_item(i) for i in page.data], page.next_cursor)

    def _list_merged(self, command: ListJobs, scope: str, low: str | None, high: str | None,
                     where: tuple[str, str, list[str]], kept: Callable[[Item], bool]) -> Page[Job]:  # fmt: skip
        """A listing over several partitions of an index (`where`: the index, its partition
        attribute, the partitions): all-created (no owner or type) or a sharded queue's
        type-created. The newest keys of each partition, merged newest first, then the jobs
        themselves (one BatchGetItem). The cursor is the last CSK looked at: the next page
        reads below it."""
        index, attribute, partitions = where
        after = str(open_cursor(self.ctx.cursor_key(), scope, command.cursor).get("CSK", "")) if command.cursor else None
        upper = min(high, after) if high and after else (after or high)
        found: list[Item] = []
        looked_total = 0
        while True:
            if low and upper and low > upper:
                return Page([Job.from_item(i) for i in found], None)
            room = command.limit - len(found)
            candidates: list[Item] = []
            for partition in partitions:
                e = Expr()
                condition = f"{e.n(attribute)} = {e.v(partition)}" + _created_range(e, low, upper)
                # room + 2: the item at the cursor itself comes back (the bound is inclusive)
                # and is dropped; one more beyond the page says whether more exist.
                items, _ = self.ctx.store.query(condition, e, index=index, limit=room + 2, forward=False)
                candidates += [i for i in items if i["CSK"] != after]
            candidates.sort(key=lambda i: str(i["CSK"]), reverse=True)
            looked = candidates[:room]
            looked_total += len(looked)
            fetched = {str(i["PK"]): i for i in self.ctx.store.batch_get(
                ({"PK": str(k["PK"]), "SK": str(k["SK"])} for k in looked), consistent=False)}  # fmt: skip
            found += [fetched[str(k["PK"])] for k in looked if str(k["PK"]) in fetched and kept(fetched[str(k["PK"])])]
            if len(candidates) <= room:
                return Page([Job.from_item(i) for i in found], None)
            after = upper = str(looked[-1]["CSK"])
            if len(found) >= command.limit or looked_total >= LOOKED_MAX:
                return Page([Job.from_item(i) for i in found], seal(self.ctx.cursor_key(), scope, {"CSK": after}))

    # -- queues -------------------------------------------------------------------------------
    def queue_jobs(self, principal: Principal, command: ListQueueJobs) -> Page[Job]:
        """Claimable jobs of a queue in the order claims take them: most urgent priority level
        first, oldest first within one; `include_leased` adds running ones. One Query per
        level the page spans."""
        require_queue(principal, command.type)
        now = self.ctx.clock.now()
        bound = keys.visible_key(to_iso(now), keys.KEY_HIGH)
        scope = f"queue-jobs|{command.type}|{command.include_leased}|{principal.sub}"
        settings = self.ctx.queue_settings.of(command.type)
        if settings.span > 1:
            return self._sharded_queue_jobs(command, scope, settings.levels, settings.span, now)
        partitions = [keys.queue_partition(command.type, level) for level in settings.levels]
        # A cursor is where the next page starts: a start key of the queue index, or only the
        # QPK of the level to start from the beginning of.
        resume = open_cursor(self.ctx.cursor_key(), scope, command.cursor) if command.cursor else None
        if resume is not None and resume.get("QPK") not in partitions:
            raise InvalidRequest.fields({"cursor": "not a cursor of this listing"})
        if not partitions:
            return Page([], None)  # no job was ever put in this queue
        first = partitions.index(str(resume["QPK"])) if resume else 0
        start_key: Item | None = resume if resume and len(resume) > 1 else None
        found: list[Item] = []
        next_resume: Item | None = None
        for at, partition in enumerate(partitions[first:], start=first):
            e = Expr()
            condition = f"{e.n('QPK')} = {e.v(partition)}"
            filters = [_not_expired(e, now)]
            if command.include_leased:
                filters.append(f"({e.n('QSK')} <= {e.v(bound)} OR {e.n('state')} = {e.v(JobState.RUNNING.value)})")
            else:
                condition += f" AND {e.n('QSK')} <= {e.v(bound)}"
            items, next_start = self.ctx.store.page(condition, e, index=keys.QUEUE_INDEX, limit=command.limit - len(found),
                                                    start_key=start_key, filter_expression=" AND ".join(filters))  # fmt: skip
            found += items
            start_key = None
            if next_start is not None:
                next_resume = next_start
                break
            if len(found) >= command.limit:
                next_resume = {"QPK": partitions[at + 1]} if at + 1 < len(partitions) else None
                break
        return self._queue_page(scope, found, next_resume, now)

    def _queue_page(self, scope: str, found: list[Item], next_resume: Item | None, now: datetime) -> Page[Job]:
        # The queue index holds only what claims need: fetch the jobs themselves.
        by_id = {i["id"]: i for i in self.ctx.store.batch_get([keys.job_key(str(i["id"])) for i in found])} if found else {}
        jobs = [visible(by_id.get(i["id"]), now) for i in found]
        next_cursor = seal(self.ctx.cursor_key(), scope, next_resume) if next_resume else None
        return Page([j for j in jobs if j is not None], next_cursor)

    def _sharded_queue_jobs(self, command: ListQueueJobs, scope: str, levels: tuple[int, ...], span: int,
                            now: datetime) -> Page[Job]:  # fmt: skip
        """queue_jobs of a sharded queue: each level's shards merged by when their jobs became
        claimable (one Query per shard of each level the page spans). The cursor is the level
        and the last QSK taken: the next page reads after it."""
        resume = open_cursor(self.ctx.cursor_key(), scope, command.cursor) if command.cursor else None
        if resume is not None and resume.get("level") not in levels:
            raise InvalidRequest.fields({"cursor": "not a cursor of this listing"})
        bound = keys.visible_key(to_iso(now), keys.KEY_HIGH)
        after = str(resume["QSK"]) if resume and resume.get("QSK") else None
        first = levels.index(int(resume["level"])) if resume else 0
        found: list[Item] = []
        for at, level in enumerate(levels[first:], start=first):
            room = command.limit - len(found)
            candidates: list[Item] = []
            more = False
            for shard in range(span):
                e = Expr()
                condition = f"{e.n('QPK')} = {e.v(keys.queue_partition(command.type, level, shard))}"
                filters = [_not_expired(e, now)]
                if command.include_leased:
                    filters.append(f"({e.n('QSK')} <= {e.v(bound)} OR {e.n('state')} = {e.v(JobState.RUNNING.value)})")
                    condition += f" AND {e.n('QSK')} > {e.v(after)}" if after else ""
                elif after and after > bound:
                    continue
                elif after:
                    condition += f" AND {e.n('QSK')} BETWEEN {e.v(after)} AND {e.v(bound)}"
                else:
                    condition += f" AND {e.n('QSK')} <= {e.v(bound)}"
                items, next_start = self.ctx.store.page(condition, e, index=keys.QUEUE_INDEX, limit=room + 1,
                                                        filter_expression=" AND ".join(filters))  # fmt: skip
                candidates += [i for i in items if i["QSK"] != after]
                more = more or next_start is not None
            candidates.sort(key=lambda i: str(i["QSK"]))
            found += candidates[:room]
            after = None
            if more or len(candidates) > room:
                return self._queue_page(scope, found, {"level": level, "QSK": str(found[-1]["QSK"])}, now)
            if len(found) >= command.limit:
                following = {"level": levels[at + 1]} if at + 1 < len(levels) else None
                return self._queue_page(scope, found, following, now)
        return self._queue_page(scope, found, None, now)


def _listed(principal: Principal, now: datetime, *, state: str | None = None, job_type: str | None = None,
            ref_id: str | None = None) -> Callable[[Item], bool]:  # fmt: skip
    """What a listing keeps of the jobs its index names: the filters an index that projects only
    keys cannot apply, the caller's reach and the expiry TTL has not acted on yet."""

    def keep(item: Item) -> bool:
        job = visible(item, now)
        return (
            job is not None
            and principal.sees(job)
            and (state is None or job.state.value == state)
            and (job_type is None or job.type == job_type)
            and (ref_id is None or job.ref_id == ref_id)
        )

    return keep


def _created_range(e: Expr, low: str | None, high: str | None) -> str:
    if low and high:
        return f" AND {e.n('CSK')} BETWEEN {e.v(low)} AND {e.v(high)}"
    if low:
        return f" AND {e.n('CSK')} >= {e.v(low)}"
    if high:
        return f" AND {e.n('CSK')} <= {e.v(high)}"
    return ""
