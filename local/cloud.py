"""The local cloud: what `sam deploy` brings up, on one machine, read from template.yaml."""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

from .config import CloudConfig, Stage
from .dynamodb import EmbeddedDynamoDB
from .functions import FunctionSpec, functions, http_routes
from .http_api import ApiRoute, HttpApi, HttpApiServer, _pattern, authorizer_from_template
from .resolve import REGION, Resolver, function_environment, function_setting
from .runtime import FunctionConfig, FunctionRuntime, stop_resource_tracker
from .template import create_table_request, load_template, tables

LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_SESSION_TOKEN": "local"}


class LocalCloud:
    """Starts and stops every part; ``log`` receives each line to show the developer."""

    def __init__(self, config: CloudConfig, *, log: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.template = load_template(config.template_path)
        self.root = config.template_path.resolve().parent  # CodeUri and ContentUri are relative to it
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.moto = EmbeddedDynamoDB()
        self.runtimes: dict[str, FunctionRuntime] = {}
        self.http: HttpApiServer | None = None
        self.table_names: dict[str, str] = {}
        self.resolver: Resolver | None = None
        self._stoppers: list[Callable[[], None]] = []
        self._started = threading.Event()

    # -- the parts ----------------------------------------------------------------------
    @property
    def moto_endpoint(self) -> str:
        return self.moto.endpoint_url

    @property
    def dynamodb_endpoint(self) -> str:
        return self.config.dynamodb_endpoint or self.moto_endpoint

    def client(self, service: str) -> Any:
        endpoint = self.dynamodb_endpoint if service in ("dynamodb", "dynamodbstreams") else self.moto_endpoint
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="local",
            aws_secret_access_key="local",
            aws_session_token="local",
        )

    def _create_tables(self) -> None:
        client = self.client("dynamodb")
        existing = set(client.list_tables().get("TableNames", []))
        for logical_id, properties in tables(self.template).items():
            name = self.table_names[logical_id]
            if name in existing:
                continue
            client.create_table(**create_table_request(properties, name))
            client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
            ttl = properties.get("TimeToLiveSpecification")
            if ttl and ttl.get("Enabled"):
                client.update_time_to_live(
                    TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
                )

    def _attributes(self) -> dict[str, str]:
        client = self.client("dynamodb")
        attributes: dict[str, str] = {}
        for logical_id in tables(self.template):
            description = client.describe_table(TableName=self.table_names[logical_id])["Table"]
            attributes[f"{logical_id}.Arn"] = description["TableArn"]
            if description.get("LatestStreamArn"):
                attributes[f"{logical_id}.StreamArn"] = description["LatestStreamArn"]
        attributes["HttpApi.ApiEndpoint"] = f"http://{self.config.host}:{self.config.http_port}"
        return attributes

    def _secrets(self, resolver: Resolver) -> None:
        """The JWT secret, where the template says functions find it (an SSM SecureString)."""
        name = resolver.parameters.get("JwtSecretParameterName")
        if name:
            self.client("ssm").put_parameter(Name=name, Value=self.config.jwt_secret, Type="SecureString", Overwrite=True)

    def lambda_environment(self, spec: FunctionSpec, resolver: Resolver) -> dict[str, str]:
        """The template's variables, plus what the Lambda runtime itself provides."""
        env = function_environment(self.template, spec.properties, resolver)
        memory = int(function_setting(self.template, spec.properties, "MemorySize", 128))
        runtime_env = {
            **LOCAL_CREDENTIALS,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.logical_id}",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
            "LAMBDA_TASK_ROOT": str(spec.code_uri),
            "_HANDLER": spec.handler,
            "TZ": ":UTC",
            "LANG": "en_US.UTF-8",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONUNBUFFERED": "1",
            # In AWS the SDK finds each service by region; here, at the local cloud.
            "AWS_ENDPOINT_URL": self.moto_endpoint,
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb_endpoint,
            "AWS_ENDPOINT_URL_DYNAMODBSTREAMS": self.dynamodb_endpoint,
        }
        return {**runtime_env, **{name: self._local_endpoint(value) for name, value in env.items()}}

    def _local_endpoint(self, value: str) -> str:
        """An execute-api URL of one of the template's APIs becomes the local server's URL."""

        def replace(match: re.Match[str]) -> str:
            api_id, path = match.group(1), match.group(2) or ""
            kind = (self.template["Resources"].get(api_id) or {}).get("Type", "")
            if kind == "AWS::ApiGatewayV2::Api":
                # A socket URL stays one (the console's); a management endpoint is plain HTTP.
                scheme = "ws" if match.group(0).startswith("wss") else "http"
                return f"{scheme}://{self.config.host}:{self.config.ws_port}{path}"
            if kind == "AWS::Serverless::HttpApi":
                return f"http://{self.config.host}:{self.config.http_port}{path}"
            return match.group(0)

        return re.sub(r"(?:https|wss)://([A-Za-z0-9]+)\.execute-api\.[a-z0-9-]+\.amazonaws\.com(/[^\s]*)?", replace, value)

    def _layers(self, spec: FunctionSpec, resolver: Resolver) -> tuple[Path, ...]:
        layers = function_setting(self.template, spec.properties, "Layers", [])
        found = []
        for layer in layers:
            logical_id = layer.get("Ref") if isinstance(layer, dict) else None
            resource = self.template["Resources"].get(logical_id or "")
            if resource and resource.get("Type") == "AWS::Serverless::LayerVersion":
                found.append(self.root / resource["Properties"]["ContentUri"])
        return tuple(found)

    def _runtimes(self, resolver: Resolver) -> None:
        from .iam import Policy, UnsupportedPolicy, policy_of

        for spec in functions(self.template, self.root).values():
            policy: Policy | None
            try:  # each function may call only what its role allows, as in AWS
                policy = policy_of(spec, resolver)
            except UnsupportedPolicy as error:
                policy = None
                self.log(f"[local] {spec.logical_id}: IAM policy not enforced: {error}")
            config = FunctionConfig(
                name=spec.logical_id,
                code_dir=spec.code_uri,
                handler=spec.handler,
                layer_dirs=self._layers(spec, resolver),
                environment=self.lambda_environment(spec, resolver),
                timeout_s=float(function_setting(self.template, spec.properties, "Timeout", 3)),
                memory_mb=int(function_setting(self.template, spec.properties, "MemorySize", 128)),
                echo_logs=self.config.log_format == "json",
                policy=policy,
            )
            self.runtimes[spec.logical_id] = FunctionRuntime(config, max_concurrency=self.config.max_concurrency)

    def _http_api(self) -> None:
        api_ids = [name for name, r in self.template["Resources"].items() if r.get("Type") == "AWS::Serverless::HttpApi"]
        authorizers = {api_id: authorizer_from_template(self.template, api_id) for api_id in api_ids}
        routes = []
        for route in http_routes(self.template, self.root):
            event = next(e for e in route.function.properties["Events"].values() if e.get("Type") == "HttpApi")
            api_ref = (event["Properties"].get("ApiId") or {}).get("Ref")
            authorizer = authorizers.get(api_ref) if api_ref and route.authorized else None
            routes.append(ApiRoute(route, _pattern(route.path), authorizer))
        self.http = HttpApiServer(
            HttpApi(routes, self.runtimes, log=self.log), host=self.config.host, port=self.config.http_port, log=self.log
        )

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        self.moto.start()
        self._stoppers.append(self.moto.stop)
        self.table_names = {logical_id: logical_id for logical_id in tables(self.template)}
        self._create_tables()
        if self.config.data_dir is not None and self.config.dynamodb_endpoint is None:
            from .persistence import start_persistence

            self._stoppers.append(start_persistence(self.stage(), self.config.data_dir))
        resolver = Resolver(self.template, parameters=self.config.parameters, names=self.table_names)
        resolver.attributes.update(self._attributes())
        self.resolver = resolver
        self._secrets(resolver)
        self._runtimes(resolver)
        self._stoppers.append(self._close_runtimes)
        self._http_api()
        assert self.http is not None
        self.http.start()
        self._stoppers.append(self.http.stop)
        from .event_sources import start_event_sources
        from .schedules import start_schedules
        from .websocket_api import start_websocket_api

        self._stoppers.append(start_websocket_api(self.stage()))
        self._stoppers.append(start_event_sources(self.stage()))
        self._stoppers.append(start_schedules(self.stage()))
        self._started.set()

    def stage(self) -> Stage:
        """What the parts need of this cloud (they never get the cloud itself)."""
        return Stage(
            config=self.config,
            template=self.template,
            table_names=self.table_names,
            runtimes=self.runtimes,
            log=self.log,
            client=self.client,
            moto=self.moto if self.config.dynamodb_endpoint is None else None,
            resolver=self.resolver,
        )

    def _close_runtimes(self) -> None:
        for runtime in self.runtimes.values():
            runtime.close()

    def stop(self) -> None:
        while self._stoppers:
            stopper = self._stoppers.pop()
            try:
                stopper()
            except Exception as error:  # keep stopping the rest
                self.log(f"[local] error while stopping: {error}")
        stop_resource_tracker()  # last: every worker process has ended by now
