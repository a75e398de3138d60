"""POST /v1/jobs/{id}/abort: release a lease; the job is claimable again at once."""

from jobcore.commands.leases import AbortJob, parse_abort
from jobcore.http import SERVICE_ROLES, Call, Response, endpoint


@endpoint(roles=SERVICE_ROLES, parse=parse_abort)
def handler(call: Call[AbortJob]) -> Response:
    return Response(200, call.engine.leasing.abort(call.principal, call.command).to_wire())
