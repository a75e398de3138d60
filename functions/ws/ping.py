"""WebSocket `ping`: answers `{"type": "pong"}` (clients keep idle connections open with it)."""

from jobcore.live_api import WsReply, WsRequest, ws_route


def ping(request: WsRequest) -> WsReply:
    return {"type": "pong"}


handler = ws_route(ping)
