"""Loading a template's functions as Lambda would: the Handler's module from its CodeUri."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .template import PROJECT_ROOT

LambdaHandler = Callable[[dict[str, Any], Any], Any]


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str  # module.function
    properties: dict[str, Any]

    @property
    def module_path(self) -> Path:
        module, _, _ = self.handler.rpartition(".")
        return self.code_uri / (module.replace(".", "/") + ".py")


@dataclass(frozen=True)
class HttpRoute:
    method: str
    path: str
    function: FunctionSpec
    # False for a route whose event says `Auth: {Authorizer: NONE}` (the console's files).
    authorized: bool = True

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


def functions(template: dict[str, Any], root: Path = PROJECT_ROOT) -> dict[str, FunctionSpec]:
    found = {}
    function_globals = (template.get("Globals") or {}).get("Function") or {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.get("Properties", {})
        code_uri = properties.get("CodeUri", function_globals.get("CodeUri"))
        handler = properties.get("Handler", function_globals.get("Handler"))
        found[logical_id] = FunctionSpec(logical_id, root / str(code_uri), str(handler), properties)
    return found


def http_routes(template: dict[str, Any], root: Path = PROJECT_ROOT) -> list[HttpRoute]:
    routes = []
    for spec in functions(template, root).values():
        for event in (spec.properties.get("Events") or {}).values():
            if event.get("Type") == "HttpApi":
                props = event["Properties"]
                authorized = (props.get("Auth") or {}).get("Authorizer") != "NONE"
                routes.append(HttpRoute(str(props["Method"]).upper(), str(props["Path"]), spec, authorized))
    return routes


def api_routes(template: dict[str, Any], root: Path = PROJECT_ROOT) -> list[HttpRoute]:
    """The JSON API's routes (under /v1, in docs/openapi.yaml), without the console's."""
    return [route for route in http_routes(template, root) if route.path.startswith("/v1/")]


def load_handler(spec: FunctionSpec) -> LambdaHandler:
    """Import the handler's module from its file, under a name of its own per function."""
    module_name = f"_lambda_{spec.logical_id}"
    loader_spec = importlib.util.spec_from_file_location(module_name, spec.module_path)
    if loader_spec is None or loader_spec.loader is None:
        raise ImportError(f"cannot load {spec.module_path}")
    module = importlib.util.module_from_spec(loader_spec)
    loader_spec.loader.exec_module(module)
    _, _, attribute = spec.handler.rpartition(".")
    handler: LambdaHandler = getattr(module, attribute)
    return handler
