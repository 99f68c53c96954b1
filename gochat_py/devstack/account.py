"""The unprivileged account PostgreSQL runs as when the stack is started by root."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# PostgreSQL refuses to run as root; `nobody` covers systems without a `postgres` user.
SERVICE_ACCOUNTS = ("postgres", "nobody")


class AccountError(RuntimeError):
    """No account exists to run PostgreSQL as; the message says what to do."""


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    # Its own supplementary groups: without them a child keeps root's (group 0 included).
    groups: tuple[int, ...]


def service_account() -> Account | None:
    """The account to run PostgreSQL as: None unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in SERVICE_ACCOUNTS:
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            groups = tuple(os.getgrouplist(name, entry.pw_gid))
            return Account(name, entry.pw_uid, entry.pw_gid, groups)
    raise AccountError(
        "running as root and no `postgres` or `nobody` user exists to run PostgreSQL: "
        "create one (useradd --system postgres) or run as another user"
    )


def can_search(account: Account, path: Path) -> bool:
    """Whether `account` can enter `path` (and so every directory above it), as the kernel
    answers it for a process with that account's credentials."""
    # coreutils `test -x` is access(2) under the credentials the child runs with; our own
    # interpreter may sit in a venv the account cannot reach, so it cannot ask.
    test = shutil.which("test") or "/usr/bin/test"
    out = subprocess.run(
        [test, "-x", str(path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        user=account.uid,
        group=account.gid,
        extra_groups=list(account.groups),
        cwd="/",
        check=False,
    )
    return out.returncode == 0
