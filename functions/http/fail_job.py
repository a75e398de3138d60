"""POST /v1/jobs/{id}/fail: report a failed attempt; retried later while retries remain."""

from jobcore.api import SERVICE_ROLES, Request, Response, endpoint


def fail_job(request: Request) -> Response:
    job = request.service.fail(request.principal, request.path("id"), request.json())
    request.metric("JobsFailed")
    return Response(200, job.to_wire())


handler = endpoint(roles=SERVICE_ROLES)(fail_job)
