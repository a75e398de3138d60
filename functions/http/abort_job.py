"""POST /v1/jobs/{id}/abort: release the lease; the job is claimable again at once."""

from jobcore.api import SERVICE_ROLES, Request, Response, endpoint


def abort_job(request: Request) -> Response:
    return Response(200, request.service.abort(request.principal, request.path("id"), request.json()).to_wire())


handler = endpoint(roles=SERVICE_ROLES)(abort_job)
