"""DELETE /v1/queues/{type}/jobs (admin): delete the queue's jobs that are not running."""

from jobcore.commands.queues import Purge, parse_purge
from jobcore.http import ADMIN_ROLES, Call, Response, endpoint


@endpoint(roles=ADMIN_ROLES, parse=parse_purge)
def handler(call: Call[Purge]) -> Response:
    done = call.engine.recovery.purge(call.principal, call.command, time_left_ms=call.time_left_ms)
    return Response(200, {"deleted": done.deleted, "more": done.more})
