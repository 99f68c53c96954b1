"""The WebSocket door under hostile frames, with Hypothesis against a live server.

Whatever a client sends, its socket gets an error frame (and stays open) or a documented
close (1007 text that is not UTF-8, 1008 a flood, 1009 a frame over MAX_FRAME_BYTES),
never 1011; a refused frame publishes nothing (the stream and the conversations' seq
counters in Redis do not move, and an accepted message moves them by one); and another
user's socket on the same server is served throughout.

One socket is reused across examples and reopened only when the server closed it. After
each fuzzed frame a ping follows: frames are handled in order, so the pong marks the end
of the fuzzed frame's replies. The test server's frame budget (tests/harness.py
server_environment: WS_RATE and WS_BURST 5000) is far above what the examples send, so the
throttle never answers in their place: each example is two frames."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from redis import Redis
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from gochat_py.broadcasts import MAX_CLIENT_BROADCAST_ID, MAX_RECIPIENTS
from gochat_py.messages import MAX_CLIENT_MSG_ID, MAX_CONTENT_CHARS, MAX_SEQ
from gochat_py.redis import keys
from gochat_py.websocket.close_codes import (
    WS_1007_INVALID_DATA,
    WS_1008_POLICY_VIOLATION,
    WS_1009_MESSAGE_TOO_BIG,
)
from gochat_py.websocket.frames import MAX_FRAME_BYTES
from tests.fuzz.conftest import (
    LiveServer,
    fuzz_settings,
    is_uuid,
    register_sync,
    start_conversation,
    upload_sync,
)
from tests.media_files import png

# What a client at fault may be closed with; 1011 (a server bug) never.
DOCUMENTED_CLOSES = {WS_1007_INVALID_DATA, WS_1008_POLICY_VIOLATION, WS_1009_MESSAGE_TOO_BIG}
REPLY_TIMEOUT = 10.0  # a live server answers a ping in milliseconds; this is a hang
BYSTANDER_EVERY = 10  # examples between two checks that the other user's socket is served
PING = '{"event": "ping"}'
KNOWN_EVENTS = (
    "message",
    "typing",
    "read",
    "received",
    "ping",
    "auth",
    "edit",
    "delete",
    "broadcast",
    "resume",
)


@dataclass
class Outcome:
    """What the server did with one fuzzed frame."""

    frames: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None  # set when the server closed the socket instead

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("event") == "error"]

    @property
    def acks(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("event") == "ack"]

    @property
    def broadcast_results(self) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("event") == "broadcast_result"]

    @property
    def refused(self) -> bool:
        return bool(self.errors) or self.close_code is not None


class FuzzedSocket:
    """One user's socket, reopened when the server has closed it."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._open_socket: ExitStack | None = None
        self._socket: ClientConnection | None = None

    def _open(self) -> ClientConnection:
        if self._socket is None:
            self._open_socket = ExitStack()
            self._socket = self._open_socket.enter_context(
                connect(self._url, max_size=None, open_timeout=REPLY_TIMEOUT)
            )
        return self._socket

    def exchange(self, payload: str | bytes, text: bool = True) -> Outcome:
        socket = self._open()
        outcome = Outcome()
        try:
            socket.send(payload, text=text)
            socket.send(PING)
            while True:
                frame = json.loads(socket.recv(timeout=REPLY_TIMEOUT))
                assert isinstance(frame, dict), f"a frame that is not a JSON object: {frame!r}"
                if frame.get("event") == "pong":
                    return outcome
                outcome.frames.append(frame)
        except ConnectionClosed as closed:
            self.close()
            outcome.close_code = closed.rcvd.code if closed.rcvd else None
            assert outcome.close_code in DOCUMENTED_CLOSES, (
                f"closed with {outcome.close_code} ({closed.rcvd}) after {payload[:200]!r}"
            )
        return outcome

    def close(self) -> None:
        if self._open_socket is not None:
            self._open_socket.close()
        self._open_socket = self._socket = None


