"""PATCH /v1/schedules/{name}: pause or resume a schedule, change its cadence or its job."""

from jobcore.commands.schedules import PatchSchedule, parse_patch_schedule
from jobcore.http import SERVICE_ONLY, Call, Response, endpoint


@endpoint(roles=SERVICE_ONLY, parse=parse_patch_schedule)
def handler(call: Call[PatchSchedule]) -> Response:
    return Response(200, call.engine.schedules.patch(call.principal, call.command).to_wire())
