"""The local cloud's settings (environment variables: docs/local-cloud.md), and the stage its
parts share: each part (the HTTP and WebSocket APIs, the event sources, persistence) is handed
a Stage and never the LocalCloud itself."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .template import TEMPLATE_PATH

if TYPE_CHECKING:
    from .dynamodb import EmbeddedDynamoDB
    from .resolve import Resolver
    from .runtime import FunctionRuntime


@dataclass
class CloudConfig:
    host: str = "127.0.0.1"
    http_port: int = 3000
    ws_port: int = 3001
    jwt_secret: str = "local-development-secret-not-for-production"
    dynamodb_endpoint: str | None = None
    data_dir: Path | None = None
    template_path: Path = TEMPLATE_PATH
    max_concurrency: int = 4
    parameters: dict[str, str] = field(default_factory=dict)
    # "compact": one line per request, a function's own lines only when it failed;
    # "json": every line every function prints (powertools' structured logs, metrics).
    log_format: str = "compact"
    # Tests only: function -> how many of its successful stream invocations to fail.
    stream_faults: dict[str, int] = field(default_factory=dict)
    # Tests: scheduled events on a clock this many times faster than real time (local/schedules.py).
    schedule_speed: float = 1.0

    @classmethod
    def from_env(cls) -> CloudConfig:
        env = os.environ
        return cls(
            http_port=int(env.get("JOBS_HTTP_PORT", "3000")),
            ws_port=int(env.get("JOBS_WS_PORT", "3001")),
            jwt_secret=env.get("JOBS_JWT_SECRET") or cls.jwt_secret,
            dynamodb_endpoint=env.get("JOBS_DYNAMODB_ENDPOINT") or None,
            data_dir=Path(env["JOBS_DATA_DIR"]) if env.get("JOBS_DATA_DIR") else None,
            max_concurrency=int(env.get("JOBS_LOCAL_CONCURRENCY", "4")),
            template_path=Path(env["JOBS_TEMPLATE"]) if env.get("JOBS_TEMPLATE") else TEMPLATE_PATH,
            parameters=dict(pair.split("=", 1) for pair in env.get("JOBS_PARAMETERS", "").split(",") if "=" in pair),
            log_format="json" if env.get("JOBS_LOG", "").lower() == "json" else "compact",
            schedule_speed=_speed(env.get("JOBS_LOCAL_SCHEDULE_SPEED", "1")),
            stream_faults={
                name: int(count)
                for name, _, count in (p.partition("=") for p in env.get("JOBS_LOCAL_STREAM_FAULTS", "").split(","))
                if name and count.isdigit()
            },
        )


def _speed(text: str) -> float:
    try:
        speed = float(text)
    except ValueError:
        raise ValueError(f"JOBS_LOCAL_SCHEDULE_SPEED must be a number, got {text!r}") from None
    if not 0.01 <= speed <= 10_000:
        raise ValueError(f"JOBS_LOCAL_SCHEDULE_SPEED must be between 0.01 and 10000, got {text!r}")
    return speed


@dataclass
class Stage:
    """What the parts of a running local cloud share."""

    config: CloudConfig
    template: dict[str, Any]
    table_names: dict[str, str]
    runtimes: Mapping[str, FunctionRuntime]
    log: Callable[[str], None]
    client: Callable[[str], Any]  # a boto3 client of a local service, by name
    moto: EmbeddedDynamoDB | None  # None when another DynamoDB serves the tables
    resolver: Resolver | None = None
