"""POST /v1/jobs/{id}/status: title, status, progress, speeds, a message, completion; heartbeat."""

from jobcore.api import SERVICE_ROLES, Request, Response, endpoint


def post_status(request: Request) -> Response:
    job = request.service.post_status(request.principal, request.path("id"), request.json())
    return Response(200, job.to_wire())


handler = endpoint(roles=SERVICE_ROLES)(post_status)
