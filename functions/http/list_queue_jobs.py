"""GET /v1/queues/{type}/jobs: claimable jobs of a queue, oldest first."""

from jobcore.commands.status import ListQueueJobs, parse_queue_jobs
from jobcore.http import SERVICE_ROLES, Call, Response, endpoint


@endpoint(roles=SERVICE_ROLES, parse=parse_queue_jobs)
def handler(call: Call[ListQueueJobs]) -> Response:
    page = call.engine.listing.queue_jobs(call.principal, call.command)
    return Response(200, {"data": [job.to_wire() for job in page.data], "next_cursor": page.next_cursor})
