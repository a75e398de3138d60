"""POST /v1/jobs/{id}/status: title, status, progress, speeds, a message, completion, heartbeat."""

from jobcore.commands.status import PostStatus, parse_status
from jobcore.http import SERVICE_ROLES, Call, Response, endpoint


@endpoint(roles=SERVICE_ROLES, parse=parse_status)
def handler(call: Call[PostStatus]) -> Response:
    return Response(200, call.engine.progress.post_status(call.principal, call.command).to_wire())
