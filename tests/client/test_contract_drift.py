"""The client mirrors the contract on its own (it imports nothing of the server); these fail
when the two drift apart."""

from __future__ import annotations

import dataclasses

from jobs_client import errors as client_errors
from jobs_client.models import Job as ClientJob
from jobs_client.models import TaskUpdate

from jobcore import errors as server_errors
from jobcore.model import Job as ServerJob


def test_every_error_code_the_service_sends_has_its_client_exception():
    assert set(server_errors.ERRORS_BY_CODE) <= set(client_errors.ERRORS_BY_CODE)
    for code, server_class in server_errors.ERRORS_BY_CODE.items():
        client_class = client_errors.ERRORS_BY_CODE[code]
        assert issubclass(client_class, client_errors.Conflict) == issubclass(server_class, server_errors.Conflict), code


AT = "2026-01-01T00:00:00.000Z"
JOB = ServerJob.from_item(
    {"id": "j", "type": "t", "processor": "p", "state": "running", "attempts": 1, "version": 3,
     "created": AT, "modified": AT, "available_at": AT}
)  # fmt: skip


def test_the_client_job_has_every_field_of_the_wire_job():
    wire = JOB.to_wire(with_lease_token=True)
    assert {f.name for f in dataclasses.fields(ClientJob)} == set(wire)
    assert ClientJob.from_wire(wire).version == 3


def test_the_client_reads_every_field_of_a_task_update():
    from jobcore.live.messages import task_removed, task_update

    job = JOB
    update = task_update(job, None)
    read = TaskUpdate.from_wire(update)
    named = {f.name for f in dataclasses.fields(TaskUpdate)}
    assert set(update) - {"type", "job_id"} <= named
    assert (read.job_id, read.version, read.state) == ("j", 3, "running")
    assert TaskUpdate.from_wire(task_removed(job, expired=True)).removed == "expired"
