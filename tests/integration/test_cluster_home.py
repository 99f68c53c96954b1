"""Where root's PostgreSQL cluster lives when the service account cannot reach `.data/`,
and which clusters a start may remove: real directories, a state root of the test's own."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gochat_py.devstack import cluster_home
from gochat_py.devstack.account import Account, service_account
from gochat_py.devstack.cluster_home import ORPHAN_GRACE, ClusterHomeError, cluster_dir

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="clusters move out only for root")


@pytest.fixture
def account() -> Account:
    found = service_account()
    assert found is not None
    return found


@pytest.fixture
def places(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A state root, and a 0700 directory for checkouts the service account cannot enter."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    yield tmp_path / "state" / "clusters", private


def checkout(private: Path, name: str) -> Path:
    """The `.data/postgres` link path of a new checkout."""
    data = private / name / ".data"
    data.mkdir(parents=True)
    return data / "postgres"


def test_an_unreachable_checkout_gets_a_cluster_outside_linked_from_its_data_dir(
    account: Account, places: tuple[Path, Path]
) -> None:
    state_root, private = places
    link = checkout(private, "a")
    data = cluster_dir(link, account, state_root)
    assert data.parent.parent == state_root
    assert link.is_symlink() and Path(os.readlink(link)) == data
    assert (data.stat().st_uid, data.stat().st_mode & 0o777) == (account.uid, 0o700)
    assert cluster_dir(link, account, state_root) == data  # the next start finds it again


def test_a_reset_checkout_loses_its_old_cluster_on_the_next_start(
    account: Account, places: tuple[Path, Path]
) -> None:
    state_root, private = places
    link = checkout(private, "a")
    old = cluster_dir(link, account, state_root)
    link.unlink()  # rm -rf .data/postgres: the checkout itself is still there
    new = cluster_dir(link, account, state_root)
    assert new != old and not old.parent.exists()


def test_a_moved_checkout_keeps_its_cluster_and_claims_it_again(
    account: Account, places: tuple[Path, Path]
) -> None:
    state_root, private = places
    link = checkout(private, "a")
    data = cluster_dir(link, account, state_root)
    (private / "a").rename(private / "moved")
    cluster_dir(checkout(private, "other"), account, state_root)  # another start sweeps
    assert data.is_dir()
    moved = private / "moved" / ".data" / "postgres"
    assert cluster_dir(moved, account, state_root) == data
    assert (data.parent / cluster_home.OWNER_FILE).read_text().strip() == str(moved)


def test_a_checkout_gone_longer_than_the_grace_loses_its_cluster(
    account: Account, places: tuple[Path, Path]
) -> None:
    state_root, private = places
    data = cluster_dir(checkout(private, "a"), account, state_root)
    (private / "a" / ".data" / "postgres").unlink()
    (private / "a" / ".data").rmdir()
    (private / "a").rmdir()
    owner = data.parent / cluster_home.OWNER_FILE
    cluster_dir(checkout(private, "b"), account, state_root)
    assert data.is_dir()  # gone, but maybe moved: kept within the grace
    long_ago = time.time() - ORPHAN_GRACE - 60
    os.utime(owner, (long_ago, long_ago))
    cluster_dir(private / "b" / ".data" / "postgres", account, state_root)
    assert not data.parent.exists()


def test_a_copied_checkout_is_refused_rather_than_sharing_the_data_directory(
    account: Account, places: tuple[Path, Path]
) -> None:
    state_root, private = places
    original = checkout(private, "a")
    data = cluster_dir(original, account, state_root)
    copy = checkout(private, "copy")
    copy.symlink_to(data, target_is_directory=True)  # what `cp -a` of the checkout makes
    with pytest.raises(ClusterHomeError, match="links to the PostgreSQL cluster of"):
        cluster_dir(copy, account, state_root)
    assert (data.parent / cluster_home.OWNER_FILE).read_text().strip() == str(original)
    assert cluster_dir(original, account, state_root) == data
