"""Each function's IAM policy, and what one SDK call needs of it: the local cloud refuses a
call its function's role does not allow, with the error AWS gives.

``policy_of`` reads a function's ``Policies`` (inline statements, resolved like the rest of
the template); ``requests_of`` says which (action, resource) pairs one botocore call needs;
``Policy.allows`` decides each as IAM does (an explicit Deny wins; else some Allow must
match; ``*`` matches any characters, ``?`` one, within an ARN segment).

What is enforced:

- dynamodb: ``dynamodb:<Operation>`` on the table ARN, or on ``<table>/index/<IndexName>``
  for a Query or Scan of an index; BatchGetItem and BatchWriteItem once per table;
  TransactWriteItems as the PutItem, UpdateItem, DeleteItem and ConditionCheckItem of each
  item, TransactGetItems as the GetItem of each (AWS governs transactions by the underlying
  item actions). Other operations: on the TableName's ARN, a resource ARN they name, or ``*``.
- ssm: the parameter operations (Name, Names, Path) on ``...:parameter/<name>``, and
  DescribeParameters on ``*``.
- apigatewaymanagementapi: ``execute-api:ManageConnections`` on
  ``<apiId>/<stage>/<POST|DELETE|GET>/@connections/<ConnectionId>``. A local endpoint
  (http://127.0.0.1:port/<stage>) stands for the template's WebSocket API, resolved.

What is not: dynamodbstreams (functions get their records from the event source), PartiQL
(ExecuteStatement and kin: their actions depend on the statement), conditions, resource and
session policies, KMS, and every other service (sqs, sns, cloudwatch, xray, sts, ...): their
calls go through unchecked. Policies the model cannot read (a managed policy, a SAM policy
template, an explicit Role, NotAction, Condition) raise ``UnsupportedPolicy``.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .resolve import ACCOUNT, REGION, Resolver

Request = tuple[str, str]  # (action, resource)

# The accounts and regions local services put in ARNs they make (moto's default account,
# DynamoDB Local's region): they stand for this cloud's own, ACCOUNT and REGION.
_LOCAL_ACCOUNTS = frozenset({os.environ.get("MOTO_ACCOUNT_ID", "123456789012"), "123456789012"})
_LOCAL_REGIONS = frozenset({"ddblocal"})

_CONNECTION_METHODS = {"PostToConnection": "POST", "DeleteConnection": "DELETE", "GetConnection": "GET"}
_TRANSACT_WRITE_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}
_PARTIQL = frozenset({"ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction"})


class UnsupportedPolicy(ValueError):
    """A policy this model cannot evaluate faithfully."""


# -- matching ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=1024)
def _wildcard(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, (re.IGNORECASE | re.DOTALL) if ignore_case else re.DOTALL)


def action_matches(pattern: str, action: str) -> bool:
    """IAM action matching: case-insensitive, with * and ? wildcards."""
    return _wildcard(pattern, ignore_case=True).fullmatch(action) is not None


def resource_matches(pattern: str, resource: str) -> bool:
    """IAM resource matching: case-sensitive; * and ? never span the ARN's first five
    colons (partition, service, region, account), but do span the resource part."""
    if pattern == "*":
        return True
    pattern_parts, resource_parts = pattern.split(":", 5), resource.split(":", 5)
    if len(pattern_parts) != 6 or len(resource_parts) != 6:
        return _wildcard(pattern, ignore_case=False).fullmatch(resource) is not None
    return all(
        _wildcard(p, ignore_case=False).fullmatch(r) is not None for p, r in zip(pattern_parts, resource_parts, strict=True)
    )


def local_arn(arn: str) -> str:
    """An ARN a local service made, in this cloud's account and region."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return arn
    if parts[4] in _LOCAL_ACCOUNTS:
        parts[4] = ACCOUNT
    if parts[3] in _LOCAL_REGIONS:
        parts[3] = REGION
    return ":".join(parts)


# -- the policy ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Statement:
    effect: str  # "Allow" or "Deny"
    actions: tuple[str, ...]
    resources: tuple[str, ...]

    def applies(self, action: str, resource: str) -> bool:
        return any(action_matches(a, action) for a in self.actions) and any(resource_matches(r, resource) for r in self.resources)


