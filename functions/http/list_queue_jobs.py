"""GET /v1/queues/{type}/jobs: a queue's claimable jobs, oldest first."""

from jobcore.api import SERVICE_ROLES, Request, Response, endpoint


def list_queue_jobs(request: Request) -> Response:
    page = request.service.queue_jobs(request.path("type"), request.query)
    return Response(200, {"data": [job.to_wire() for job in page.data], "next_cursor": page.next_cursor})


handler = endpoint(roles=SERVICE_ROLES)(list_queue_jobs)
