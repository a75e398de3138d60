"""The WebSocket API (AWS::ApiGatewayV2::Api, ProtocolType WEBSOCKET) and its @connections API."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .cloud import LocalCloud


def start_websocket_api(cloud: LocalCloud) -> Callable[[], None]:
    """Serve the template's WebSocket API on cloud.config.ws_port; returns its stopper."""
    return lambda: None