@dataclass(frozen=True)
class Policy:
    """A function role's identity-based policy: its statements, and (to place a local
    @connections endpoint) the template's WebSocket APIs as (api id, stage), resolved."""

    statements: tuple[Statement, ...] = ()
    websocket_apis: tuple[tuple[str, str], ...] = ()

    def denies_explicitly(self, action: str, resource: str) -> bool:
        return any(s.effect == "Deny" and s.applies(action, resource) for s in self.statements)

    def allows(self, action: str, resource: str) -> bool:
        if self.denies_explicitly(action, resource):
            return False
        return any(s.effect == "Allow" and s.applies(action, resource) for s in self.statements)

    def connections_api(self, endpoint_url: str | None) -> tuple[str, str]:
        """The (api id, stage) a management API endpoint URL addresses."""
        parsed = urlsplit(endpoint_url or "")
        segments = [s for s in parsed.path.split("/") if s]
        stage = segments[0] if segments else "$default"
        match = re.match(r"([A-Za-z0-9]+)\.execute-api\.", parsed.hostname or "")
        if match:
            return match.group(1), stage
        # A local URL: the template's API, as the template's ARNs resolve it locally.
        for api in self.websocket_apis:
            if api[1] == stage:
                return api
        if len(self.websocket_apis) == 1:
            return self.websocket_apis[0]
        return "unknown", stage


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def _resolved_strings(values: Any, resolver: Resolver, where: str) -> tuple[str, ...]:
    found = []
    for node in _as_list(values):
        try:
            value = resolver.value(node)
        except KeyError as error:
            raise UnsupportedPolicy(f"{where}: cannot resolve {node!r} ({error})") from error
        if not isinstance(value, str):
            raise UnsupportedPolicy(f"{where}: cannot resolve {node!r} locally")
        found.append(value)
    return tuple(found)


def _statements(document: Mapping[str, Any], resolver: Resolver, where: str) -> list[Statement]:
    statements = []
    for raw in _as_list(document.get("Statement") or []):
        if not isinstance(raw, Mapping):
            raise UnsupportedPolicy(f"{where}: a statement that is not a mapping: {raw!r}")
        unsupported = sorted(set(raw) & {"NotAction", "NotResource", "Condition", "Principal", "NotPrincipal"})
        if unsupported:
            raise UnsupportedPolicy(f"{where}: {', '.join(unsupported)} is not modelled")
        effect = raw.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise UnsupportedPolicy(f"{where}: Effect {effect!r}")
        if "Action" not in raw or "Resource" not in raw:
            raise UnsupportedPolicy(f"{where}: a statement needs Action and Resource")
        actions = _resolved_strings(raw["Action"], resolver, where)
        resources = tuple(local_arn(r) for r in _resolved_strings(raw["Resource"], resolver, where))
        statements.append(Statement(str(effect), actions, resources))
    return statements


def _websocket_apis(template: Mapping[str, Any], resolver: Resolver) -> tuple[tuple[str, str], ...]:
    resources: Mapping[str, Any] = template.get("Resources") or {}
    apis = []
    for logical_id, resource in resources.items():
        properties = resource.get("Properties") or {}
        if resource.get("Type") != "AWS::ApiGatewayV2::Api" or properties.get("ProtocolType") != "WEBSOCKET":
            continue
        stage = next(
            (
                resolver.ref(stage_id)
                for stage_id, stage_resource in resources.items()
                if stage_resource.get("Type") == "AWS::ApiGatewayV2::Stage"
                and ((stage_resource.get("Properties") or {}).get("ApiId") or {}) == {"Ref": logical_id}
            ),
            "$default",
        )
        apis.append((resolver.ref(logical_id), stage))
    return tuple(apis)


def policy_of(function: Any, resolver: Resolver) -> Policy:
    """The policy of a function (a FunctionSpec, or its Properties), resolved.

    Raises UnsupportedPolicy for what the model cannot evaluate (see the module's doc)."""
    properties: Mapping[str, Any] = getattr(function, "properties", function)
    where = str(getattr(function, "logical_id", "function"))
    if properties.get("Role") is not None:
        raise UnsupportedPolicy(f"{where}: an explicit Role is not modelled")
    statements: list[Statement] = []
    for entry in _as_list(properties.get("Policies") or []):
        if isinstance(entry, Mapping) and "Statement" in entry:
            statements.extend(_statements(entry, resolver, where))
        elif isinstance(entry, Mapping):
            raise UnsupportedPolicy(f"{where}: the SAM policy template {', '.join(entry)} is not modelled")
        else:
            raise UnsupportedPolicy(f"{where}: the managed policy {entry!r} is not modelled")
    return Policy(tuple(statements), _websocket_apis(resolver.template, resolver))


