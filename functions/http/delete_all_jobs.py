"""DELETE /v1/jobs (admin): delete every job, a page of work per call; any filter is a 400."""

from jobcore.commands.jobs import Sweep, parse_delete_all
from jobcore.http import ADMIN_ROLES, Call, Response, endpoint


@endpoint(roles=ADMIN_ROLES, parse=parse_delete_all)
def handler(call: Call[Sweep]) -> Response:
    outcome = call.engine.admin.sweep(call.principal, call.command)
    return Response(200, {"deleted": outcome.deleted, "more": outcome.more})
