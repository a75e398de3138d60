"""PUT /v1/schedules/{name}: create (201) or replace (200) a recurring job."""

from jobcore.commands.schedules import PutSchedule, parse_put_schedule
from jobcore.http import SERVICE_ONLY, Call, Response, endpoint


@endpoint(roles=SERVICE_ONLY, parse=parse_put_schedule)
def handler(call: Call[PutSchedule]) -> Response:
    schedule, created = call.engine.schedules.put(call.principal, call.command)
    return Response(201 if created else 200, schedule.to_wire())