class Bystander:
    """A second user, with a socket open in a conversation of their own."""

    def __init__(self, socket: ClientConnection, conversation_id: str) -> None:
        self.socket = socket
        self.conversation_id = conversation_id

    def still_served(self) -> None:
        """Sends a message and gets its ack and the message itself back."""
        ref = uuid.uuid4().hex
        self.socket.send(
            json.dumps(
                {
                    "conversation_id": self.conversation_id,
                    "content": "still here",
                    "client_msg_id": ref,
                }
            )
        )
        acked = delivered = False
        while not (acked and delivered):
            frame = json.loads(self.socket.recv(timeout=REPLY_TIMEOUT))
            acked = acked or (frame.get("event") == "ack" and frame["client_msg_id"] == ref)
            delivered = delivered or ("event" not in frame and frame["client_msg_id"] == ref)


@dataclass
class World:
    """The fuzzing user's socket, the ids it may aim at, the bystander and Redis."""

    socket: FuzzedSocket
    me: str  # the fuzzing user
    peer: str  # the other member of `member_of`
    member_of: str  # a conversation the fuzzing user is in
    foreign: str  # one they are not in
    bystander: Bystander
    media: tuple[str, str, str]  # their image, their text file, the peer's image
    redis: Redis
    partitions: int
    examples: int = 0

    def published(self) -> tuple[int, dict[str, int]]:
        """Entries in every stream partition, and each known conversation's last seq."""
        entries = sum(int(self.redis.xlen(keys.stream(p))) for p in range(self.partitions))
        seqs = {
            conversation: int(
                self.redis.get(keys.sequence(uuid.UUID(conversation), self.partitions)) or 0
            )
            for conversation in (self.member_of, self.foreign, self.bystander.conversation_id)
        }
        return entries, seqs

    def send(self, payload: str | bytes, text: bool = True) -> Outcome:
        """The fuzzed frame, checked against the properties every frame must keep."""
        before = self.published()
        outcome = self.socket.exchange(payload, text)
        entries, seqs = self.published()
        new = [a for a in outcome.acks if not a["duplicate"]]
        # A broadcast's sends, each of which a message published.
        new += [
            sent
            for result in outcome.broadcast_results
            if not result["duplicate"]
            for sent in result["results"]
            if sent["status"] == "sent"
        ]
        # Published exactly what was acknowledged: a refused frame moves nothing.
        assert entries - before[0] == len(new), (payload[:300], outcome)
        for conversation, seq in seqs.items():
            moved = sum(1 for a in new if a["conversation_id"] == conversation)
            assert seq - before[1][conversation] == moved, (payload[:300], outcome)
        if outcome.errors:
            assert not outcome.acks and not outcome.broadcast_results, (payload[:300], outcome)
        self.examples += 1
        if self.examples % BYSTANDER_EVERY == 0:
            self.bystander.still_served()
        return outcome

    def refuses(self, payload: str | bytes, text: bool = True) -> Outcome:
        """The fuzzed frame is one the server must refuse: an error frame or a close."""
        outcome = self.send(payload, text)
        assert outcome.refused, f"accepted {payload[:300]!r}: {outcome}"
        return outcome


