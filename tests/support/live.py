"""Subscriptions driven with WebSocket message bodies, parsed as the routes parse them."""

from __future__ import annotations

from typing import Any

from jobcore.commands.live import parse_topic
from jobcore.live.messages import Topic
from jobcore.live.subscriptions import Subscriber, Subscriptions
from jobcore.model import Principal
from jobcore.settings import Limits

LIMITS = Limits()


class LiveRoutes:
    def __init__(self, subscriptions: Subscriptions) -> None:
        self.subscriptions = subscriptions

    def connect(self, connection_id: str, principal: Principal) -> None:
        self.subscriptions.connect(connection_id, principal)

    def disconnect(self, connection_id: str) -> int:
        return self.subscriptions.disconnect(connection_id)

    def subscribe(self, connection_id: str, principal: Principal, body: Any) -> Topic:
        return self.subscriptions.subscribe(connection_id, principal, parse_topic(body, LIMITS))

    def unsubscribe(self, connection_id: str, principal: Principal, body: Any) -> Topic:
        return self.subscriptions.unsubscribe(connection_id, principal, parse_topic(body, LIMITS))

    def subscribers(self, topic_key: str) -> list[Subscriber]:
        return self.subscriptions.subscribers(topic_key)
