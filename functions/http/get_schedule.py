"""GET /v1/schedules/{name}: one schedule, with its next and last run."""

from jobcore.commands.schedules import ScheduleByName, parse_schedule_by_name
from jobcore.http import SERVICE_ROLES, Call, Response, endpoint


@endpoint(roles=SERVICE_ROLES, parse=parse_schedule_by_name)
def handler(call: Call[ScheduleByName]) -> Response:
    return Response(200, call.engine.schedules.get(call.principal, call.command).to_wire())
