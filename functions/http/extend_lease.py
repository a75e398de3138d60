"""POST /v1/jobs/{id}/extend: the lease holder's heartbeat."""

from jobcore.commands.leases import ExtendLease, parse_extend
from jobcore.http import SERVICE_ROLES, Call, Response, endpoint


@endpoint(roles=SERVICE_ROLES, parse=parse_extend)
def handler(call: Call[ExtendLease]) -> Response:
    return Response(200, call.engine.leasing.extend(call.principal, call.command).to_wire(with_lease_token=True))
