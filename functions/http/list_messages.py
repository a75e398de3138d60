"""GET /v1/jobs/{id}/messages: the appended messages, oldest first, paged."""

from jobcore.api import OWNER_ROLES, Request, Response, endpoint


def list_messages(request: Request) -> Response:
    page = request.service.messages(request.principal, request.path("id"), request.query)
    return Response(200, {"data": [m.to_wire() for m in page.data], "next_cursor": page.next_cursor})


handler = endpoint(roles=OWNER_ROLES)(list_messages)
