"""The jobs table's stream to the WebSocket subscribers of each changed job."""

from jobcore.stream import fan_out_handler

handler = fan_out_handler
