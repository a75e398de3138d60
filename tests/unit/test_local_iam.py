"""The local cloud's IAM: what each SDK call needs, the template's policies resolved, and a
function worker refusing what its policy does not allow, as AWS does."""

from __future__ import annotations

import pickle
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localcloud.functions import functions
from localcloud.iam import (
    Policy,
    Statement,
    UnsupportedPolicy,
    action_matches,
    denial_error,
    denial_message,
    policy_of,
    requests_of,
    resource_matches,
)
from localcloud.resolve import Resolver
from localcloud.runtime import FunctionConfig, FunctionRuntime

TABLE = "arn:aws:dynamodb:us-east-1:000000000000:table"
MOTO_TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table"  # what the embedded moto names tables


# -- what one call needs -------------------------------------------------------------------
def test_a_dynamodb_item_call_needs_its_action_on_the_table():
    assert requests_of("dynamodb", "GetItem", {"TableName": "Jobs", "Key": {}}) == [("dynamodb:GetItem", f"{TABLE}/Jobs")]
    assert requests_of("dynamodb", "Scan", {"TableName": "Jobs"}) == [("dynamodb:Scan", f"{TABLE}/Jobs")]


def test_a_query_or_scan_of_an_index_needs_the_index_arn():
    assert requests_of("dynamodb", "Query", {"TableName": "Jobs", "IndexName": "all-created"}) == [
        ("dynamodb:Query", f"{TABLE}/Jobs/index/all-created")
    ]
    assert requests_of("dynamodb", "Scan", {"TableName": "Jobs", "IndexName": "owner-created"}) == [
        ("dynamodb:Scan", f"{TABLE}/Jobs/index/owner-created")
    ]


def test_batch_calls_need_their_action_on_each_table():
    items = {"RequestItems": {"Jobs": {"Keys": []}, "Connections": {"Keys": []}}}
    assert requests_of("dynamodb", "BatchGetItem", items) == [
        ("dynamodb:BatchGetItem", f"{TABLE}/Jobs"),
        ("dynamodb:BatchGetItem", f"{TABLE}/Connections"),
    ]
    assert requests_of("dynamodb", "BatchWriteItem", {"RequestItems": {"Jobs": []}}) == [
        ("dynamodb:BatchWriteItem", f"{TABLE}/Jobs")
    ]


def test_a_write_transaction_needs_each_items_own_action_on_its_table():
    transaction = {
        "TransactItems": [
            {"Put": {"TableName": "Jobs", "Item": {}}},
            {"Update": {"TableName": "Jobs", "Key": {}, "UpdateExpression": "SET a = :a"}},
            {"Delete": {"TableName": "Connections", "Key": {}}},
            {"ConditionCheck": {"TableName": "Jobs", "Key": {}, "ConditionExpression": "attribute_exists(PK)"}},
        ]
    }
    assert requests_of("dynamodb", "TransactWriteItems", transaction) == [
        ("dynamodb:PutItem", f"{TABLE}/Jobs"),
        ("dynamodb:UpdateItem", f"{TABLE}/Jobs"),
        ("dynamodb:DeleteItem", f"{TABLE}/Connections"),
        ("dynamodb:ConditionCheckItem", f"{TABLE}/Jobs"),
    ]


def test_a_read_transaction_needs_getitem_on_each_items_table():
    transaction = {"TransactItems": [{"Get": {"TableName": "Jobs", "Key": {}}}, {"Get": {"TableName": "Other", "Key": {}}}]}
    assert requests_of("dynamodb", "TransactGetItems", transaction) == [
        ("dynamodb:GetItem", f"{TABLE}/Jobs"),
        ("dynamodb:GetItem", f"{TABLE}/Other"),
    ]


