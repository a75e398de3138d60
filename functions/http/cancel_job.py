"""POST /v1/jobs/{id}/cancel: cancel now, or ask the running worker to stop."""

from jobcore.api import OWNER_ROLES, Request, Response, endpoint


def cancel_job(request: Request) -> Response:
    return Response(200, request.service.cancel(request.principal, request.path("id")).to_wire())


handler = endpoint(roles=OWNER_ROLES)(cancel_job)
