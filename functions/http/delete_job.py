"""DELETE /v1/jobs/{id}: delete a job and its message log; returns the deleted job."""

from jobcore.api import SERVICE_ROLES, Request, Response, endpoint


def delete_job(request: Request) -> Response:
    return Response(200, request.service.delete(request.principal, request.path("id")).to_wire())


handler = endpoint(roles=SERVICE_ROLES)(delete_job)
