"""Live updates: subscriptions (who follows what), messages (what a change says), delivery
(the fan-out of the jobs table's stream to the subscribers' sockets)."""
