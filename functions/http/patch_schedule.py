"""PATCH /v1/schedules/{name}: pause or resume a schedule (a service or an admin), change its
cadence or its job (its service)."""

from jobcore.commands.schedules import PatchSchedule, parse_patch_schedule
from jobcore.http import SERVICE_ROLES, Call, Response, endpoint


@endpoint(roles=SERVICE_ROLES, parse=parse_patch_schedule)
def handler(call: Call[PatchSchedule]) -> Response:
    return Response(200, call.engine.schedules.patch(call.principal, call.command).to_wire())
