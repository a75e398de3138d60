"""POST /v1/jobs: create a job; with "unique", return the unfinished job of the same type+ref_id."""

from jobcore.api import SERVICE_ROLES, Request, Response, endpoint


def create_job(request: Request) -> Response:
    outcome = request.service.create(request.principal, request.json(), idempotency_key=request.header("Idempotency-Key"))
    if outcome.created:
        request.metric("JobsCreated")
    return Response(201 if outcome.created else 200, outcome.job.to_wire())


handler = endpoint(roles=SERVICE_ROLES)(create_job)
