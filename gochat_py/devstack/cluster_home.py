"""Where the PostgreSQL cluster lives when its service account cannot reach `.data/`.

As root, PostgreSQL runs as the service account (`account.py`), which cannot enter a
checkout inside a 0700 directory (`/root`, `mktemp -d`, CI workspaces). The cluster then
lives in a directory of its own under STATE_ROOT and `.data/postgres` is a symlink to it:
`.data/` stays the one place to look, and `rm -rf .data` still resets the stack because a
cluster whose symlink is gone is removed on the next start as root."""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from gochat_py.devstack.account import Account, can_search

# FHS state: kept across reboots (unlike /tmp) and reachable by the service account.
STATE_ROOT = Path("/var/lib/gochat-py/clusters")
# Root-owned and searchable but not listable: the account reaches its cluster by full path only.
TRAVERSE_ONLY = 0o711
OWNER_FILE = "owner"  # the absolute path of the `.data/postgres` symlink that keeps the cluster
CLUSTER_DIR = "pgdata"
LOCK_FILE = ".lock"


class ClusterHomeError(RuntimeError):
    """The state directory cannot be used; the message says what to do."""


def cluster_dir(link: Path, account: Account | None) -> Path:
    """The directory to run PostgreSQL on for `link` (`<LOCAL_DATA_DIR>/postgres`), moving
    an unreachable one out of the tree and dropping clusters nobody points at any more."""
    if account is None:
        return link
    if link.is_symlink() or STATE_ROOT.is_dir():
        with _locked():
            target = _claimed(link)
            _remove_orphans()
        if target is not None:
            return target
    if can_search(account, link.parent):
        return link
    with _locked():
        return _new_home(link, account)


def _claimed(link: Path) -> Path | None:
    """The cluster `link` points at, recorded as its owner (a checkout may have moved)."""
    if not link.is_symlink():
        return None
    target = Path(os.readlink(link))
    if target.parent.parent != STATE_ROOT:
        return link.resolve()  # the developer's own symlink (a bigger disk, say): theirs to keep
    if not target.is_dir():
        link.unlink()  # its cluster was removed by hand: start afresh rather than fail
        return None
    (target.parent / OWNER_FILE).write_text(f"{link}\n")
    return target


def _new_home(link: Path, account: Account) -> Path:
    home = STATE_ROOT / secrets.token_hex(8)
    home.mkdir(mode=TRAVERSE_ONLY)
    home.chmod(TRAVERSE_ONLY)  # mkdir's mode is filtered by the umask
    (home / OWNER_FILE).write_text(f"{link}\n")
    data = home / CLUSTER_DIR
    if link.is_dir():
        # A cluster made here before, or the empty directory a failed initdb left behind.
        try:
            link.rmdir()
        except OSError:
            shutil.move(link, data)
    if not data.exists():
        data.mkdir(mode=0o700)
        os.chown(data, account.uid, account.gid)
    link.symlink_to(data, target_is_directory=True)
    return data


def _remove_orphans() -> None:
    if not STATE_ROOT.is_dir():
        return
    for home in STATE_ROOT.iterdir():
        if not home.is_dir() or _still_owned(home) or _server_running(home / CLUSTER_DIR):
            continue
        shutil.rmtree(home, ignore_errors=True)


def _still_owned(home: Path) -> bool:
    try:
        owner = Path((home / OWNER_FILE).read_text().strip())
        return owner.is_symlink() and Path(os.readlink(owner)) == home / CLUSTER_DIR
    except OSError:
        return False


def _server_running(data: Path) -> bool:
    """A cluster whose `.data` went away while its server runs is left to that run."""
    try:
        pid = int((data / "postmaster.pid").read_text().split("\n", 1)[0])
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    """One start at a time decides: a sweep never sees another start's half-made home."""
    try:
        STATE_ROOT.mkdir(parents=True, exist_ok=True)
        for directory in (STATE_ROOT.parent, STATE_ROOT):
            directory.chmod(TRAVERSE_ONLY)
        lock = (STATE_ROOT / LOCK_FILE).open("a")
    except OSError as exc:
        raise ClusterHomeError(
            f"cannot use {STATE_ROOT} ({exc.strerror}) for a PostgreSQL cluster its service "
            "account can reach: set LOCAL_DATA_DIR to a directory that account can enter"
        ) from exc
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