@pytest.fixture(scope="module")
def world(live_server: LiveServer) -> Iterator[World]:
    with httpx.Client(base_url=live_server.base_url) as client:
        fuzzer, peer, bystander, friend = (register_sync(client) for _ in range(4))
        member_of = start_conversation(
            client, fuzzer["tokens"], {"participant_id": peer["user"]["id"]}
        )
        foreign = start_conversation(
            client, peer["tokens"], {"participant_id": bystander["user"]["id"]}
        )
        theirs = start_conversation(
            client, bystander["tokens"], {"participant_id": friend["user"]["id"]}
        )
        media = (
            upload_sync(client, fuzzer["tokens"], png(), "mine.png"),
            upload_sync(client, fuzzer["tokens"], b"notes\n", "mine.txt"),
            upload_sync(client, peer["tokens"], png(8, 8), "theirs.png"),
        )
    # Acks of every send and the copy of one's own (docs/websocket.md), the answer to a
    # resume, and no other events: each example's replies end with the pong that follows it.
    url = f"{live_server.ws_url}?events=ack,echo,resume&token="
    with (
        connect(url + bystander["tokens"]["access_token"]) as bystanders_socket,
        Redis.from_url(live_server.redis_url) as redis,
    ):
        world = World(
            FuzzedSocket(url + fuzzer["tokens"]["access_token"]),
            fuzzer["user"]["id"],
            peer["user"]["id"],
            member_of,
            foreign,
            Bystander(bystanders_socket, theirs),
            media,
            redis,
            live_server.stream_partitions,
        )
        yield world
        world.socket.close()
        # At the end too: the last examples did not starve the other user.
        world.bystander.still_served()


def _json(value: Any, ascii_only: bool = False) -> str:
    """JSON text; a string holding a lone surrogate can only travel as a `\\u` escape."""
    try:
        return json.dumps(value, ensure_ascii=ascii_only).encode().decode()
    except UnicodeEncodeError:
        return json.dumps(value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=25,
)
# Strings the frames' string fields must survive: controls, NUL, astral and combining
# characters, right-to-left marks, noncharacters, and long ones.
hostile_text = st.one_of(
    st.text(),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=50),
    st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3),  # lone surrogates
    st.sampled_from(
        [
            "",
            " ",
            "\t\n",
            "\u3000",
            "\u00a0\n",
            "\u0000",
            "a\u0000b",
            "\u202e",
            "\ufeff",
            "\uffff",
            "\U0010ffff",
            "e\u0301",
            "😀" * 3,
        ]
    ),
    st.integers(MAX_CONTENT_CHARS - 2, MAX_CONTENT_CHARS + 2).map(lambda n: "x" * n),
    st.integers(0, 5 * MAX_CONTENT_CHARS).map(lambda n: "x" * n),
)
not_a_string = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def test_any_json_value_gets_an_answer_and_never_a_crash(world: World) -> None:
    @fuzz_settings()
    @given(value=json_values)
    def check(value: Any) -> None:
        # Only an object carrying an event or a conversation can be a frame at all.
        could_be_a_frame = isinstance(value, dict) and ({"event", "conversation_id"} & set(value))
        if could_be_a_frame:
            world.send(_json(value))
        else:
            assert world.refuses(_json(value)).errors

    check()


def test_random_text_and_bytes_are_refused(world: World) -> None:
    @fuzz_settings()
    @given(payload=st.one_of(st.text(max_size=2000), st.binary(max_size=2000)))
    def check(payload: str | bytes) -> None:
        # A binary frame is read as JSON too; random bytes are not a frame.
        assert world.refuses(payload, text=isinstance(payload, str)).errors

    check()


def test_a_text_frame_that_is_not_utf8_is_closed_with_1007(world: World) -> None:
    @fuzz_settings()
    @given(
        before=st.binary(max_size=100),
        bad=st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]),
    )
    def check(before: bytes, bad: bytes) -> None:
        outcome = world.send(before + bad, text=True)
        assert outcome.close_code == WS_1007_INVALID_DATA, outcome

    check()


def test_frames_near_and_over_the_size_limit(world: World) -> None:
    @fuzz_settings()
    @given(
        size=st.one_of(
            st.integers(MAX_FRAME_BYTES - 64, MAX_FRAME_BYTES + 64),
            st.integers(MAX_FRAME_BYTES + 1, 4 * MAX_FRAME_BYTES),
        ),
        binary=st.booleans(),
    )
    def check(size: int, binary: bool) -> None:
        head = f'{{"conversation_id": "{world.member_of}", "content": "'
        frame = (head + "x" * max(0, size - len(head) - 2) + '"}').encode()
        outcome = world.refuses(frame, text=not binary)
        if len(frame) > MAX_FRAME_BYTES:
            assert outcome.close_code == WS_1009_MESSAGE_TOO_BIG, (len(frame), outcome)
        else:
            assert outcome.errors, (len(frame), outcome)

    check()


