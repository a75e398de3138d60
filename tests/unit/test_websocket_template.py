"""The WebSocket API, the connections table and the fan-out in template.yaml agree with the
code (the lint misses a bad ProtocolType, a missing permission or a wrong route)."""

from __future__ import annotations

import importlib.util
from typing import Any

from jobcore.live import subscriptions as live
from localcloud.functions import functions
from localcloud.template import PROJECT_ROOT, tables
from localcloud.websocket_api import websocket_apis

ROUTES = {"$connect", "$disconnect", "subscribe", "unsubscribe", "ping", "$default"}
TWO_WAY = {"subscribe", "unsubscribe", "ping", "$default"}


def resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v.get("Properties", {}) for k, v in template["Resources"].items() if v["Type"] == kind}


def test_the_websocket_api_routes_each_action_to_its_function(template):
    (api,) = websocket_apis(template)
    assert api.selection == "$request.body.action"
    assert set(api.routes) == ROUTES
    assert api.routes["$connect"].authorizer == "AuthorizerFunction"
    assert api.identity_sources == ["route.request.querystring.token"]
    assert {key for key, route in api.routes.items() if route.two_way} == TWO_WAY
    specs = functions(template)
    modules = {key: specs[route.function].handler.split(".")[0] for key, route in api.routes.items() if route.function}
    assert len(set(modules.values())) == len(ROUTES), "two routes share a handler module"
    assert all(specs[r.function].code_uri == PROJECT_ROOT / "functions" / "ws" for r in api.routes.values() if r.function)
    spec = importlib.util.spec_from_file_location("default_route", PROJECT_ROOT / "functions/ws/default_route.py")
    assert spec and spec.loader
    default_route = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(default_route)
    assert set(default_route.ACTIONS) == {key for key in ROUTES if not key.startswith("$")}


def test_the_api_is_a_websocket_api_on_an_auto_deployed_stage(template):
    (api,) = resources_of(template, "AWS::ApiGatewayV2::Api").values()
    assert api["ProtocolType"] == "WEBSOCKET"
    (stage,) = resources_of(template, "AWS::ApiGatewayV2::Stage").values()
    assert stage["AutoDeploy"] is True
    responses = resources_of(template, "AWS::ApiGatewayV2::RouteResponse").values()
    routes = resources_of(template, "AWS::ApiGatewayV2::Route")
    answered = {routes[r["RouteId"]["Ref"]]["RouteKey"] for r in responses}
    assert answered == TWO_WAY
    assert all(r["RouteResponseKey"] == "$default" for r in responses)


def test_hand_written_api_gateway_resources_follow_every_serverless_resource(template):
    kinds = [resource["Type"] for resource in template["Resources"].values()]
    last_serverless = max(i for i, kind in enumerate(kinds) if kind.startswith("AWS::Serverless::"))
    first_v2 = min(i for i, kind in enumerate(kinds) if kind.startswith("AWS::ApiGatewayV2::"))
    assert first_v2 > last_serverless


def test_api_gateway_may_invoke_each_websocket_function_and_the_authorizer_from_this_api_only(template):
    (api,) = websocket_apis(template)
    invoked = {route.function for route in api.routes.values()} | {"AuthorizerFunction"}
    permissions = resources_of(template, "AWS::Lambda::Permission").values()
    allowed = [p["FunctionName"]["Ref"] for p in permissions]
    assert sorted(allowed) == sorted(invoked)
    for permission in permissions:
        assert permission["Principal"] == "apigateway.amazonaws.com"
        assert "${WebSocketApi}/" in permission["SourceArn"]["Fn::Sub"]


def test_the_connections_table_has_the_index_the_fan_out_queries_and_a_ttl(template):
    table = tables(template)["ConnectionsTable"]
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == live.TOPIC_INDEX
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["topic", "PK"]
    assert set(index["Projection"]["NonKeyAttributes"]) == set(live.Subscriber.__struct_fields__) | {"expires_at"}
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_the_fan_out_reads_the_jobs_stream_with_a_retry_cap_bisect_and_a_failure_destination(template):
    fan_out = functions(template)["FanOutFunction"].properties
    (event,) = fan_out["Events"].values()
    props = event["Properties"]
    assert event["Type"] == "DynamoDB"
    assert props["Stream"] == {"Fn::GetAtt": ["JobsTable", "StreamArn"]}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 0 <= props["MaximumRetryAttempts"] <= 10
    assert props["BisectBatchOnFunctionError"] is True
    destination = props["DestinationConfig"]["OnFailure"]
    assert destination["Type"] == "SQS"
    queue = destination["Destination"]["Fn::GetAtt"][0]
    assert template["Resources"][queue]["Type"] == "AWS::SQS::Queue"
    variables = fan_out["Environment"]["Variables"]
    assert "${WebSocketApi}" in variables["JOBS_WEBSOCKET_ENDPOINT"]["Fn::Sub"]
    assert variables["JOBS_CONNECTIONS_TABLE_NAME"] == {"Ref": "ConnectionsTable"}


def test_functions_that_touch_the_connections_table_are_told_its_name(template):
    for spec in functions(template).values():
        text = str(spec.properties.get("Policies", []))
        named = (spec.properties.get("Environment") or {}).get("Variables", {}).get("JOBS_CONNECTIONS_TABLE_NAME")
        assert ("ConnectionsTable" in text) == (named == {"Ref": "ConnectionsTable"}), spec.logical_id
