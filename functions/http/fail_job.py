"""POST /v1/jobs/{id}/fail: a failed attempt; retried after a delay while retries remain."""

from jobcore.commands.leases import FailJob, parse_fail
from jobcore.http import SERVICE_ROLES, Call, Response, endpoint


@endpoint(roles=SERVICE_ROLES, parse=parse_fail)
def handler(call: Call[FailJob]) -> Response:
    return Response(200, call.engine.leasing.fail(call.principal, call.command).to_wire())
