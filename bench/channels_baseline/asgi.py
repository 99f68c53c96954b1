"""Django Channels + channels_redis baseline for the fan-out benchmark (issue 4).

Speaks the bare server's protocol (bench/bare_server.py): `ws://127.0.0.1:<port>/ws?user=<n>`;
groups fixed at start by the JSON file in BENCH_GROUPS_FILE, `{"g0": [0, 1, 2], ...}`; a
client frame `{"conversation_id": "g0", "content": "..."}` reaches every socket of every
member of g0, the sender's included, as `{"id": <n>, "conversation_id": "g0", "sender_id":
<user>, "content": "...", "type": "text", "sent_at": <unix ms>}`; frames that do not decode
or come from a non-member are dropped. The consumer joins one Channels group per
conversation and `group_send`s, as a stock Channels chat does. `GET /health` answers 200.

Django Channels is never a dependency of gochat-py: it runs from its own venv, made by
`bench/channels_baseline/setup.sh` (or `launch.install()`) in bench/.channels-venv.

From the load generator, with a Redis it started and flushed:

    from bench.channels_baseline import launch
    argv, env = launch.command(port, groups_file, redis_url, "redis")  # or "pubsub"
    # start argv with env, e.g. pinned: ["taskset", "-c", "0", *argv]

or `launch.server_argv(layer)` as a bare-protocol server in bench.targets, whose environment
(REDIS_URL, SERVER_PORT, BENCH_GROUPS_FILE, cwd at the repo root) is all it needs.
By hand, from the repo root (uvicorn's options are in __main__.py, as gochat-py's):

    BENCH_PORT=8765 BENCH_GROUPS_FILE=/tmp/groups.json \\
    BENCH_REDIS_URL=redis://127.0.0.1:6379/0 \\
    bench/.channels-venv/bin/python -m bench.channels_baseline --layer pubsub

Environment: BENCH_PORT (else SERVER_PORT); BENCH_REDIS_URL (else REDIS_URL);
BENCH_CHANNEL_LAYER or --layer: `redis` (RedisChannelLayer) or `pubsub`
(RedisPubSubChannelLayer); BENCH_CHANNEL_CAPACITY (redis layer only, default 100: see
settings.py). `python -m bench.channels_baseline.smoke` checks all of it.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.channels_baseline.settings")
# Django must be set up before anything touches settings or the channel layer.
http_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from bench.channels_baseline.consumer import FanoutConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": http_application,
        "websocket": URLRouter([path("ws", FanoutConsumer.as_asgi())]),
    }
)
