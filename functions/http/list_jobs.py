"""GET /v1/jobs: list jobs, newest first; a user sees only own jobs."""

from jobcore.api import OWNER_ROLES, Request, Response, endpoint


def list_jobs(request: Request) -> Response:
    page = request.service.list_jobs(request.principal, request.query)
    return Response(200, {"data": [job.to_wire() for job in page.data], "next_cursor": page.next_cursor})


handler = endpoint(roles=OWNER_ROLES)(list_jobs)
