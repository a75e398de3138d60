"""POST /v1/jobs/{id}/cancel: cancel now, or ask the worker of a running job to stop."""

from jobcore.commands.jobs import JobById, parse_job_by_id
from jobcore.http import OWNER_ROLES, Call, Response, endpoint


@endpoint(roles=OWNER_ROLES, parse=parse_job_by_id)
def handler(call: Call[JobById]) -> Response:
    return Response(200, call.engine.progress.cancel(call.principal, call.command).to_wire())
