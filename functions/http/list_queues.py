"""GET /v1/queues: queue names."""

from jobcore.api import SERVICE_ROLES, Request, Response, endpoint


def list_queues(request: Request) -> Response:
    page = request.service.queues(request.query)
    return Response(200, {"data": page.data, "next_cursor": page.next_cursor})


handler = endpoint(roles=SERVICE_ROLES)(list_queues)
