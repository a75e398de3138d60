"""docs/openapi.yaml, the template, the engine and the handlers agree: these fail on drift."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import yaml
from openapi_spec_validator import validate

from jobcore import errors
from jobcore.commands import jobs, leases, schedules, status
from jobcore.schema import job_schema
from localcloud.functions import api_routes
from localcloud.template import PROJECT_ROOT

SPEC_PATH = PROJECT_ROOT / "docs" / "openapi.yaml"
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
    return loaded


def spec_routes(spec: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {
        (method.upper(), path): operation["operationId"]
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


def test_the_spec_is_valid_openapi(spec):
    validate(spec)


def test_template_routes_and_spec_routes_are_the_same(spec, template):
    in_template = {(r.method, r.path): r.function.handler.split(".")[0] for r in api_routes(template)}
    assert in_template == spec_routes(spec)


def test_every_operation_names_a_handler_module_that_exists(spec):
    for (method, path), operation_id in spec_routes(spec).items():
        assert (PROJECT_ROOT / "functions" / "http" / f"{operation_id}.py").is_file(), (method, path)


def test_job_schema_matches_the_engine(spec):
    job = spec["components"]["schemas"]["Job"]
    engine = job_schema()
    assert set(job["required"]) == set(engine["required"])
    assert set(job["properties"]) == set(engine["properties"]) - {"lease_token"}
    leased = spec["components"]["schemas"]["JobWithLease"]
    assert set(leased["properties"]) == set(engine["properties"])
    states = spec["components"]["schemas"]["State"]["enum"]
    assert states == engine["properties"]["state"]["enum"]


def test_error_codes_match_the_engine(spec):
    schemas = spec["components"]["schemas"]
    assert schemas["Error"]["properties"]["error"] == {"$ref": "#/components/schemas/ErrorBody"}
    assert schemas["ErrorBody"]["properties"]["code"] == {"$ref": "#/components/schemas/ErrorCode"}
    assert set(schemas["ErrorCode"]["enum"]) == set(errors.ERRORS_BY_CODE) | {"internal_error"}


def test_every_error_class_of_the_engine_is_listed_by_its_code():
    """A new error class left out of ERRORS_BY_CODE would be missing from that check."""
    found: set[type[errors.JobsError]] = set()
    todo = [errors.JobsError]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.add(sub)
            todo.append(sub)
    bases = {errors.Conflict}  # a family's base, never raised itself
    assert {cls.code: cls for cls in found - bases} == errors.ERRORS_BY_CODE


@pytest.mark.parametrize(
    ("schema_name", "fields"),
    [
        ("CreateJob", jobs.CREATE_FIELDS),
        ("PatchJob", jobs.PATCH_FIELDS),
        ("PostStatus", status.STATUS_FIELDS),
        ("ClaimJob", leases.CLAIM_FIELDS),
        ("PutSchedule", schedules.PUT_FIELDS),
        ("PatchSchedule", schedules.PATCH_FIELDS),
        ("JobTemplate", schedules.JOB_FIELDS),
    ],
)
def test_request_bodies_match_the_engine(spec, schema_name, fields):
    schema = spec["components"]["schemas"][schema_name]
    assert set(schema["properties"]) == set(fields)
    assert schema["additionalProperties"] is False


def test_list_query_parameters_match_the_engine(spec):
    names = set()
    for declared in spec["paths"]["/v1/jobs"]["get"]["parameters"]:
        parameter = spec["components"]["parameters"][declared["$ref"].rsplit("/", 1)[1]] if "$ref" in declared else declared
        names.add(parameter["name"])
    assert names == set(jobs.LIST_FIELDS)


def test_engine_jobs_validate_against_the_spec(spec, api, svc, clock):
    """Jobs as the handlers answer them validate against the spec's schemas."""
    root = {"components": spec["components"]}
    created = api.call("POST", "/v1/jobs", principal=svc, body={"type": "t", "params": {"x": 1.5}, "owner": "User#1"})
    jsonschema.validate(created.body, {"$ref": "#/components/schemas/Job", **root})
    clock.advance(1)
    claimed = api.call("POST", "/v1/queues/t/claim", principal=svc, body={})
    jsonschema.validate(claimed.body, {"$ref": "#/components/schemas/JobWithLease", **root})
    clock.advance(1)
    status = api.call(
        "POST",
        f"/v1/jobs/{claimed.body['id']}/status",
        principal=svc,
        body={
            "lease_token": claimed.body["lease_token"],
            "progress": {"title": "p", "current": 1, "maximum": 2},
            "speeds": [{"title": "rate", "speed": 2.5, "unit": "x/s", "as_text": "2.5 x/s"}],
        },
    )
    jsonschema.validate(status.body, {"$ref": "#/components/schemas/Job", **root})
    listed = api.call("GET", "/v1/jobs", principal=svc)
    jsonschema.validate(listed.body["data"][0], {"$ref": "#/components/schemas/Job", **root})
    bad = api.call("POST", "/v1/jobs", principal=svc, body={"colour": "red"})
    jsonschema.validate(bad.body, {"$ref": "#/components/schemas/Error", **root})


