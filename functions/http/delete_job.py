"""DELETE /v1/jobs/{id}: delete a job with its guard and messages; the job as it was."""

from jobcore.commands.jobs import JobById, parse_job_by_id
from jobcore.http import SERVICE_ROLES, Call, Response, endpoint


@endpoint(roles=SERVICE_ROLES, parse=parse_job_by_id)
def handler(call: Call[JobById]) -> Response:
    return Response(200, call.engine.admin.delete(call.principal, call.command).to_wire())
