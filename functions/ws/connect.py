"""WebSocket $connect: the authorizer let the caller in; remember the connection."""

from jobcore.live_api import WsReply, WsRequest, ws_route


def connect(request: WsRequest) -> WsReply:
    request.live.connect(request.connection_id, request.principal)
    return None


handler = ws_route(connect)
