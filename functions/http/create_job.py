"""POST /v1/jobs: create a job; with "unique", return the unfinished job of the same type+ref_id."""

from jobcore.commands.jobs import CreateJob, parse_create
from jobcore.http import SERVICE_ROLES, Call, Response, endpoint


@endpoint(roles=SERVICE_ROLES, parse=parse_create)
def handler(call: Call[CreateJob]) -> Response:
    outcome = call.engine.creating.create(call.principal, call.command)
    return Response(201 if outcome.created else 200, outcome.job.to_wire())
