"""WebSocket `unsubscribe`: the same fields as subscribe."""

from jobcore.live_api import WsReply, WsRequest, ws_route


def unsubscribe(request: WsRequest) -> WsReply:
    topic = request.live.unsubscribe(request.connection_id, request.principal, request.json())
    return {"type": "unsubscribed", "topic": topic.to_wire()}


handler = ws_route(unsubscribe)