def test_deeply_nested_frames_are_refused(world: World) -> None:
    @fuzz_settings()
    @given(
        depth=st.integers(1, 10_000),  # up to ~60 KB: under MAX_FRAME_BYTES
        arrays=st.booleans(),
        where=st.sampled_from(["conversation_id", "content", "client_msg_id", "event"]),
    )
    def check(depth: int, arrays: bool, where: str) -> None:
        nested = "[" * depth + "]" * depth if arrays else '{"a":' * depth + "1" + "}" * depth
        fields = {"conversation_id": f'"{world.member_of}"', "content": '"hello"', where: nested}
        world.refuses("{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}")

    check()


def _has_surrogate(value: Any) -> bool:
    return isinstance(value, str) and any("\ud800" <= c <= "\udfff" for c in value)


def _not_theirs(world: World) -> st.SearchStrategy[Any]:
    """Conversation ids the fuzzing user may not use: another's, unknown, malformed."""
    return st.one_of(
        st.just(world.foreign), st.uuids().map(str), st.text(max_size=40), not_a_string
    )


def test_frames_aimed_at_a_conversation_not_theirs_are_refused(world: World) -> None:
    @fuzz_settings()
    @given(
        conversation_id=st.deferred(lambda: _not_theirs(world)),
        event=st.sampled_from(["message", "typing", "read", "received"]),
    )
    def check(conversation_id: Any, event: str) -> None:
        frame = {"event": event, "conversation_id": conversation_id, "content": "hi", "seq": 1}
        world.refuses(_json(frame))

    check()


def test_message_frames_with_hostile_content(world: World) -> None:
    @fuzz_settings()
    @given(
        content=st.one_of(hostile_text, not_a_string),
        client_msg_id=st.one_of(
            st.none(),
            st.just("repeated"),  # a resend: acked again as a duplicate, published once
            st.text(min_size=1, max_size=MAX_CLIENT_MSG_ID + 10),
            not_a_string,
        ),
        event=st.sampled_from([None, "message"]),
        ascii_only=st.booleans(),
    )
    # The edges, every run; the examples Hypothesis draws come on top.
    @example(content="first", client_msg_id="repeated", event=None, ascii_only=False)
    @example(content="resent", client_msg_id="repeated", event="message", ascii_only=True)
    @example(content=" \t\n\u3000", client_msg_id=None, event=None, ascii_only=False)
    @example(content="x" * MAX_CONTENT_CHARS, client_msg_id=None, event=None, ascii_only=False)
    @example(
        content="x" * (MAX_CONTENT_CHARS + 1), client_msg_id=None, event=None, ascii_only=False
    )
    @example(content="nul \u0000", client_msg_id=None, event=None, ascii_only=True)
    @example(
        content="ok", client_msg_id="k" * (MAX_CLIENT_MSG_ID + 1), event=None, ascii_only=False
    )
    def check(content: Any, client_msg_id: Any, event: str | None, ascii_only: bool) -> None:
        frame: dict[str, Any] = {"conversation_id": world.member_of, "content": content}
        if client_msg_id is not None:
            frame["client_msg_id"] = client_msg_id
        if event is not None:
            frame["event"] = event
        valid = (
            isinstance(content, str)
            and 1 <= len(content) <= MAX_CONTENT_CHARS
            and content.strip() != ""
            and "\u0000" not in content  # PostgreSQL's text cannot hold it
            and (
                client_msg_id is None
                or (isinstance(client_msg_id, str) and 1 <= len(client_msg_id) <= MAX_CLIENT_MSG_ID)
            )
        )
        outcome = world.send(_json(frame, ascii_only))
        if _has_surrogate(content) or _has_surrogate(client_msg_id):
            return  # no UTF-8 text holds one: whether it is refused or kept is the server's call
        if valid:
            [ack] = outcome.acks
            assert ack["conversation_id"] == world.member_of, outcome
        else:
            assert outcome.errors and not outcome.acks, (frame, outcome)

    check()


