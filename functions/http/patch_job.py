"""PATCH /v1/jobs/{id}: set fields of an idle or pending job; If-Match: <version>."""

from jobcore.api import SERVICE_ROLES, Request, Response, endpoint


def patch_job(request: Request) -> Response:
    job = request.service.patch(
        request.principal, request.path("id"), request.json(), if_match=request.integer_header("If-Match")
    )
    return Response(200, job.to_wire())


handler = endpoint(roles=SERVICE_ROLES)(patch_job)
