"""WebSocket $connect: the authorizer let the caller in; remember the connection."""

from jobcore.websocket import WsReply, WsRequest, ws_route


@ws_route
def handler(request: WsRequest) -> WsReply:
    request.subscriptions.connect(request.connection_id, request.principal)
    return None
