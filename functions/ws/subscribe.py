"""WebSocket `subscribe`: own jobs, one job, or (services) an owner or a type."""

from jobcore.websocket import WsReply, WsRequest, ws_route


@ws_route
def handler(request: WsRequest) -> WsReply:
    topic = request.subscriptions.subscribe(request.connection_id, request.principal, request.topic())
    return {"type": "subscribed", "topic": topic.to_wire()}
