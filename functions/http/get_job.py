"""GET /v1/jobs/{id}: one job; users only their own."""

from jobcore.api import OWNER_ROLES, Request, Response, endpoint


def get_job(request: Request) -> Response:
    return Response(200, request.service.get(request.principal, request.path("id")).to_wire())


handler = endpoint(roles=OWNER_ROLES)(get_job)
