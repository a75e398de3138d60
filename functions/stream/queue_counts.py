"""The jobs table's stream to each queue's counts by state and per-minute history."""

from jobcore.stream import counts_handler

handler = counts_handler