def test_replies_with_hostile_reply_to_and_mentions(world: World) -> None:
    """Only a message of the same conversation may be answered; anything else in
    `reply_to` is refused and publishes nothing, another conversation's message included."""
    [answerable] = world.send(_json({"conversation_id": world.member_of, "content": "q"})).acks
    world.bystander.still_served()
    [newest] = world.redis.zrange(
        keys.recent(uuid.UUID(world.bystander.conversation_id), world.partitions), -1, -1
    )
    elsewhere = json.loads(newest)["id"]

    @fuzz_settings()
    @given(
        reply_to=st.one_of(
            st.just(answerable["id"]),
            st.just(elsewhere),
            st.uuids().map(str),
            hostile_text,
            not_a_string,
        ),
        content=st.from_regex(r"\A[@a-z_ ]{1,60}\Z"),
    )
    @example(reply_to=answerable["id"], content="answered")
    @example(reply_to=answerable["id"].upper(), content="@@ @me")
    @example(reply_to=elsewhere, content="through a stranger's message")
    @example(reply_to="", content="nothing")
    def check(reply_to: Any, content: str) -> None:
        frame = {"conversation_id": world.member_of, "content": content, "reply_to": reply_to}
        outcome = world.send(_json(frame))
        if isinstance(reply_to, str) and _has_surrogate(reply_to):
            return
        answerable_id = isinstance(reply_to, str) and _same_uuid(reply_to, answerable["id"])
        if (reply_to is None or answerable_id) and content.strip():
            [ack] = outcome.acks
            assert ack["conversation_id"] == world.member_of, outcome
        else:
            assert outcome.errors and not outcome.acks, (frame, outcome)
        if isinstance(reply_to, str) and not answerable_id and content.strip():
            assert outcome.errors[0]["code"] == "reply_not_found", (frame, outcome)

    check()


def test_message_frames_with_hostile_media(world: World) -> None:
    """An image carries an image the sender uploaded, a file any upload of theirs; every
    other type, media_id or pairing of the two is refused and publishes nothing, the
    peer's upload in their shared conversation included."""
    my_image, my_file, peers_image = world.media

    @fuzz_settings()
    @given(
        kind=st.one_of(
            st.sampled_from(["text", "image", "file", "system", "IMAGE", ""]), hostile_text
        ),
        media_id=st.one_of(
            st.none(),
            st.sampled_from(world.media),
            st.uuids().map(str),
            hostile_text,
            not_a_string,
        ),
        content=st.one_of(st.none(), st.from_regex(r"\A[a-z ]{0,20}\Z")),
    )
    @example(kind="image", media_id=my_image, content=None)
    @example(kind="file", media_id=my_file, content="the notes")
    @example(kind="file", media_id=my_image.upper(), content="")
    @example(kind="image", media_id=my_file, content="not a picture")
    @example(kind="image", media_id=peers_image, content="not mine")
    @example(kind="text", media_id=my_image, content="text with a picture")
    @example(kind="image", media_id=None, content="no picture")
    def check(kind: str, media_id: Any, content: str | None) -> None:
        frame: dict[str, Any] = {"conversation_id": world.member_of, "type": kind}
        if media_id is not None:
            frame["media_id"] = media_id
        if content is not None:
            frame["content"] = content
        outcome = world.send(_json(frame))
        if _has_surrogate(kind) or (isinstance(media_id, str) and _has_surrogate(media_id)):
            return
        mine = {
            upload
            for upload in (my_image, my_file)
            if isinstance(media_id, str) and _same_uuid(media_id, upload)
        }
        accepted = (
            (kind == "image" and mine == {my_image})
            or (kind == "file" and bool(mine))
            or (kind == "text" and media_id is None and bool(content and content.strip()))
        )
        if accepted:
            [ack] = outcome.acks
            assert ack["conversation_id"] == world.member_of, outcome
        else:
            assert outcome.errors and not outcome.acks, (frame, outcome)

    check()


