"""GET /v1/queues: queue objects (counts, lag, settings), by name; `prefix` narrows them."""

from jobcore.commands.queues import ListQueues, parse_list_queues
from jobcore.http import SERVICE_ROLES, Call, Response, endpoint


@endpoint(roles=SERVICE_ROLES, parse=parse_list_queues)
def handler(call: Call[ListQueues]) -> Response:
    page = call.engine.queues.page(call.principal, call.command)
    return Response(200, {"data": [q.to_wire() for q in page.data], "next_cursor": page.next_cursor})
