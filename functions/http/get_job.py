"""GET /v1/jobs/{id}: the job (a user's own only)."""

from jobcore.commands.jobs import JobById, parse_job_by_id
from jobcore.http import OWNER_ROLES, Call, Response, endpoint


@endpoint(roles=OWNER_ROLES, parse=parse_job_by_id)
def handler(call: Call[JobById]) -> Response:
    return Response(200, call.engine.listing.get(call.principal, call.command).to_wire())
