from tests.e2e.conftest import LocalService


def test_create_claim_complete_over_http(local_service: LocalService) -> None:
    service = local_service.token("service", "svc-a")
    created = local_service.request("POST", "/v1/jobs", token=service, body={"type": "smoke", "owner": "User#1"})
    assert created.status == 201, created.body
    claimed = local_service.request("POST", "/v1/queues/smoke/claim", token=service, body={"timeout_ms": 5000})
    assert claimed.status == 200 and claimed.body["id"] == created.body["id"]
    done = local_service.request(
        "POST", f"/v1/jobs/{claimed.body['id']}/complete", token=service, body={"lease_token": claimed.body["lease_token"]}
    )
    assert done.status == 200 and done.body["state"] == "finished"
    user = local_service.request("GET", f"/v1/jobs/{created.body['id']}", token=local_service.token("user", "User#1"))
    assert user.status == 200
    assert local_service.request("GET", "/v1/nowhere").status == 404
