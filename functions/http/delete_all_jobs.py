"""DELETE /v1/jobs: delete all jobs (admin), a bounded amount per call."""

from jobcore.api import ADMIN_ROLES, Request, Response, endpoint


def delete_all_jobs(request: Request) -> Response:
    outcome = request.service.delete_all()
    return Response(200, {"deleted": outcome.deleted, "more": outcome.more})


handler = endpoint(roles=ADMIN_ROLES)(delete_all_jobs)
