"""POST /v1/claim: lease from the first of the listed queues (`types`) that has a job."""

from jobcore.commands.leases import ClaimJob, parse_claim_any
from jobcore.http import SERVICE_ROLES, Call, Response, endpoint, leased_answer


@endpoint(roles=SERVICE_ROLES, parse=parse_claim_any)
def handler(call: Call[ClaimJob]) -> Response:
    return leased_answer(
        call.command, call.engine.leasing.claim_many(call.principal, call.command, time_left_ms=call.time_left_ms())
    )
