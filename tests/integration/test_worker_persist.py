from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg
import msgspec
import pytest

from gochat_py import messages, times
from gochat_py.devstack.services import free_port
from gochat_py.ids import uuid7
from gochat_py.outages import POSTGRES_DOWN
from tests.stream_traffic import Traffic, create_chats, stored_ids
from worker.persist import (
    Failure,
    Persisted,
    classify,
    persist_batch,
    persist_isolating,
    to_row,
)

FUTURE_MS = 4_102_444_800_000  # 2100-01-01: later than any conversation's created-at now()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=0, max_size=2)
    yield pool
    await pool.close()


def ms(value: datetime) -> int:
    return times.unix_ms(value)


async def test_a_batch_is_stored_with_every_field_and_moves_each_conversation_forward(
    db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    chats = await create_chats(db, 2)
    traffic = Traffic(chats)
    sent = [
        traffic.message(chats[i % 2], sent_at=FUTURE_MS + i, client_msg_id=f"c{i}")
        for i in range(6)
    ]

    persisted = await persist_batch(pool, [to_row(m) for m in sent])

    assert persisted.inserted == 6
    assert persisted.displaced == []
    rows = {r["id"]: r for r in await db.fetch("SELECT * FROM messages")}
    for message in sent:
        row = rows[message.id]
        assert (row["conversation_id"], row["seq"], row["sender_id"]) == (
            message.conversation_id,
            message.seq,
            message.sender_id,
        )
        assert (row["type"], row["content"], row["client_msg_id"]) == (
            "text",
            message.content,
            message.client_msg_id,
        )
        assert ms(row["sent_at"]) == message.sent_at
    for chat, newest in ((chats[0], FUTURE_MS + 4), (chats[1], FUTURE_MS + 5)):
        conversation = await db.fetchrow(
            "SELECT last_seq, last_activity_at FROM conversations WHERE id = $1",
            chat.conversation_id,
        )
        assert conversation["last_seq"] == 3
        assert ms(conversation["last_activity_at"]) == newest


async def test_an_empty_batch_stores_nothing_and_is_not_an_error(
    db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    assert await persist_isolating(pool, []) == Persisted()
    assert await stored_ids(db) == []


async def test_the_same_message_twice_in_a_batch_or_redelivered_is_stored_once(
    db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    traffic = Traffic(await create_chats(db, 1))
    first, second = (to_row(m) for m in traffic.burst(2))

    assert (await persist_batch(pool, [first, first, second])).inserted == 2
    redelivered = await persist_batch(pool, [first, second])

    assert redelivered.inserted == 0
    assert redelivered.committed == [first, second]  # stored before, so safe to acknowledge
    assert sorted(await stored_ids(db)) == sorted([first.id, second.id])


async def test_a_batch_holding_some_stored_rows_stores_the_rest_and_moves_conversations_on(
    db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    chat = (await create_chats(db, 1))[0]
    traffic = Traffic([chat])
    stored, *fresh = (to_row(traffic.message(chat, sent_at=FUTURE_MS + i)) for i in range(3))
    await persist_batch(pool, [stored])

    persisted = await persist_batch(pool, [stored, *fresh])

    assert persisted.inserted == 2
    assert persisted.committed == [stored, *fresh]
    assert sorted(await stored_ids(db)) == sorted(r.id for r in (stored, *fresh))
    conversation = await db.fetchrow("SELECT last_seq, last_activity_at FROM conversations")
    assert conversation["last_seq"] == 3
    assert ms(conversation["last_activity_at"]) == FUTURE_MS + 2


async def test_an_older_batch_never_moves_a_conversation_backwards(
    db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    chat = (await create_chats(db, 1))[0]
    traffic = Traffic([chat])
    older = traffic.message(chat, sent_at=FUTURE_MS + 1)
    newer = traffic.message(chat, sent_at=FUTURE_MS + 2)

    await persist_batch(pool, [to_row(newer)])
    await persist_batch(pool, [to_row(older)])

    conversation = await db.fetchrow(
        "SELECT last_seq, last_activity_at FROM conversations WHERE id = $1", chat.conversation_id
    )
    assert conversation["last_seq"] == 2
    assert ms(conversation["last_activity_at"]) == FUTURE_MS + 2


async def test_one_rejected_row_fails_the_whole_batch_transaction(
    db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    chat = (await create_chats(db, 1))[0]
    traffic = Traffic([chat])
    good = traffic.message(chat)
    orphan = traffic.message(chat, sender_id=uuid7())  # no such user

    with pytest.raises(asyncpg.ForeignKeyViolationError) as caught:
        await persist_batch(pool, [to_row(good), to_row(orphan)])

    assert classify(caught.value) is Failure.REJECTED
    assert await stored_ids(db) == []
    assert await db.fetchval("SELECT last_seq FROM conversations") == 0


async def test_isolation_stores_the_good_rows_and_names_each_poison(
    db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    chat = (await create_chats(db, 1))[0]
    traffic = Traffic([chat])
    good = [traffic.message(chat) for _ in range(3)]
    poison = {
        "23503": traffic.message(chat, sender_id=uuid7()),  # unknown sender
        "23514": traffic.message(chat, seq=0),  # CHECK (seq > 0)
        "22021": traffic.message(chat, content="nul \x00 byte"),  # not storable as text
        "OverflowError": traffic.message(chat, seq=2**63),  # past bigint, caught by asyncpg
    }
    rows = [to_row(m) for m in (good[0], *poison.values(), good[1], good[2])]

    persisted = await persist_isolating(pool, rows)

    assert persisted.inserted == 3
    assert sorted(await stored_ids(db)) == sorted(m.id for m in good)
    assert set(persisted.rejected) == {m.id for m in poison.values()}
    for code, message in poison.items():
        assert persisted.rejected[message.id].startswith(code.strip()), persisted.rejected
    assert "sender_id" in persisted.rejected[poison["23503"].id]
    assert await db.fetchval("SELECT last_seq FROM conversations") == 3  # the good ones' seqs


async def test_one_poison_row_among_a_thousand_is_set_apart_in_few_transactions(
    db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    chat = (await create_chats(db, 1))[0]
    traffic = Traffic([chat])
    good = [to_row(m) for m in traffic.burst(1000)]
    poison = to_row(traffic.message(chat, sender_id=uuid7()))  # no such user
    first_xid = await db.fetchval("SELECT txid_current()")

    persisted = await persist_isolating(pool, [*good[:600], poison, *good[600:]])

    # Every attempt inserts rows, so each takes a transaction id; txid_current() takes one.
    attempts = await db.fetchval("SELECT txid_current()") - first_xid - 1
    assert attempts <= 1 + 2 * 10  # two halves per level of 1,001 rows; one per row: 1,001
    assert persisted.inserted == 1000
    assert list(persisted.rejected) == [poison.id]
    assert persisted.rejected[poison.id].startswith("23503 ")
    assert sorted(await stored_ids(db)) == sorted(r.id for r in good)


async def test_a_message_whose_seq_is_taken_by_another_is_reported_not_silently_dropped(
    db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    chat = (await create_chats(db, 1))[0]
    traffic = Traffic([chat])
    original = traffic.message(chat, sent_at=FUTURE_MS)
    stored = to_row(original)
    imposter = stored._replace(id=uuid7(), sent_at=stored.sent_at.replace(year=2101))
    await persist_batch(pool, [stored])

    persisted = await persist_batch(pool, [imposter])

    assert persisted.inserted == 0
    assert persisted.displaced == [imposter]
    assert persisted.committed == []
    assert await stored_ids(db) == [original.id]
    last_activity = await db.fetchval("SELECT last_activity_at FROM conversations")
    assert ms(last_activity) == FUTURE_MS  # the displaced row does not count as activity


async def test_an_unreachable_server_means_unavailable_not_a_rejection(
    db: asyncpg.Connection,
) -> None:
    traffic = Traffic(await create_chats(db, 1))
    row = to_row(traffic.burst(1)[0])
    nowhere = await asyncpg.create_pool(
        f"postgresql://gochat@127.0.0.1:{free_port()}/gochat", min_size=0, max_size=1
    )
    try:
        with pytest.raises(OSError) as caught:
            await persist_isolating(nowhere, [row])
    finally:
        await nowhere.close()
    assert classify(caught.value) is Failure.UNAVAILABLE


@pytest.mark.parametrize(
    ("error", "failure"),
    [
        (asyncpg.ForeignKeyViolationError("fk"), Failure.REJECTED),
        (asyncpg.CheckViolationError("check"), Failure.REJECTED),
        (asyncpg.UniqueViolationError("unique"), Failure.REJECTED),
        (asyncpg.CharacterNotInRepertoireError("nul"), Failure.REJECTED),
        (asyncpg.NumericValueOutOfRangeError("range"), Failure.REJECTED),
        (OverflowError("value out of int64 range"), Failure.REJECTED),
        (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates"), Failure.REJECTED),
        (ConnectionRefusedError(111, "refused"), Failure.UNAVAILABLE),
        (ConnectionResetError(104, "reset"), Failure.UNAVAILABLE),
        (TimeoutError(), Failure.UNAVAILABLE),
        (asyncpg.ConnectionDoesNotExistError("gone"), Failure.UNAVAILABLE),
        (asyncpg.CannotConnectNowError("starting up"), Failure.UNAVAILABLE),
        (asyncpg.AdminShutdownError("terminating connection"), Failure.UNAVAILABLE),
        (asyncpg.TooManyConnectionsError("too many"), Failure.UNAVAILABLE),
        (asyncpg.InterfaceError("connection is closed"), Failure.UNAVAILABLE),
        (asyncpg.ClientConfigurationError("bad dsn"), Failure.UNAVAILABLE),
        (asyncpg.InternalClientError("another operation is in progress"), Failure.UNAVAILABLE),
        (asyncpg.DeadlockDetectedError("deadlock"), Failure.TRANSIENT),
        (asyncpg.SerializationError("serialization"), Failure.TRANSIENT),
        (asyncpg.UndefinedTableError("no messages table"), Failure.TRANSIENT),
        (KeyError("a bug"), None),
    ],
)
def test_errors_are_sorted_by_what_they_say_about_the_batch(
    error: BaseException, failure: Failure | None
) -> None:
    assert classify(error) is failure


@pytest.mark.parametrize("kind", POSTGRES_DOWN, ids=lambda kind: kind.__name__)
def test_whatever_the_server_answers_503_for_the_worker_waits_out(kind: type[Exception]) -> None:
    # One list (gochat_py/outages.py) for both: a PostgreSQL outage is never a dead letter.
    error = kind(111, "refused") if issubclass(kind, OSError) else kind("down")
    assert classify(error) is Failure.UNAVAILABLE


async def stored_state(db: asyncpg.Connection, message_id: object) -> tuple[object, ...]:
    row = await db.fetchrow(
        "SELECT content, edited_at IS NOT NULL, deleted_at IS NOT NULL, changed_seq, seq"
        " FROM messages WHERE id = $1",
        message_id,
    )
    assert row is not None
    return tuple(row)


async def test_changes_apply_in_log_order_whatever_order_and_how_often_they_arrive(
    db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    (chat,) = await create_chats(db, 1)
    traffic = Traffic([chat])
    original = traffic.message(chat)
    first, second = traffic.change(original, "edited once"), traffic.change(original, "twice")
    # The newest change first, then the older one, then the newest again (a redelivery),
    # and the message itself last (another worker held it): the newest change stands.
    await persist_batch(pool, [to_row(second)])
    assert await stored_state(db, original.id) == ("twice", True, False, 3, 1)
    await persist_batch(pool, [to_row(first)])
    assert await stored_state(db, original.id) == ("twice", True, False, 3, 1)
    await persist_batch(pool, [to_row(second)])
    persisted = await persist_batch(pool, [to_row(original)])
    assert persisted.displaced == [] and persisted.rejected == {}
    assert await stored_state(db, original.id) == ("twice", True, False, 3, 1)
    assert await db.fetchval("SELECT last_seq FROM conversations") == 3


async def test_a_message_and_its_changes_in_one_batch_end_as_the_last_change(
    db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    (chat,) = await create_chats(db, 1)
    traffic = Traffic([chat])
    original, other = traffic.message(chat), traffic.message(chat)
    edit, delete = traffic.change(original, "edited"), traffic.change(original, None)
    late_edit = traffic.change(original, "raced past the delete")
    rows = [to_row(e) for e in (original, other, edit, delete, late_edit)]
    persisted = await persist_batch(pool, rows)
    assert len(persisted.committed) == 5
    # Deleted stays deleted, with no text, whatever change comes after.
    assert await stored_state(db, original.id) == ("", False, True, 4, 1)
    assert await stored_state(db, other.id) == ("message 2", False, False, None, 2)
    # Again, as a batch redelivered after a crash before its ack.
    await persist_batch(pool, rows)
    assert await stored_state(db, original.id) == ("", False, True, 4, 1)
    assert await db.fetchval("SELECT count(*) FROM messages") == 2


async def test_entries_of_a_deleted_conversation_are_reported_gone_and_bring_nothing_back(
    db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    kept, deleted = await create_chats(db, 2)
    traffic = Traffic([kept, deleted])
    survivor = traffic.message(kept)
    orphans = [traffic.message(deleted) for _ in range(3)]
    edit = messages.MessageChange(
        event="message_updated",
        message=msgspec.structs.replace(orphans[0], content="edited"),
        changed_at=orphans[0].sent_at,
        seq=orphans[-1].seq + 1,
    )
    await db.execute("DELETE FROM conversations WHERE id = $1", deleted.conversation_id)
    rows = [to_row(m) for m in (orphans[0], survivor, *orphans[1:], edit)]

    persisted = await persist_isolating(pool, rows)

    assert persisted.rejected == {}
    assert [r.id for r in persisted.gone] == [*(m.id for m in orphans), orphans[0].id]
    assert [r.id for r in persisted.committed] == [survivor.id]
    assert await stored_ids(db) == [survivor.id]
    # Also when the batch is merged after a redelivery (the second path of persist_batch).
    again = await persist_batch(pool, rows)
    assert [r.id for r in again.committed] == [survivor.id] and len(again.gone) == 4
    assert await stored_ids(db) == [survivor.id]
