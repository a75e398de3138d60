"""POST /v1/batch: creates, updates, deletes and dependency checks, all or nothing."""

from jobcore.commands.jobs import Batch, parse_batch
from jobcore.http import SERVICE_ROLES, Call, Response, endpoint


@endpoint(roles=SERVICE_ROLES, parse=parse_batch)
def handler(call: Call[Batch]) -> Response:
    outcome = call.engine.batches.batch(call.principal, call.command)
    created, updated = [job.to_wire() for job in outcome.created], [job.to_wire() for job in outcome.updated]
    return Response(200, {"created": created, "updated": updated, "deleted": outcome.deleted})
