"""POST /v1/batch: creates, updates, deletes and dependency checks, all or nothing."""

from jobcore.api import SERVICE_ROLES, Request, Response, endpoint


def batch(request: Request) -> Response:
    outcome = request.service.batch(request.principal, request.json())
    if outcome.created:
        request.metric("JobsCreated", len(outcome.created))
    return Response(
        200,
        {
            "created": [job.to_wire() for job in outcome.created],
            "updated": [job.to_wire() for job in outcome.updated],
            "deleted": outcome.deleted,
        },
    )


handler = endpoint(roles=SERVICE_ROLES)(batch)
