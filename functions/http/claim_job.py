"""POST /v1/queues/{type}/claim: lease the next available job of a queue; 204 when none."""

from jobcore.commands.leases import ClaimJob, parse_claim
from jobcore.http import SERVICE_ROLES, Call, Response, endpoint


@endpoint(roles=SERVICE_ROLES, parse=parse_claim)
def handler(call: Call[ClaimJob]) -> Response:
    job = call.engine.leasing.claim(call.principal, call.command, time_left_ms=call.time_left_ms())
    return Response(204) if job is None else Response(200, job.to_wire(with_lease_token=True))