def test_engine_schedules_validate_against_the_spec(spec, api, svc, clock):
    root = {"components": spec["components"]}
    body = {"cron": "0 3 * * 1-5", "timezone": "Europe/Berlin", "job": {"type": "t", "params": [1], "max_retries": None}}
    created = api.call("PUT", "/v1/schedules/nightly", principal=svc, body=body)
    assert created.status == 201
    jsonschema.validate(body, {"$ref": "#/components/schemas/PutSchedule", **root})
    jsonschema.validate(created.body, {"$ref": "#/components/schemas/Schedule", **root})
    clock.advance(1)
    paused = api.call("PATCH", "/v1/schedules/nightly", principal=svc, body={"paused": True})
    jsonschema.validate(paused.body, {"$ref": "#/components/schemas/Schedule", **root})
    listed = api.call("GET", "/v1/schedules", principal=svc)
    jsonschema.validate(listed.body["data"][0], {"$ref": "#/components/schemas/Schedule", **root})
    bad = api.call("PUT", "/v1/schedules/nightly", principal=svc, body={"every_ms": 5})
    assert bad.status == 400
    jsonschema.validate(bad.body, {"$ref": "#/components/schemas/Error", **root})


def test_a_handwritten_job_validates_against_both_schemas(spec):
    schemas = spec["components"]["schemas"]
    resolver_root = {"components": spec["components"]}

    def schema_for(name: str) -> dict[str, Any]:
        return {"$ref": f"#/components/schemas/{name}", **resolver_root}

    job = {
        "id": "01JDA3Q0Z8M6W4K2T9R7P5N3B1",
        "type": "t",
        "ref_id": None,
        "owner": "User#1",
        "processor": "svc",
        "title": None,
        "params": {"a": [1, 2.5]},
        "result": None,
        "error": {"code": "x", "message": "y"},
        "state": "pending",
        "priority": 2,
        "schedule": None,
        "status": None,
        "progress": {"title": None, "current": 1, "maximum": 3},
        "speeds": [{"title": "rate", "speed": 1.5, "unit": "x/s", "as_text": None}],
        "complete": False,
        "attempts": 1,
        "max_retries": 5,
        "cancel_requested": False,
        "lease_owner": None,
        "locked_until": None,
        "available_at": "2026-11-22T10:00:00.000Z",
        "execute_until": None,
        "created": "2026-11-22T10:00:00.000Z",
        "modified": "2026-11-22T10:00:00.000Z",
        "started": None,
        "completed": None,
        "depends_on": [],
        "version": 2,
    }
    jsonschema.validate(job, schema_for("Job"))
    jsonschema.validate({**job, "lease_token": "abc"}, schema_for("JobWithLease"))
    jsonschema.validate(job, job_schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**job, "extra": 1}, schema_for("Job"))
    assert "Job" in schemas


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        section, name = node["$ref"].split("/")[-2:]
        node = spec["components"][section][name]
    return node


def test_every_response_declares_the_correlation_header(spec):
    """The server sends X-Correlation-Id on every answer; generated clients read it only if declared."""
    missing = [
        (method.upper(), path, status)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS
        for status, response in operation["responses"].items()
        if "X-Correlation-Id" not in _resolve(spec, response).get("headers", {})
    ]
    assert missing == []


def test_no_request_field_has_a_default_a_generator_would_make_required(spec):
    """openapi-typescript makes every field with a `default:` a required key: defaults are said in words."""

    def defaults(node: Any, where: str) -> list[str]:
        if isinstance(node, dict):
            found = [where] if "default" in node else []
            return found + [f for key, value in node.items() for f in defaults(value, f"{where}/{key}")]
        if isinstance(node, list):
            return [f for i, value in enumerate(node) for f in defaults(value, f"{where}/{i}")]
        return []

    assert defaults(spec["paths"], "paths") + defaults(spec["components"], "components") == []
