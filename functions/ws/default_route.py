"""WebSocket $default: a message whose action no route takes."""

from jobcore.errors import InvalidRequest
from jobcore.websocket import WsReply, WsRequest, ws_route

ACTIONS = ("subscribe", "unsubscribe", "ping")


@ws_route
def handler(request: WsRequest) -> WsReply:
    message = request.message()
    action = message.get("action") if isinstance(message, dict) else None
    hint = f"unknown action {str(action)[:64]!r}; use one of {', '.join(ACTIONS)}" if action else "required"
    raise InvalidRequest.fields({"action": hint}, "unknown action")
