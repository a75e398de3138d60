"""GET /v1/queues/{type}/history: jobs created, started, finished, failed, retried per minute."""

from jobcore.commands.queues import QueueHistory, parse_history
from jobcore.http import SERVICE_ROLES, Call, Response, endpoint


@endpoint(roles=SERVICE_ROLES, parse=parse_history)
def handler(call: Call[QueueHistory]) -> Response:
    return Response(200, {"data": call.engine.queues.history(call.principal, call.command)})
