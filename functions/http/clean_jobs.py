"""POST /v1/jobs/clean: delete what has expired, and idle or pending jobs past their deadline."""

from jobcore.commands.jobs import Sweep, parse_clean
from jobcore.http import SERVICE_ROLES, Call, Response, endpoint


@endpoint(roles=SERVICE_ROLES, parse=parse_clean)
def handler(call: Call[Sweep]) -> Response:
    outcome = call.engine.admin.sweep(call.principal, call.command)
    return Response(200, {"deleted": outcome.deleted, "more": outcome.more})
