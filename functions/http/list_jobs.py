"""GET /v1/jobs: jobs by filter, newest first, or many by id (`ids`); a user's own only."""

from jobcore.commands.jobs import ListJobs, parse_list
from jobcore.http import OWNER_ROLES, Call, Response, endpoint


@endpoint(roles=OWNER_ROLES, parse=parse_list)
def handler(call: Call[ListJobs]) -> Response:
    page = call.engine.listing.list_jobs(call.principal, call.command)
    return Response(200, {"data": [job.to_wire() for job in page.data], "next_cursor": page.next_cursor})
