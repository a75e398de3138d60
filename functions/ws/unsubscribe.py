"""WebSocket `unsubscribe`: the same fields as subscribe."""

from jobcore.websocket import WsReply, WsRequest, ws_route


@ws_route
def handler(request: WsRequest) -> WsReply:
    topic = request.subscriptions.unsubscribe(request.connection_id, request.principal, request.topic())
    return {"type": "unsubscribed", "topic": topic.to_wire()}
