"""WebSocket $disconnect (best effort: TTL and 410s on posts clean up what it misses)."""

from jobcore.live_api import WsReply, WsRequest, ws_route


def disconnect(request: WsRequest) -> WsReply:
    request.live.disconnect(request.connection_id)
    return None


handler = ws_route(disconnect)
