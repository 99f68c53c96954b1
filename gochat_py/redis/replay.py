"""What a reconnecting device missed, read from the recent caches: per conversation, the
frames above the seq it last saw, or word that they cannot all be replayed.

A cache member is exactly the frame that was published (a message, or an edit or delete in
the changes cache), scored by its seq, and the two caches together are contiguous: the send
script adds every seq to one of them, the worker's trim removes only from the bottom of
both. So the frames above a position
are all there when the lowest of them is position + 1, or when there are none and the
conversation's counter is not past the position.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

import msgspec
from redis.asyncio import Redis

from gochat_py.ids import ConversationId
from gochat_py.redis import keys
from gochat_py.redis.scripts import LuaScript

# KEYS: per conversation its recent cache, its changes and its seq counter (one partition,
# one hash tag). ARGV: per conversation its position, then the frames still allowed. One
# script, so the counter and the caches are read at one instant. Per conversation it
# returns {recovered (0/1), the counter (or the newest cached seq; -1 when Redis knows
# neither: a conversation without messages, or Redis lost them, which PostgreSQL then
# tells), then the frames replayed, messages and changes merged in seq order}. Both caches
# are trimmed to the same bound, so together they hold every seq above it. A conversation
# whose missed frames do not fit in what is still allowed replays none of them: the client
# reads it from history in pages.
_READ = """
local budget = tonumber(ARGV[#ARGV])
local out = {}
for i = 1, #KEYS / 3 do
  local caches, counter = {KEYS[3 * i - 2], KEYS[3 * i - 1]}, KEYS[3 * i]
  local position = tonumber(ARGV[i])
  local above = '(' .. ARGV[i]
  local current = tonumber(redis.call('GET', counter) or '-1')
  local missed = 0
  for _, cache in ipairs(caches) do missed = missed + redis.call('ZCOUNT', cache, above, '+inf') end
  local recovered = 0
  local frames = {}
  if missed == 0 then
    if current >= 0 and current <= position then recovered = 1 end
  else
    local first = nil
    for _, cache in ipairs(caches) do
      local low = redis.call('ZRANGEBYSCORE', cache, above, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
      if low[2] and (first == nil or tonumber(low[2]) < first) then first = tonumber(low[2]) end
      local newest = redis.call('ZREVRANGE', cache, 0, 0, 'WITHSCORES')
      if newest[2] and tonumber(newest[2]) > current then current = tonumber(newest[2]) end
    end
    if first == position + 1 and missed <= budget then
      recovered = 1
      local m = redis.call('ZRANGEBYSCORE', caches[1], above, '+inf', 'WITHSCORES')
      local c = redis.call('ZRANGEBYSCORE', caches[2], above, '+inf', 'WITHSCORES')
      local a, b = 1, 1
      while a <= #m or b <= #c do
        if b > #c or (a <= #m and tonumber(m[a + 1]) < tonumber(c[b + 1])) then
          frames[#frames + 1] = m[a]
          a = a + 2
        else
          frames[#frames + 1] = c[b]
          b = b + 2
        end
      end
      budget = budget - missed
    end
  end
  local entry = {recovered, current}
  for j = 1, #frames do entry[j + 2] = frames[j] end
  out[i] = entry
end
return out
"""


class LogTail(msgspec.Struct, frozen=True):
    """One conversation's part of a replay."""

    recovered: bool  # `frames` is everything above the position, up to `current`
    current: int  # the conversation's seq now; -1 when Redis knows nothing of it
    frames: list[str]  # in seq order; empty unless recovered


class ReplayReader:
    def __init__(self, redis: Redis, partitions: int) -> None:
        self._partitions = partitions
        self._read = LuaScript(redis, _READ)

    async def after(
        self, positions: Mapping[ConversationId, int], budget: int
    ) -> dict[ConversationId, LogTail]:
        """Per conversation, what came after its position, at most `budget` frames in all;
        one script per stream partition (a script's keys share one slot), in turn, each
        given what the ones before left of the budget."""
        by_partition: dict[int, list[ConversationId]] = defaultdict(list)
        for conversation_id in positions:
            by_partition[keys.partition_of(conversation_id, self._partitions)].append(
                conversation_id
            )
        found: dict[ConversationId, LogTail] = {}
        for conversations in by_partition.values():
            script_keys: list[str] = []
            for conversation_id in conversations:
                script_keys.append(keys.recent(conversation_id, self._partitions))
                script_keys.append(keys.recent_changes(conversation_id, self._partitions))
                script_keys.append(keys.sequence(conversation_id, self._partitions))
            args = [positions[c] for c in conversations]
            replies = await self._read(script_keys, [*args, budget])
            for conversation_id, (recovered, current, *frames) in zip(
                conversations, replies, strict=True
            ):
                tail = LogTail(
                    recovered=bool(recovered),
                    current=int(current),
                    frames=[frame.decode() for frame in frames],
                )
                budget -= len(tail.frames)
                found[conversation_id] = tail
        return found
