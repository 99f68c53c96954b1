"""Redis: key and channel names, scripts, the send round trip, sessions, rate limits."""