def _same_uuid(text: str, expected: str) -> bool:
    try:
        return uuid.UUID(text) == uuid.UUID(expected)
    except ValueError:
        return False


def test_read_received_and_typing_frames_with_hostile_seqs(world: World) -> None:
    @fuzz_settings()
    @given(
        event=st.sampled_from(["typing", "read", "received"]),
        seq=st.one_of(
            st.integers(),
            st.integers(-(2**80), 2**80),
            st.sampled_from([0, MAX_SEQ, MAX_SEQ + 1, 2**64 - 1, 2**64, -1]),
            not_a_string,
        ),
    )
    @example(event="read", seq=MAX_SEQ)
    @example(event="read", seq=MAX_SEQ + 1)
    @example(event="read", seq=-1)
    @example(event="received", seq=0)
    @example(event="received", seq=1)
    @example(event="received", seq=MAX_SEQ)
    @example(event="received", seq=MAX_SEQ + 1)
    def check(event: str, seq: Any) -> None:
        frame = {"event": event, "conversation_id": world.member_of, "seq": seq}
        last = world.published()[1][world.member_of]
        outcome = world.send(_json(frame))
        in_range = isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq <= MAX_SEQ
        if event == "read":  # typing ignores a seq, as it does any field it does not know
            assert bool(outcome.errors) != in_range, (frame, outcome)
        if event == "received":  # no device can hold a seq past the last one
            assert bool(outcome.errors) != (in_range and seq <= last), (frame, outcome)

    check()


def test_unknown_events_and_bad_tokens_are_refused(world: World) -> None:
    @fuzz_settings()
    @given(
        event=st.one_of(st.text(max_size=50).filter(lambda e: e not in KNOWN_EVENTS), not_a_string),
        token=st.one_of(hostile_text, not_a_string),
        as_auth=st.booleans(),
    )
    def check(event: Any, token: Any, as_auth: bool) -> None:
        if as_auth:
            # No token the fuzzer makes up is a valid access token of this server.
            world.refuses(_json({"event": "auth", "token": token}))
        else:
            world.refuses(_json({"event": event, "conversation_id": world.member_of}))

    check()


def test_hostile_edits_and_deletes_are_refused_and_change_nothing(world: World) -> None:
    # No message id the fuzzer makes up names a message, in its conversation or another.
    @fuzz_settings()
    @given(
        event=st.sampled_from(["edit", "delete"]),
        conversation=st.one_of(
            st.sampled_from([world.member_of, world.foreign, str(uuid.uuid4())]),
            hostile_text,
            not_a_string,
        ),
        message_id=st.one_of(st.uuids().map(str), hostile_text, not_a_string),
        content=st.one_of(hostile_text, not_a_string),
    )
    def check(event: str, conversation: Any, message_id: Any, content: Any) -> None:
        frame = {"event": event, "conversation_id": conversation, "message_id": message_id}
        world.refuses(_json({**frame, "content": content} if event == "edit" else frame))

    check()


def _recipients(world: World) -> st.SearchStrategy[Any]:
    """Recipient lists: whom the fuzzing user may write to, themself, unknown and malformed
    ids, too few and too many, repeats."""
    one = st.one_of(
        st.just(world.peer), st.just(world.me), st.uuids().map(str), st.text(max_size=40),
        not_a_string,
    )  # fmt: skip
    return st.one_of(
        st.lists(one, max_size=4),
        st.integers(MAX_RECIPIENTS, MAX_RECIPIENTS + 2).map(
            lambda n: [str(uuid.UUID(int=i + 1)) for i in range(n)]
        ),
        not_a_string,
    )


