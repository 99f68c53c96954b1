"""`make dev` / `make run` / `make migrate` / `make seed` on one machine.

With DATABASE_URL and REDIS_URL (or REDIS_ADDR) unset, PostgreSQL and Redis start as child
processes with their data under `.data/`; everything started here stops on Ctrl-C.

    python -m gochat_py.devstack run [--reload]
    python -m gochat_py.devstack migrate up|down|status [VERSION]
    python -m gochat_py.devstack seed
"""

from __future__ import annotations

import asyncio
import sys

from gochat_py.devstack import runner, seed
from gochat_py.devstack.account import AccountError
from gochat_py.devstack.cluster_home import ClusterHomeError
from gochat_py.devstack.console import say
from gochat_py.devstack.services import StackError
from gochat_py.devstack.stack import environment, local_services, migrate_up
from gochat_py.postgres import migrate
from gochat_py.settings import SettingsError, load_settings

# Each says in one line what to do; anything else is a bug and keeps its traceback.
EXPECTED_ERRORS = (
    SettingsError,
    StackError,
    AccountError,
    ClusterHomeError,
    migrate.MigrationError,
    ValueError,
)


class DevError(RuntimeError):
    pass


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    try:
        if command == "run":
            return runner.run(reload="--reload" in argv)
        if command == "migrate":
            if len(argv) < 2 or argv[1] not in ("up", "down", "status"):
                raise DevError("usage: migrate up|down|status [VERSION]")
            target = int(argv[2]) if len(argv) > 2 and argv[2].strip() else None
            with local_services(environment()) as (env, _):
                lines = asyncio.run(migrate.run(load_settings(env).database_url, argv[1], target))
            say("\n".join(lines) or "nothing to do")
            return 0
        if command == "seed":
            with local_services(environment()) as (env, _):
                settings = load_settings(env)
                migrate_up(settings)
                for line in asyncio.run(seed.run(settings)):
                    say(line)
            return 0
        raise DevError(__doc__ or "")
    except (DevError, *EXPECTED_ERRORS) as exc:
        say(f"error: {exc}")
        return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
