"""GET /v1/schema: the JSON Schema of a job."""

from jobcore.commands import Parts
from jobcore.http import ANY_ROLE, Call, Response, endpoint
from jobcore.schema import job_schema
from jobcore.settings import Limits


def parse_nothing(parts: Parts, limits: Limits) -> None:
    parts.no_query(limits)


@endpoint(roles=ANY_ROLE, parse=parse_nothing)
def handler(call: Call[None]) -> Response:
    return Response(200, job_schema())
