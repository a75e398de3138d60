"""POST /v1/queues/{type}/claim: lease the next available job of a queue (or up to
`max_jobs` of them); 204 when none."""

from jobcore.commands.leases import ClaimJob, parse_claim
from jobcore.http import SERVICE_ROLES, Call, Response, endpoint, leased_answer


@endpoint(roles=SERVICE_ROLES, parse=parse_claim)
def handler(call: Call[ClaimJob]) -> Response:
    return leased_answer(
        call.command, call.engine.leasing.claim_many(call.principal, call.command, time_left_ms=call.time_left_ms())
    )
