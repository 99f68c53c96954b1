"""Django Channels + channels_redis baseline server for the fan-out benchmark (see asgi.py)."""
