"""`make dev` / `make run`: PostgreSQL, Redis, the API server and the worker (and the
webhook deliverer when NOTIFY_WEBHOOK_URL is set), kept running until Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterable

from gochat_py.devstack.codewatch import CodeWatcher
from gochat_py.devstack.console import say
from gochat_py.devstack.services import StackError, port_in_use
from gochat_py.devstack.stack import (
    PROJECT_ROOT,
    environment,
    local_services,
    migrate_up,
    restart_backoff_max,
)
from gochat_py.devstack.supervisor import AppProcess, Supervisor
from gochat_py.settings import load_settings

# Which processes import which package: a change restarts exactly those. The worker
# imports gochat_py (the stream contract, settings), never the reverse.
CODE_USERS = {"gochat_py": ("server", "worker", "webhooks"), "worker": ("worker", "webhooks")}


def run(reload: bool) -> int:
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    env = environment()
    settings = load_settings(env)
    backoff_max = restart_backoff_max(env)
    if port_in_use(settings.server_port, settings.server_host):
        raise StackError(
            f"port {settings.server_port} for the API server is in use: stop whatever holds it "
            "or set SERVER_PORT to a free port"
        )
    with local_services(env) as (env, services):
        settings = load_settings(env)
        migrate_up(settings)
        supervisor = Supervisor(wait_for_changes=reload, backoff_max=backoff_max)
        for service in services:
            supervisor.adopt(service)
        # Reloading is ours, not uvicorn's or the watchfiles CLI's: their wrappers do not
        # notice the process under them dying, and ours must, to start it again.
        processes = [("server", "gochat_py"), ("worker", "worker")]
        if settings.notify_webhook_url:  # the webhook for offline users is on
            processes.append(("webhooks", "worker.webhooks"))
        for name, module in processes:
            argv = [sys.executable, "-m", module]
            supervisor.launch(AppProcess(name, argv, env, PROJECT_ROOT))
        say(f"api       http://127.0.0.1:{settings.server_port}  (Ctrl-C stops everything)")
        watcher = CodeWatcher(PROJECT_ROOT, CODE_USERS) if reload else None
        try:
            return supervisor.run(lambda: stopping, watcher.take if watcher else _nothing)
        finally:
            if watcher:
                watcher.close()
            supervisor.stop()


def _nothing() -> Iterable[str]:
    return ()
