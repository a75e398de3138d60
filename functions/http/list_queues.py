"""GET /v1/queues: queue names, in name order."""

from jobcore.commands.status import ListQueues, parse_queues
from jobcore.http import SERVICE_ROLES, Call, Response, endpoint


@endpoint(roles=SERVICE_ROLES, parse=parse_queues)
def handler(call: Call[ListQueues]) -> Response:
    page = call.engine.listing.queues(call.principal, call.command)
    return Response(200, {"data": page.data, "next_cursor": page.next_cursor})
