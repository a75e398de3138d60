"""POST /v1/jobs/{id}/start: lease one job by id, under the rules of a claim."""

from jobcore.commands.leases import StartJob, parse_start
from jobcore.http import SERVICE_ROLES, Call, Response, endpoint


@endpoint(roles=SERVICE_ROLES, parse=parse_start)
def handler(call: Call[StartJob]) -> Response:
    return Response(200, call.engine.leasing.start(call.principal, call.command).to_wire(with_lease_token=True))
