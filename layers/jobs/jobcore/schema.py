"""The JSON Schema of a job on the wire (api.job getJobSchema)."""

from __future__ import annotations

from typing import Any

from .model import JobState

_TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
_NULLABLE_TIME: dict[str, Any] = {"type": ["string", "null"], "format": "date-time"}
_NULLABLE_STRING: dict[str, Any] = {"type": ["string", "null"]}


def job_schema() -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://jobs.example/schemas/job.json",
        "title": "Job",
        "type": "object",
        "additionalProperties": False,
        "required": [
            "id",
            "type",
            "ref_id",
            "owner",
            "processor",
            "title",
            "params",
            "result",
            "error",
            "state",
            "status",
            "progress",
            "speeds",
            "complete",
            "attempts",
            "max_retries",
            "cancel_requested",
            "lease_owner",
            "locked_until",
            "available_at",
            "execute_until",
            "created",
            "modified",
            "started",
            "completed",
            "depends_on",
            "priority",
            "schedule",
            "version",
        ],
        "properties": {
            "id": {"type": "string", "description": "ULID: sortable by creation time"},
            "type": {"type": "string", "description": "The queue the job belongs to"},
            "ref_id": _NULLABLE_STRING,
            "owner": _NULLABLE_STRING,
            "processor": {"type": "string", "description": "The service that created the job"},
            "title": _NULLABLE_STRING,
            "params": {"description": "Any JSON, or null"},
            "result": {"description": "Any JSON, or null"},
            "error": {
                "type": ["object", "null"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                "required": ["code", "message"],
            },
            "state": {"enum": [s.value for s in JobState]},
            "status": _NULLABLE_STRING,
            "progress": {
                "type": ["object", "null"],
                "properties": {
                    "title": _NULLABLE_STRING,
                    "current": {"type": ["number", "null"], "minimum": 0},
                    "maximum": {"type": ["number", "null"], "minimum": 0},
                },
            },
            "speeds": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "title": {"type": "string"},
                        "speed": {"type": "number"},
                        "unit": _NULLABLE_STRING,
                        "as_text": _NULLABLE_STRING,
                    },
                    "required": ["title", "speed"],
                },
            },
            "complete": {"type": "boolean", "description": "true in finished, error and cancelled"},
            "attempts": {"type": "integer", "minimum": 0},
            "max_retries": {"type": ["integer", "null"], "minimum": 1},
            "cancel_requested": {"type": "boolean"},
            "lease_owner": _NULLABLE_STRING,
            "locked_until": _NULLABLE_TIME,
            "available_at": _TIME,
            "execute_until": _NULLABLE_TIME,
            "created": _TIME,
            "modified": _TIME,
            "started": _NULLABLE_TIME,
            "completed": _NULLABLE_TIME,
            "depends_on": {"type": "array", "items": {"type": "string"}},
            "priority": {"type": "integer", "minimum": 1, "maximum": 4, "description": "1 most urgent, default 2"},
            "schedule": {**_NULLABLE_STRING, "description": "The recurring schedule that created the job"},
            "version": {"type": "integer", "minimum": 1},
            "lease_token": {"type": "string", "description": "Only in start, claim and extend responses"},
        },
    }
