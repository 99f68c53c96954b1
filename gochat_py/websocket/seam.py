"""The seam between a resume's replay and the live frames, for one socket.

Subscribe first, replay, then flush what arrived meanwhile (Zulip, Synapse): a resuming
socket holds the live frames it is handed from before its channels are subscribed until
its replay has been read and queued, then sends the held ones but the frames the replay
already carried. Those may also come live a little later: the read and the pub/sub
listener use different connections, so a frame published just before the read can reach
this process after it. So the replayed frames stay known for SEAM_GUARD seconds and each
is dropped when it arrives live.

A live frame is a replayed one exactly when their texts are equal: a recent-cache member
is the published frame byte for byte, and no log entry is published twice. Comparing
texts needs no decoding and no knowledge of which events carry a seq (a `read` event's
`seq` is a read mark, not a place in the log), and the hub hands every socket the same
string, whose hash Python computes once.
"""

from __future__ import annotations

# Long past any pub/sub delay between a publish and its arrival (milliseconds), short
# enough that the set of replayed frames does not outlive its use by much.
SEAM_GUARD = 5.0
_EVENT_PREFIX = '{"event":"'


class Seam:
    """Holding: live frames wait in `held`. Guarding: live frames equal to a replayed one
    are dropped, each once."""

    __slots__ = ("held", "_replayed")

    def __init__(self) -> None:
        self.held: list[str] | None = []  # None once the hold has ended
        self._replayed: set[str] = set()

    @property
    def holding(self) -> bool:
        return self.held is not None

    def release(self, replayed: list[str]) -> list[str]:
        """End the hold: the held frames to send after `replayed`, copies of those left
        out; from now on a live copy of one of `replayed` is dropped (`is_replayed`)."""
        held, self.held = self.held or [], None
        self._replayed = set(replayed)
        if not self._replayed:
            return held
        return [frame for frame in held if not self.is_replayed(frame)]

    def is_replayed(self, frame: str) -> bool:
        """Whether `frame` is a copy of a replayed frame not seen live yet (and now seen)."""
        if frame in self._replayed:
            self._replayed.discard(frame)
            return True
        return False

    @property
    def guarding(self) -> bool:
        return bool(self._replayed)


def event_of(frame: str) -> str | None:
    """The event a published frame names (it begins with it), None for a message."""
    if not frame.startswith(_EVENT_PREFIX):
        return None
    end = frame.find('"', len(_EVENT_PREFIX))
    return frame[len(_EVENT_PREFIX) : end] if end != -1 else None
