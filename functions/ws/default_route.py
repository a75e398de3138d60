"""WebSocket $default: a message whose action no route takes."""

from jobcore.errors import InvalidRequest
from jobcore.live_api import WsReply, WsRequest, ws_route

ACTIONS = ("subscribe", "unsubscribe", "ping")


def unknown_action(request: WsRequest) -> WsReply:
    body = request.json()
    action = body.get("action") if isinstance(body, dict) else None
    raise InvalidRequest.fields(
        {"action": f"unknown action {action!r}; use one of {', '.join(ACTIONS)}" if action else "required"},
        "unknown action",
    )


handler = ws_route(unknown_action)
