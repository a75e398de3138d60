"""GET /v1/schedules: schedules by name, paged; `prefix` narrows them."""

from jobcore.commands.schedules import ListSchedules, parse_list_schedules
from jobcore.http import SERVICE_ROLES, Call, Response, endpoint


@endpoint(roles=SERVICE_ROLES, parse=parse_list_schedules)
def handler(call: Call[ListSchedules]) -> Response:
    page = call.engine.schedules.page(call.principal, call.command)
    return Response(200, {"data": [s.to_wire() for s in page.data], "next_cursor": page.next_cursor})