def test_other_dynamodb_calls_are_checked_generically():
    assert requests_of("dynamodb", "DescribeTable", {"TableName": "Jobs"}) == [("dynamodb:DescribeTable", f"{TABLE}/Jobs")]
    assert requests_of("dynamodb", "ListTables", {}) == [("dynamodb:ListTables", "*")]
    # A table named by the ARN moto gave it is this cloud's table.
    assert requests_of("dynamodb", "GetItem", {"TableName": f"{MOTO_TABLE}/Jobs"}) == [("dynamodb:GetItem", f"{TABLE}/Jobs")]
    assert requests_of("dynamodb", "ExecuteStatement", {"Statement": "SELECT * FROM Jobs"}) == []
    assert requests_of("dynamodbstreams", "GetRecords", {"ShardIterator": "x"}) == []


def test_ssm_parameter_calls_need_the_parameter_arn():
    arn = "arn:aws:ssm:us-east-1:000000000000:parameter"
    assert requests_of("ssm", "GetParameter", {"Name": "/jobs/jwt-secret", "WithDecryption": True}) == [
        ("ssm:GetParameter", f"{arn}/jobs/jwt-secret")
    ]
    assert requests_of("ssm", "GetParameter", {"Name": "plain"}) == [("ssm:GetParameter", f"{arn}/plain")]
    assert requests_of("ssm", "GetParameters", {"Names": ["/a", "/b"]}) == [
        ("ssm:GetParameters", f"{arn}/a"),
        ("ssm:GetParameters", f"{arn}/b"),
    ]


def test_connection_calls_need_manage_connections_on_the_connection_with_its_method():
    api = ("abc123", "live")
    prefix = "arn:aws:execute-api:us-east-1:000000000000:abc123/live"
    for operation, method in (("PostToConnection", "POST"), ("DeleteConnection", "DELETE"), ("GetConnection", "GET")):
        assert requests_of("apigatewaymanagementapi", operation, {"ConnectionId": "c1="}, connections_api=api) == [
            ("execute-api:ManageConnections", f"{prefix}/{method}/@connections/c1=")
        ]


def test_services_outside_the_model_are_not_checked():
    assert requests_of("sqs", "SendMessage", {"QueueUrl": "http://x/000000000000/q", "MessageBody": "m"}) == []
    assert requests_of("sts", "GetCallerIdentity", {}) == []


# -- matching ------------------------------------------------------------------------------
def test_wildcards_match_as_in_iam():
    assert resource_matches("*", f"{TABLE}/Jobs")
    assert resource_matches(f"{TABLE}/Jobs/index/*", f"{TABLE}/Jobs/index/all-created")
    assert not resource_matches(f"{TABLE}/Jobs/index/*", f"{TABLE}/Jobs")
    assert not resource_matches(f"{TABLE}/Jobs", f"{TABLE}/Jobs/index/all-created")
    assert resource_matches("arn:aws:dynamodb:*:*:table/Jo?s", f"{TABLE}/Jobs")
    assert not resource_matches("arn:aws:dynamodb:*:*:table/Jo?s", f"{TABLE}/Joobs")
    assert not resource_matches(f"{TABLE}/jobs", f"{TABLE}/Jobs")  # resources are case-sensitive
    assert resource_matches("arn:aws:dynamodb:us-*:*:table/Jobs", f"{TABLE}/Jobs")
    assert not resource_matches("arn:aws:dynamodb:eu-*:*:table/Jobs", f"{TABLE}/Jobs")
    assert resource_matches(
        "arn:aws:execute-api:*:*:api/stage/POST/@connections/*", "arn:aws:execute-api:r:1:api/stage/POST/@connections/a/b"
    )
    assert action_matches("dynamodb:*", "dynamodb:GetItem")
    assert action_matches("DynamoDB:get*", "dynamodb:GetItem")  # actions are not
    assert action_matches("*", "ssm:GetParameter")
    assert not action_matches("dynamodb:Get*", "dynamodb:BatchGetItem")


def test_an_explicit_deny_wins_and_nothing_is_allowed_by_default():
    policy = Policy(
        (
            Statement("Allow", ("dynamodb:*",), (f"{TABLE}/Jobs",)),
            Statement("Deny", ("dynamodb:DeleteItem",), ("*",)),
        )
    )
    assert policy.allows("dynamodb:GetItem", f"{TABLE}/Jobs")
    assert not policy.allows("dynamodb:DeleteItem", f"{TABLE}/Jobs")
    assert not policy.allows("dynamodb:GetItem", f"{TABLE}/Other")
    assert not Policy().allows("dynamodb:GetItem", f"{TABLE}/Jobs")
    error = denial_error("dynamodb", "F", policy, "dynamodb:DeleteItem", f"{TABLE}/Jobs")
    assert error["Error"]["Message"].endswith("with an explicit deny in an identity-based policy")


