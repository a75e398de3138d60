"""POST /v1/jobs/{id}/retry: an error or cancelled job back to pending, its attempts at 0."""

from jobcore.commands.jobs import JobById, parse_job_by_id
from jobcore.http import SERVICE_ROLES, Call, Response, endpoint


@endpoint(roles=SERVICE_ROLES, parse=parse_job_by_id)
def handler(call: Call[JobById]) -> Response:
    return Response(200, call.engine.recovery.retry(call.principal, call.command).to_wire())
