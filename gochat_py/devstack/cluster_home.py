"""Where the PostgreSQL cluster lives when its service account cannot reach `.data/`.

As root, PostgreSQL runs as the service account (`account.py`), which cannot enter a
checkout inside a 0700 directory (`/root`, `mktemp -d`, CI workspaces). The cluster then
lives in a directory of its own under STATE_ROOT and `.data/postgres` is a symlink to it:
`.data/` stays the one place to look, and `rm -rf .data` still resets the stack: a cluster
whose checkout is still there but no longer links to it is removed on the next start as
root. A cluster whose whole checkout is gone may have moved with it (its next start
claims it again), so it is kept until ORPHAN_GRACE has passed since it last started."""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from gochat_py.devstack.account import Account, can_search
from gochat_py.devstack.console import say

# FHS state: kept across reboots (unlike /tmp) and reachable by the service account.
STATE_ROOT = Path("/var/lib/gochat-py/clusters")
# Root-owned and searchable but not listable: the account reaches its cluster by full path only.
TRAVERSE_ONLY = 0o711
OWNER_FILE = "owner"  # the absolute path of the `.data/postgres` symlink that keeps the cluster
CLUSTER_DIR = "pgdata"
LOCK_FILE = ".lock"
# A checkout moved elsewhere claims its cluster again at its next start; one unused this
# long went with a deleted checkout.
ORPHAN_GRACE = 30 * 24 * 3600.0


class ClusterHomeError(RuntimeError):
    """The state directory cannot be used; the message says what to do."""


def cluster_dir(link: Path, account: Account | None, state_root: Path = STATE_ROOT) -> Path:
    """The directory to run PostgreSQL on for `link` (`<LOCAL_DATA_DIR>/postgres`), moving
    an unreachable one out of the tree and dropping clusters nobody points at any more."""
    if account is None:
        return link
    if link.is_symlink() or state_root.is_dir():
        with _locked(state_root):
            target = _claimed(link, state_root)
            _remove_orphans(state_root)
        if target is not None:
            return target
    if can_search(account, link.parent):
        return link
    with _locked(state_root):
        return _new_home(link, account, state_root)


def _claimed(link: Path, state_root: Path) -> Path | None:
    """The cluster `link` points at, recorded as its owner (a checkout may have moved)."""
    if not link.is_symlink():
        return None
    target = Path(os.readlink(link))
    if target.parent.parent != state_root:
        return link.resolve()  # the developer's own symlink (a bigger disk, say): theirs to keep
    if not target.is_dir():
        link.unlink()  # its cluster was removed by hand: start afresh rather than fail
        return None
    owner = _owner(target.parent)
    if owner is not None and owner != link and _links_to(owner, target):
        # A copied checkout: two PostgreSQL servers on one data directory would corrupt it.
        raise ClusterHomeError(
            f"{link} links to the PostgreSQL cluster of {owner}: remove the link "
            "to start this copy afresh, or run the stack from that checkout"
        )
    (target.parent / OWNER_FILE).write_text(f"{link}\n")  # its mtime: when it last started
    return target


def _new_home(link: Path, account: Account, state_root: Path) -> Path:
    home = state_root / secrets.token_hex(8)
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


def _remove_orphans(state_root: Path) -> None:
    if not state_root.is_dir():
        return
    for home in state_root.iterdir():
        if home.is_dir() and _orphaned(home) and not _server_running(home / CLUSTER_DIR):
            say(f"removing the PostgreSQL cluster {home}: no checkout links to it any more")
            shutil.rmtree(home, ignore_errors=True)


def _orphaned(home: Path) -> bool:
    owner = _owner(home)
    if owner is None:
        return False  # not one of ours, or half-made by a start that crashed: leave it
    if _links_to(owner, home / CLUSTER_DIR):
        return False
    checkout = owner.parent.parent  # the directory that holds LOCAL_DATA_DIR
    if checkout.is_dir():
        return True  # still there without a link here: reset on purpose (rm -rf .data)
    try:
        last_started = (home / OWNER_FILE).stat().st_mtime
    except OSError:
        return False
    return time.time() - last_started > ORPHAN_GRACE


def _owner(home: Path) -> Path | None:
    try:
        return Path((home / OWNER_FILE).read_text().strip())
    except OSError:
        return None


def _links_to(link: Path, target: Path) -> bool:
    try:
        return link.is_symlink() and Path(os.readlink(link)) == target
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
def _locked(state_root: Path) -> Iterator[None]:
    """One start at a time decides: a sweep never sees another start's half-made home."""
    try:
        state_root.mkdir(parents=True, exist_ok=True)
        for directory in (state_root.parent, state_root):
            directory.chmod(TRAVERSE_ONLY)
        lock = (state_root / LOCK_FILE).open("a")
    except OSError as exc:
        raise ClusterHomeError(
            f"cannot use {state_root} ({exc.strerror}) for a PostgreSQL cluster its service "
            "account can reach: set LOCAL_DATA_DIR to a directory that account can enter"
        ) from exc
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
