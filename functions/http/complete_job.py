"""POST /v1/jobs/{id}/complete: finish a job with its result."""

from jobcore.commands.leases import CompleteJob, parse_complete
from jobcore.http import SERVICE_ROLES, Call, Response, endpoint


@endpoint(roles=SERVICE_ROLES, parse=parse_complete)
def handler(call: Call[CompleteJob]) -> Response:
    return Response(200, call.engine.leasing.complete(call.principal, call.command).to_wire())
