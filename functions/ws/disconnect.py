"""WebSocket $disconnect (best effort: TTL and 410s on posts clean up what it misses)."""

from jobcore.websocket import WsReply, WsRequest, ws_route


@ws_route
def handler(request: WsRequest) -> WsReply:
    request.subscriptions.disconnect(request.connection_id)
    return None
