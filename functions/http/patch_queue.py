"""PATCH /v1/queues/{type}: pause or resume the queue, make its claims strictly oldest first."""

from jobcore.commands.queues import PatchQueue, parse_patch_queue
from jobcore.http import SERVICE_ROLES, Call, Response, endpoint


@endpoint(roles=SERVICE_ROLES, parse=parse_patch_queue)
def handler(call: Call[PatchQueue]) -> Response:
    return Response(200, call.engine.queues.patch(call.principal, call.command).to_wire())
