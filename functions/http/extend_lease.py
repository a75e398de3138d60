"""POST /v1/jobs/{id}/extend: the lease holder moves locked_until; the answer carries cancel_requested."""

from jobcore.api import SERVICE_ROLES, Request, Response, endpoint


def extend_lease(request: Request) -> Response:
    job = request.service.extend(request.principal, request.path("id"), request.json())
    return Response(200, job.to_wire(with_lease_token=True))


handler = endpoint(roles=SERVICE_ROLES)(extend_lease)
