"""PATCH /v1/jobs/{id}: set fields of an idle or pending job; If-Match: a version."""

from jobcore.commands.jobs import PatchJob, parse_patch
from jobcore.http import SERVICE_ROLES, Call, Response, endpoint


@endpoint(roles=SERVICE_ROLES, parse=parse_patch)
def handler(call: Call[PatchJob]) -> Response:
    return Response(200, call.engine.admin.patch(call.principal, call.command).to_wire())
