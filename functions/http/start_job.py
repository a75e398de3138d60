"""POST /v1/jobs/{id}/start: lease one job by id."""

from jobcore.api import SERVICE_ROLES, Request, Response, endpoint


def start_job(request: Request) -> Response:
    job = request.service.start(request.principal, request.path("id"), request.json())
    request.metric("JobsClaimed")
    return Response(200, job.to_wire(with_lease_token=True))


handler = endpoint(roles=SERVICE_ROLES)(start_job)
