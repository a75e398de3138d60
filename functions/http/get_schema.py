"""GET /v1/schema: the JSON Schema of a job."""

from jobcore.api import ANY_ROLE, Request, Response, endpoint
from jobcore.schema import job_schema


def get_schema(request: Request) -> Response:
    return Response(200, job_schema())


handler = endpoint(roles=ANY_ROLE)(get_schema)