# -- what a call needs --------------------------------------------------------------------
def table_arn(table: str, index: str | None = None) -> str:
    arn = local_arn(table) if table.startswith("arn:") else f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}"
    return f"{arn}/index/{index}" if index else arn


def parameter_arn(name: str) -> str:
    if name.startswith("arn:"):
        return local_arn(name)
    return f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{name if name.startswith('/') else '/' + name}"


def _dynamodb(operation: str, params: Mapping[str, Any]) -> list[Request]:
    action = f"dynamodb:{operation}"
    if operation in _PARTIQL:
        return []
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [(action, table_arn(table)) for table in params.get("RequestItems") or {}]
    if operation == "TransactWriteItems":
        return [
            (_TRANSACT_WRITE_ACTIONS[kind], table_arn(str(body.get("TableName", ""))))
            for item in params.get("TransactItems") or []
            for kind, body in item.items()
            if kind in _TRANSACT_WRITE_ACTIONS and isinstance(body, Mapping)
        ]
    if operation == "TransactGetItems":
        return [
            ("dynamodb:GetItem", table_arn(str(item["Get"].get("TableName", ""))))
            for item in params.get("TransactItems") or []
            if isinstance(item.get("Get"), Mapping)
        ]
    if params.get("TableName"):
        return [(action, table_arn(str(params["TableName"]), params.get("IndexName")))]
    for key in ("ResourceArn", "TableArn", "StreamArn", "BackupArn", "ExportArn", "ImportArn"):
        if params.get(key):
            return [(action, local_arn(str(params[key])))]
    return [(action, "*")]


def _ssm(operation: str, params: Mapping[str, Any]) -> list[Request]:
    action = f"ssm:{operation}"
    if params.get("Name"):
        return [(action, parameter_arn(str(params["Name"])))]
    if params.get("Names"):
        return [(action, parameter_arn(str(name))) for name in params["Names"]]
    if params.get("Path"):
        return [(action, parameter_arn(str(params["Path"])))]
    if operation == "DescribeParameters":
        return [(action, "*")]
    return []


def requests_of(
    service: str,
    operation: str,
    params: Mapping[str, Any],
    *,
    connections_api: tuple[str, str] = ("unknown", "unknown"),
) -> list[Request]:
    """The (action, resource) pairs IAM checks for one call of ``service`` (botocore's
    service name) ``operation`` with ``params``; empty when not enforced.

    ``connections_api``: (api id, stage) of a management API client (Policy.connections_api).
    """
    if service == "dynamodb":
        return _dynamodb(operation, params)
    if service == "ssm":
        return _ssm(operation, params)
    if service == "apigatewaymanagementapi" and operation in _CONNECTION_METHODS:
        api_id, stage = connections_api
        method, connection = _CONNECTION_METHODS[operation], str(params.get("ConnectionId", ""))
        resource = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/{stage}/{method}/@connections/{connection}"
        return [("execute-api:ManageConnections", resource)]
    return []


# -- the refusal --------------------------------------------------------------------------
def role_arn(function_name: str) -> str:
    return f"arn:aws:sts::{ACCOUNT}:assumed-role/{function_name}/local"


def denial_message(function_name: str, action: str, resource: str, *, explicit: bool = False) -> str:
    reason = (
        "with an explicit deny in an identity-based policy"
        if explicit
        else f"because no identity-based policy allows the {action} action"
    )
    return f"User: {role_arn(function_name)} is not authorized to perform: {action} on resource: {resource} {reason}"


def first_denied(policy: Policy, requests: Iterable[Request]) -> Request | None:
    return next((r for r in requests if not policy.allows(*r)), None)


def denial_error(service: str, function_name: str, policy: Policy, action: str, resource: str) -> dict[str, Any]:
    """The error response AWS gives (botocore's parsed form) for a refused request."""
    message = denial_message(function_name, action, resource, explicit=policy.denies_explicitly(action, resource))
    status = 403 if service == "apigatewaymanagementapi" else 400
    return {
        "Error": {"Code": "AccessDeniedException", "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}, "RetryAttempts": 0},
    }
