"""Resolving the template's intrinsic functions to local names and endpoints."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REGION = "us-east-1"
ACCOUNT = "000000000000"


class Resolver:
    """Resolves Ref, Fn::GetAtt, Fn::Sub, Fn::Join and Fn::If-free values of a template.

    ``names`` maps logical ids to local physical names (tables: their table names);
    ``attributes`` maps "LogicalId.Attr" to values (a table's StreamArn, an API's id).
    """

    def __init__(
        self,
        template: Mapping[str, Any],
        *,
        parameters: Mapping[str, str] | None = None,
        names: Mapping[str, str] | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> None:
        self.template = template
        self.parameters = {name: str(spec.get("Default", "")) for name, spec in (template.get("Parameters") or {}).items()}
        self.parameters.update(parameters or {})
        self.names = dict(names or {})
        self.attributes = dict(attributes or {})

    def ref(self, name: str) -> str:
        pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws",
                  "AWS::URLSuffix": "amazonaws.com", "AWS::StackName": "jobs-local"}  # fmt: skip
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.names:
            return self.names[name]
        resource = (self.template.get("Resources") or {}).get(name)
        if resource is not None:
            # A WebSocket stage's Ref is its name, as in AWS (the console's socket URL ends with it).
            if resource.get("Type") == "AWS::ApiGatewayV2::Stage":
                return str((resource.get("Properties") or {}).get("StageName", name))
            return name
        raise KeyError(f"Ref to unknown {name}")

    def get_att(self, logical_id: str, attribute: str) -> str:
        key = f"{logical_id}.{attribute}"
        if key in self.attributes:
            return self.attributes[key]
        resource = (self.template.get("Resources") or {}).get(logical_id)
        if resource is None:
            raise KeyError(f"GetAtt of unknown {logical_id}")
        kind = str(resource.get("Type", "")).split("::")
        if attribute == "Arn":
            service = {"DynamoDB": "dynamodb", "Serverless": "lambda", "Lambda": "lambda", "SQS": "sqs"}.get(kind[1], "service")
            return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{kind[-1].lower()}/{self.ref(logical_id)}"
        return f"{self.ref(logical_id)}.{attribute}"

    def value(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            ((key, argument),) = node.items()
            if key == "Ref":
                return self.ref(str(argument))
            if key == "Fn::GetAtt":
                logical_id, attribute = argument if isinstance(argument, list) else str(argument).split(".", 1)
                return self.get_att(logical_id, attribute)
            if key == "Fn::Sub":
                return self.sub(argument)
            if key == "Fn::Join":
                separator, parts = argument
                return str(separator).join(str(self.value(p)) for p in parts)
        if isinstance(node, dict):
            return {k: self.value(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self.value(v) for v in node]
        return node

    def sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.value(variables[name]))
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return self.ref(name)

        return re.sub(r"\$\{([^}!]+)\}", replace, str(text))


def function_environment(template: Mapping[str, Any], properties: Mapping[str, Any], resolver: Resolver) -> dict[str, str]:
    """Globals' variables, then the function's own, resolved: what the template gives it."""
    merged: dict[str, Any] = {}
    globals_env = ((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}
    merged.update(globals_env.get("Variables") or {})
    merged.update(((properties.get("Environment") or {}).get("Variables")) or {})
    return {name: str(resolver.value(value)) for name, value in merged.items()}


def function_setting(template: Mapping[str, Any], properties: Mapping[str, Any], name: str, default: Any) -> Any:
    """A function property, else its Globals value, else the default."""
    if name in properties:
        return properties[name]
    return ((template.get("Globals") or {}).get("Function") or {}).get(name, default)