def test_the_refusal_reads_as_aws_writes_it():
    assert denial_message("GetJobFunction", "dynamodb:GetItem", f"{TABLE}/Jobs") == (
        "User: arn:aws:sts::000000000000:assumed-role/GetJobFunction/local is not authorized to perform: "
        f"dynamodb:GetItem on resource: {TABLE}/Jobs because no identity-based policy allows the dynamodb:GetItem action"
    )
    error = denial_error("dynamodb", "GetJobFunction", Policy(), "dynamodb:GetItem", f"{TABLE}/Jobs")
    assert error["Error"]["Code"] == "AccessDeniedException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400


# -- the template's policies ---------------------------------------------------------------
@pytest.fixture
def resolver(template) -> Resolver:
    """Resolved as the local cloud does: table ARNs as moto reports them."""
    return Resolver(
        template,
        names={"JobsTable": "JobsTable", "ConnectionsTable": "ConnectionsTable"},
        attributes={"JobsTable.Arn": f"{MOTO_TABLE}/JobsTable", "ConnectionsTable.Arn": f"{MOTO_TABLE}/ConnectionsTable"},
    )


def allowed(policy: Policy, service: str, operation: str, params: dict[str, Any], **options: Any) -> bool:
    needed = requests_of(service, operation, params, **options)
    assert needed
    return all(policy.allows(*request) for request in needed)


def test_template_policies_resolve_to_what_each_function_may_do(template, resolver):
    specs = functions(template)
    list_jobs = policy_of(specs["ListJobsFunction"], resolver)
    assert allowed(list_jobs, "dynamodb", "Query", {"TableName": "JobsTable", "IndexName": "all-created"})
    assert allowed(list_jobs, "dynamodb", "BatchGetItem", {"RequestItems": {"JobsTable": {}}})
    assert not allowed(list_jobs, "dynamodb", "Query", {"TableName": "ConnectionsTable", "IndexName": "topic-subscribers"})
    assert not allowed(list_jobs, "dynamodb", "DeleteItem", {"TableName": "JobsTable"})
    assert allowed(list_jobs, "ssm", "GetParameter", {"Name": "/jobs/jwt-secret"})
    assert not allowed(list_jobs, "ssm", "GetParameter", {"Name": "/jobs/other"})

    start_job = policy_of(specs["StartJobFunction"], resolver)
    assert allowed(start_job, "dynamodb", "UpdateItem", {"TableName": "JobsTable"})
    assert not allowed(start_job, "dynamodb", "Scan", {"TableName": "JobsTable"})
    # Its grants are on the table only: an index needs a grant of its own.
    assert not allowed(start_job, "dynamodb", "UpdateItem", {"TableName": "JobsTable", "IndexName": "all-created"})

    create_job = policy_of(specs["CreateJobFunction"], resolver)
    write = {"TransactItems": [{"Put": {"TableName": "JobsTable"}}, {"ConditionCheck": {"TableName": "JobsTable"}}]}
    assert allowed(create_job, "dynamodb", "TransactWriteItems", write)
    other_table = {"TransactItems": [{"Put": {"TableName": "JobsTable"}}, {"Put": {"TableName": "ConnectionsTable"}}]}
    assert not allowed(create_job, "dynamodb", "TransactWriteItems", other_table)

    assert policy_of(specs["GetSchemaFunction"], resolver).statements == ()  # no Policies: nothing allowed


