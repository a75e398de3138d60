"""POST /v1/queues/{type}/redrive: retry the queue's failed jobs, up to a limit per call."""

from jobcore.commands.queues import Redrive, parse_redrive
from jobcore.http import SERVICE_ROLES, Call, Response, endpoint


@endpoint(roles=SERVICE_ROLES, parse=parse_redrive)
def handler(call: Call[Redrive]) -> Response:
    done = call.engine.recovery.redrive(call.principal, call.command, time_left_ms=call.time_left_ms)
    return Response(200, {"retried": done.retried, "skipped": done.skipped, "more": done.more})
