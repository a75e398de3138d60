"""GET /v1/jobs/{id}/result: the result of a finished job."""

from jobcore.commands.jobs import JobById, parse_job_by_id
from jobcore.http import OWNER_ROLES, Call, Response, endpoint


@endpoint(roles=OWNER_ROLES, parse=parse_job_by_id)
def handler(call: Call[JobById]) -> Response:
    return Response(200, {"result": call.engine.listing.result(call.principal, call.command)})
