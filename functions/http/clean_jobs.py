"""POST /v1/jobs/clean: delete jobs past retention and idle/pending jobs past their deadline."""

from jobcore.api import SERVICE_ROLES, Request, Response, endpoint


def clean_jobs(request: Request) -> Response:
    outcome = request.service.clean()
    return Response(200, {"deleted": outcome.deleted, "more": outcome.more})


handler = endpoint(roles=SERVICE_ROLES)(clean_jobs)
