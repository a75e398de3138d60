"""WebSocket `ping`: answers `{"type": "pong"}` (clients keep idle connections open with it)."""

from jobcore.websocket import WsReply, WsRequest, ws_route


@ws_route
def handler(request: WsRequest) -> WsReply:
    return {"type": "pong"}
