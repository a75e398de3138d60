"""GET /v1/jobs/{id}/messages: the job's appended messages, oldest first."""

from jobcore.commands.status import ListMessages, parse_messages
from jobcore.http import OWNER_ROLES, Call, Response, endpoint


@endpoint(roles=OWNER_ROLES, parse=parse_messages)
def handler(call: Call[ListMessages]) -> Response:
    page = call.engine.listing.messages(call.principal, call.command)
    return Response(200, {"data": [m.to_wire() for m in page.data], "next_cursor": page.next_cursor})
