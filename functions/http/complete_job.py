"""POST /v1/jobs/{id}/complete: finish a job with its result."""

from jobcore.api import SERVICE_ROLES, Request, Response, endpoint


def complete_job(request: Request) -> Response:
    job = request.service.complete(request.principal, request.path("id"), request.json())
    request.metric("JobsCompleted")
    return Response(200, job.to_wire())


handler = endpoint(roles=SERVICE_ROLES)(complete_job)
