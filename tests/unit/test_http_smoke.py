def test_create_and_get_through_handlers(api, svc, alice):
    created = api.call("POST", "/v1/jobs", principal=svc, body={"type": "t", "owner": alice.sub})
    assert created.status == 201, created.body
    assert created.headers["X-Correlation-Id"] == "test-request"
    got = api.call("GET", f"/v1/jobs/{created.body['id']}", principal=alice)
    assert got.status == 200 and got.body["id"] == created.body["id"]