def test_the_fan_out_may_post_to_connections_of_its_api_locally_and_in_aws(template, resolver):
    fan_out = policy_of(functions(template)["FanOutFunction"], resolver)
    # Locally the endpoint is the WebSocket server's; it stands for the template's API.
    local_url = "http://127.0.0.1:4567/live"
    api = fan_out.connections_api(local_url)
    assert api == (resolver.ref("WebSocketApi"), resolver.ref("WebSocketStage"))
    assert allowed(fan_out, "apigatewaymanagementapi", "PostToConnection", {"ConnectionId": "c1"}, connections_api=api)
    assert not allowed(fan_out, "apigatewaymanagementapi", "DeleteConnection", {"ConnectionId": "c1"}, connections_api=api)
    assert allowed(fan_out, "dynamodb", "Query", {"TableName": "ConnectionsTable", "IndexName": "topic-subscribers"})
    # In AWS, the id and stage are in the URL.
    assert fan_out.connections_api("https://abc123.execute-api.us-east-1.amazonaws.com/live") == ("abc123", "live")


def test_policies_outside_the_model_are_refused(template, resolver):
    for policies in (["AWSLambdaBasicExecutionRole"], [{"DynamoDBReadPolicy": {"TableName": "Jobs"}}]):
        with pytest.raises(UnsupportedPolicy):
            policy_of({"Policies": policies}, resolver)
    condition = {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*", "Condition": {"Bool": {}}}
    with pytest.raises(UnsupportedPolicy):
        policy_of({"Policies": [{"Statement": [condition]}]}, resolver)
    single = policy_of({"Policies": {"Statement": {"Effect": "Allow", "Action": "ssm:*", "Resource": "*"}}}, resolver)
    assert single.allows("ssm:GetParameter", "arn:aws:ssm:us-east-1:000000000000:parameter/x")


def test_a_policy_survives_the_trip_to_a_worker(template, resolver):
    policy = policy_of(functions(template)["ListJobsFunction"], resolver)
    assert pickle.loads(pickle.dumps(policy)) == policy


# -- a function worker ---------------------------------------------------------------------
HANDLER = """
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

def handler(event, context):
    config = Config(connect_timeout=1, read_timeout=1, retries={"total_max_attempts": 1})
    client = boto3.client("dynamodb", endpoint_url="http://127.0.0.1:9", config=config)
    try:
        client.get_item(TableName=event["table"], Key={"PK": {"S": "a"}})
    except ClientError as error:
        return {"code": error.response["Error"]["Code"], "message": error.response["Error"]["Message"],
                "status": error.response["ResponseMetadata"]["HTTPStatusCode"]}
    except EndpointConnectionError:
        return {"code": "sent"}
    return {"code": "none"}
"""


def worker(tmp_path: Path, policy: Policy | None) -> FunctionRuntime:
    (tmp_path / "probe.py").write_text(textwrap.dedent(HANDLER))
    environment = {
        "PATH": "/usr/bin:/bin",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    config = FunctionConfig("ProbeFunction", tmp_path, "probe.handler", (), environment, 20, policy=policy)
    return FunctionRuntime(config, max_concurrency=1)


@pytest.fixture
def enforcing(tmp_path) -> Iterator[FunctionRuntime]:
    runtime = worker(tmp_path, Policy((Statement("Allow", ("dynamodb:GetItem",), (f"{TABLE}/Allowed",)),)))
    try:
        yield runtime
    finally:
        runtime.close()


def test_a_worker_refuses_a_call_its_policy_does_not_allow_before_sending_it(enforcing):
    denied = enforcing.invoke({"table": "Other"})
    assert denied.ok, denied.error_message
    assert denied.payload == {
        "code": "AccessDeniedException",
        "message": "User: arn:aws:sts::000000000000:assumed-role/ProbeFunction/local is not authorized to perform: "
        f"dynamodb:GetItem on resource: {TABLE}/Other because no identity-based policy allows the dynamodb:GetItem action",
        "status": 400,
    }
    sent = enforcing.invoke({"table": "Allowed"})  # allowed: it goes out (and finds nothing listening)
    assert sent.ok and sent.payload == {"code": "sent"}


def test_a_worker_without_a_policy_enforces_nothing(tmp_path):
    runtime = worker(tmp_path, None)
    try:
        result = runtime.invoke({"table": "Other"})
        assert result.ok and result.payload == {"code": "sent"}
    finally:
        runtime.close()
