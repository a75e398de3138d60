"""WebSocket `subscribe`: own jobs, one job, or (services) an owner or a type."""

from jobcore.live_api import WsReply, WsRequest, ws_route


def subscribe(request: WsRequest) -> WsReply:
    topic = request.live.subscribe(request.connection_id, request.principal, request.json())
    return {"type": "subscribed", "topic": topic.to_wire()}


handler = ws_route(subscribe)
