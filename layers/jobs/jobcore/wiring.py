"""What each function needs, built on first use per container and kept warm between
invocations: the engine (HTTP routes), the subscriptions (WebSocket routes), the fan-out
(the stream). Tests and the benchmarks hand in their own with `use`."""

from __future__ import annotations

import functools
import hashlib
import hmac
from typing import TYPE_CHECKING, Any

from .settings import LiveSettings, Settings
from .store import SocketGateway, TableStore, make_client

if TYPE_CHECKING:
    from .engine import Engine
    from .live.delivery import FanOut
    from .live.subscriptions import Subscriptions
    from .model import Principal

CURSOR_KEY_LABEL = b"jobs-cursor-v1"


def cursor_key(settings: Settings) -> bytes:
    """The key that seals list cursors: given, or derived from the secret in SSM (the
    deployment's JWT secret: one secret, two purposes kept apart by the label)."""
    if settings.cursor_key:
        return settings.cursor_key
    if not settings.cursor_secret_parameter:
        raise RuntimeError("neither JOBS_CURSOR_KEY nor JOBS_CURSOR_SECRET_PARAMETER is set")
    from aws_lambda_powertools.utilities import parameters

    secret = str(parameters.get_parameter(settings.cursor_secret_parameter, decrypt=True, max_age=300))
    return hmac.new(secret.encode(), CURSOR_KEY_LABEL, hashlib.sha256).digest()


class Wiring:
    def __init__(self) -> None:
        self._engine: Engine | None = None
        self._subscriptions: Subscriptions | None = None
        self._fan_out: FanOut | None = None
        self._client: Any = None

    def _dynamodb(self, settings_endpoint: str | None) -> Any:
        if self._client is None:
            self._client = make_client(settings_endpoint)
        return self._client

    # Each part is imported when first built: a WebSocket route never loads the engine, an
    # HTTP route never loads the fan-out (a cold start pays only for what its route uses).
    def engine(self) -> Engine:
        if self._engine is None:
            from .engine import Engine
            from .observability import metrics_counter

            settings = Settings.from_env()
            store = TableStore(self._dynamodb(settings.dynamodb_endpoint), settings.table_name)
            # Only listing functions may read the secret: resolved when a cursor is first sealed.
            self._engine = Engine(
                store, settings, count=metrics_counter, cursor_key=functools.cache(lambda: cursor_key(settings))
            )
        return self._engine

    def subscriptions(self) -> Subscriptions:
        if self._subscriptions is None:
            from .live.subscriptions import Subscriptions

            settings = LiveSettings.from_env()
            store = TableStore(self._dynamodb(Settings.from_env().dynamodb_endpoint), settings.connections_table)
            # The engine is built only when a subscription names a job.
            self._subscriptions = Subscriptions(store, settings, check_job=self._load_for)
        return self._subscriptions

    def _load_for(self, principal: Principal, job_id: str) -> object:
        return self.engine().listing.load_for(principal, job_id)

    def fan_out(self) -> FanOut:
        if self._fan_out is None:
            from .live.delivery import FanOut

            live = self.subscriptions()
            endpoint = live.settings.websocket_endpoint
            if not endpoint:
                raise RuntimeError("JOBS_WEBSOCKET_ENDPOINT is not set")
            self._fan_out = FanOut(live, SocketGateway(endpoint, max_parallel=live.settings.post_parallelism))
        return self._fan_out

    def use(
        self, *, engine: Engine | None = None, subscriptions: Subscriptions | None = None, fan_out: FanOut | None = None
    ) -> None:
        """Tests and the benchmarks hand in their own parts (those given; the rest stay)."""
        self._engine = engine or self._engine
        self._subscriptions = subscriptions or self._subscriptions
        self._fan_out = fan_out or self._fan_out

    def reset(self) -> None:
        """Forget every part: each is built again on next use."""
        self._engine = self._subscriptions = self._fan_out = None


wiring = Wiring()
