"""GET /v1/jobs/{id}/result: the result of a finished job; 409 not_finished before."""

from jobcore.api import OWNER_ROLES, Request, Response, endpoint


def get_result(request: Request) -> Response:
    return Response(200, {"result": request.service.result(request.principal, request.path("id"))})


handler = endpoint(roles=OWNER_ROLES)(get_result)
