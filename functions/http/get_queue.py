"""GET /v1/queues/{type}: the queue with its counts by state, lag and settings."""

from jobcore.commands.queues import GetQueue, parse_get_queue
from jobcore.http import SERVICE_ROLES, Call, Response, endpoint


@endpoint(roles=SERVICE_ROLES, parse=parse_get_queue)
def handler(call: Call[GetQueue]) -> Response:
    return Response(200, call.engine.queues.get(call.principal, call.command).to_wire())
