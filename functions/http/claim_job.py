"""POST /v1/queues/{type}/claim: lease the next available job of a queue; 204 when none."""

from jobcore.api import SERVICE_ROLES, Request, Response, endpoint


def claim_job(request: Request) -> Response:
    service = request.service
    conflicts_before = service.claim_conflicts
    job = service.claim(request.principal, request.path("type"), request.json(), time_left_ms=request.time_left_ms())
    if service.claim_conflicts > conflicts_before:
        request.metric("LeaseConflicts", service.claim_conflicts - conflicts_before)
    if job is None:
        return Response(204)
    request.metric("JobsClaimed")
    return Response(200, job.to_wire(with_lease_token=True))


handler = endpoint(roles=SERVICE_ROLES)(claim_job)