def test_broadcast_frames_with_hostile_fields(world: World) -> None:
    @fuzz_settings()
    @given(
        recipient_ids=st.deferred(lambda: _recipients(world)),
        content=st.one_of(hostile_text, not_a_string),
        client_broadcast_id=st.one_of(
            st.text(max_size=MAX_CLIENT_BROADCAST_ID + 5), st.just("again"), not_a_string
        ),
    )
    @example(recipient_ids=["peer", str(uuid.UUID(int=1))], content="hi", client_broadcast_id="ok")
    @example(recipient_ids=[], content="hi", client_broadcast_id="empty")
    @example(recipient_ids=["peer", "peer"], content="hi", client_broadcast_id="twice")
    @example(recipient_ids=["peer"], content=" ", client_broadcast_id="blank")
    def check(recipient_ids: Any, content: Any, client_broadcast_id: Any) -> None:
        if isinstance(recipient_ids, list):
            recipient_ids = [world.peer if r == "peer" else r for r in recipient_ids]
        frame = {
            "event": "broadcast",
            "recipient_ids": recipient_ids,
            "content": content,
            "client_broadcast_id": client_broadcast_id,
        }
        outcome = world.send(_json(frame))
        if any(map(_has_surrogate, (content, client_broadcast_id, *_strings(recipient_ids)))):
            return  # no UTF-8 text holds one: whether it is refused or kept is the server's call
        valid = (
            isinstance(recipient_ids, list)
            and 1 <= len(recipient_ids) <= MAX_RECIPIENTS
            and all(is_uuid(r) for r in recipient_ids)
            and len({str(uuid.UUID(r)) for r in recipient_ids}) == len(recipient_ids)
            and isinstance(content, str)
            and 1 <= len(content) <= MAX_CONTENT_CHARS
            and content.strip() != ""
            and "\u0000" not in content
            and isinstance(client_broadcast_id, str)
            and 1 <= len(client_broadcast_id) <= MAX_CLIENT_BROADCAST_ID
            and "\u0000" not in client_broadcast_id
        )
        if not valid:
            assert outcome.errors and not outcome.broadcast_results, (frame, outcome)
            return
        # BROADCAST_RATE allows three a minute: past them, a valid frame is rate-limited.
        if outcome.errors:
            assert [e["code"] for e in outcome.errors] == ["rate_limited"], (frame, outcome)
            return
        [result] = outcome.broadcast_results
        if not result["duplicate"]:  # a repeat answers with the first call's recipients
            assert [r["recipient_id"] for r in result["results"]] == [
                str(uuid.UUID(r)) for r in recipient_ids
            ], (frame, outcome)

    check()


def _strings(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def test_resume_frames_with_hostile_positions_replay_only_the_users_own_conversations(
    world: World,
) -> None:
    names = st.one_of(
        st.just(world.member_of), st.just(world.foreign), st.uuids().map(str), st.text(max_size=40)
    )
    seqs = st.one_of(st.integers(-5, 5), st.integers(MAX_SEQ - 1, MAX_SEQ + 1), not_a_string)

    @fuzz_settings()
    @given(
        positions=st.one_of(st.dictionaries(names, seqs, max_size=6), not_a_string),
    )
    @example(positions={world.member_of: 0, world.foreign: 0})
    def check(positions: Any) -> None:
        outcome = world.send(_json({"event": "resume", "positions": positions}))
        resumed = [f for f in outcome.frames if f.get("event") == "resumed"]
        if outcome.errors:
            assert not resumed, outcome
            return
        [done] = resumed
        assert all(c["conversation_id"] == world.member_of for c in done["conversations"])
        # Nothing of a conversation the user is not in: not one frame names it.
        assert all(f.get("conversation_id") in (None, world.member_of) for f in outcome.frames)
        if world.foreign in positions:
            assert world.foreign in done["not_found"]

    check()
