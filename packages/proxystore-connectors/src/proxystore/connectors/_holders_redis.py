"""Holders of Redis objects: a hash per object and the object's own expiry.

Each refcounted object ``K`` has a hash ``proxystore:holders:K`` mapping record
names (holders, transfers, tombstones; see `proxystore.connectors.holders`) to
deadlines in milliseconds of the *server's* clock (``TIME``), so client clocks
never matter. Every change runs as one Lua script, so it is atomic: after it,
dead records are pruned and the object's expiry (and the hash's) is set to the
latest live deadline. The object therefore expires by itself, on the server,
once its last live hold lapses: a holder that was SIGKILLed needs nobody to
notice it. A release that leaves no live hold deletes the object at once.

A heartbeat is one ``EVALSHA`` carrying every key the process holds on this
server, each named once (`RedisHolders.renew`; the script names the hashes
itself); the holds and releases a process queues between two beats go together
in one ``EVALSHA`` too (`RedisHolders.apply`). Redis Cluster is not supported
(the keys of one heartbeat span slots).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from proxystore.connectors.holders import (
    LINGER,
    TOMBSTONE_LEASE,
    Hold,
    Release,
    record_name,
)

if TYPE_CHECKING:
    from proxystore.connectors.redis import RedisConnector, RedisKey

__all__ = ["HOLDERS_PREFIX", "RedisHolders", "holders_key"]

#: Prefix of the hash that records the holders of one object.
HOLDERS_PREFIX: Final = "proxystore:holders:"

# Leaves the hash with only live records, and the object (and the hash) expiring
# at the latest live deadline; deletes both when nothing is live. Returns 1 when
# it deleted the object.
_SETTLE = """
local function settle(obj, h, now)
  local rec = redis.call('HGETALL', h)
  local best = -1
  for j = 1, #rec, 2 do
    local d = tonumber(rec[j + 1])
    if d <= now then
      redis.call('HDEL', h, rec[j])
    elseif d > best then
      best = d
    end
  end
  if best < 0 then
    redis.call('DEL', h)
    return redis.call('DEL', obj)
  end
  redis.call('PEXPIRE', obj, best - now)
  redis.call('PEXPIRE', h, best - now)
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# Applies holds and releases in order. ARGV[1] is the holder named by a bare
# release; ARGV[2] packs the ops, so that a batch is two arguments however many
# ops it carries (redis-py encodes each argument in Python). Each op is a kind
# character and fields, each field "<byte length>:<bytes>": 'r' key (a release
# by ARGV[1]), 'R' key holder (a release by another holder), 'h' key holder
# lease-ms token tombstone-ms (a hold). The objects' keys travel as data, and
# their holders' hashes are named from them (Redis Cluster is refused anyway).
# Returns one string, a '1' or '0' per op: for a hold whether the object exists
# (the hold recorded), for a release whether it evicted the object.
_APPLY: Final = (
    _SETTLE
    + """
local s, pos = ARGV[2], 1
local function field()
  local colon = string.find(s, ':', pos, true)
  local n = tonumber(string.sub(s, pos, colon - 1))
  pos = colon + n + 1
  return string.sub(s, colon + 1, colon + n)
end
local out = {}
while pos <= #s do
  local kind = string.sub(s, pos, pos)
  pos = pos + 1
  local obj = field()
  local h = '"""
    + HOLDERS_PREFIX
    + """' .. obj
  if kind == 'r' or kind == 'R' then
    local holder = ARGV[1]
    if kind == 'R' then
      holder = field()
    end
    if redis.call('EXISTS', h) == 0 then
      -- never held (or all lapsed): no holds
      out[#out + 1] = tostring(redis.call('DEL', obj))
    else
      redis.call('HDEL', h, holder)
      out[#out + 1] = tostring(settle(obj, h, now))
    end
  else
    local holder, lease = field(), tonumber(field())
    local token, tomb = field(), tonumber(field())
    if redis.call('EXISTS', obj) == 1 then
      if holder == '' then
        if redis.call('HDEL', h, 'x:' .. token) == 0 then
          redis.call('HSET', h, 't:' .. token, now + lease)
        end
      else
        redis.call('HSET', h, holder, now + lease)
        if token ~= '' then
          -- the token's trace covers other copies of the pickle for an interval
          local trace = now + math.floor(lease * """
    + repr(LINGER)
    + """)
          local seen = tonumber(redis.call('HGET', h, 'c:' .. token))
          if seen and seen <= now then
            seen = nil
          end
          redis.call('HSET', h, 'c:' .. token, math.max(trace, seen or trace))
          if redis.call('HDEL', h, 't:' .. token) == 0 and not seen then
            redis.call('HSET', h, 'x:' .. token, now + tomb)
          end
        end
      end
      settle(obj, h, now)
      out[#out + 1] = '1'
    else
      redis.call('DEL', h)
      out[#out + 1] = '0'
    end
  end
end
return table.concat(out)
"""
)


# A heartbeat: renews one holder's holds. KEYS: the objects (their holders'
# hashes are named from them, so a renewal carries each key once); ARGV: holder,
# lease ms. Returns '1'/'0' per object, as one string: whether it exists.
_RENEW: Final = (
    _SETTLE
    + """
local out = {}
local holder, lease = ARGV[1], tonumber(ARGV[2])
for i = 1, #KEYS do
  local obj = KEYS[i]
  local h = '"""
    + HOLDERS_PREFIX
    + """' .. obj
  if redis.call('EXISTS', obj) == 1 then
    redis.call('HSET', h, holder, now + lease)
    settle(obj, h, now)
    out[i] = '1'
  else
    out[i] = '0'
  end
end
return table.concat(out)
"""
)


def _size(text: str) -> int:
    """Return the length in bytes of ``text`` in UTF-8 (as redis-py sends it)."""
    return len(text) if text.isascii() else len(text.encode())


def _field(text: str) -> str:
    """Return ``text`` as a field of `_APPLY`'s packed ops."""
    return f"{_size(text)}:{text}"


def _flags(reply: bytes | str) -> list[bool]:
    # The scripts answer one character per op ("1"/"0"): one bulk string parses
    # far faster in redis-py than a list of integers.
    if isinstance(reply, str):  # a client made with decode_responses=True
        reply = reply.encode()
    return [c == 49 for c in reply]  # ord("1")


def holders_key(redis_key: str) -> str:
    """Return the name of the hash holding the holders of ``redis_key``."""
    return HOLDERS_PREFIX + redis_key


class RedisHolders:
    """Reference counting for a `RedisConnector` (see the module documentation).

    Args:
        connector: The connector whose objects are counted.

    Raises:
        ValueError: if the connector talks to a Redis Cluster.
    """

    def __init__(self, connector: RedisConnector) -> None:
        if connector.clustered:
            raise ValueError(
                "Reference counting is not supported on a Redis Cluster: one "
                "heartbeat's keys span hash slots."
            )
        self.connector = connector
        self._script: Any = None
        self._renew: Any = None

    def apply(self, ops: Sequence[Hold[RedisKey] | Release[RedisKey]]) -> list[bool]:
        """Apply holds and releases in order, in one script run (one message).

        Returns:
            Per hold, whether its object exists; per release, whether it evicted
            the object.

        Raises:
            ConnectorConnectionError: if the server cannot be reached.
            ValueError: if a hold has neither a holder nor a token, or a
                non-positive lease.
        """
        if not ops:
            return []
        # A release by the first release's holder names no holder: the
        # releases a process batches are all its own.
        default = next((op.holder for op in ops if isinstance(op, Release)), "")
        packed: list[str] = []
        for op in ops:
            key = op.key.redis_key
            if isinstance(op, Release):
                if op.holder == default:
                    packed.append(f"r{_size(key)}:{key}")
                else:
                    packed.append(f"R{_size(key)}:{key}{_field(op.holder)}")
                continue
            record_name(op.holder, op.lease, op.token)
            tomb = op.transfer_lease or TOMBSTONE_LEASE
            lease_ms = str(max(1, int(op.lease * 1000)))
            packed.append(
                f"h{_size(key)}:{key}{_field(op.holder)}{_field(lease_ms)}"
                f"{_field(op.token or '')}{_field(str(int(tomb * 1000)))}"
            )
        if self._script is None:
            self._script = self.connector._redis.register_script(_APPLY)
        with self.connector._errors("HOLD"):
            found = self._script(keys=[], args=[default, "".join(packed)])
        return _flags(found)

    def renew(self, keys: Sequence[RedisKey], holder: str, lease: float) -> list[bool]:
        """Renew ``holder``'s holds on ``keys`` (a heartbeat: each key sent once).

        Returns:
            Whether each object still exists (a missing one is not held again).

        Raises:
            ConnectorConnectionError: if the server cannot be reached.
            ValueError: if ``holder`` is empty or ``lease`` not positive.
        """
        if not keys:
            return []
        record_name(holder, lease, None)
        if self._renew is None:
            self._renew = self.connector._redis.register_script(_RENEW)
        with self.connector._errors("RENEW"):
            found = self._renew(
                keys=[key.redis_key for key in keys],
                args=[holder, max(1, int(lease * 1000))],
            )
        return _flags(found)

    def hold(self, holds: Sequence[Hold[RedisKey]]) -> list[bool]:
        """Add or renew holds in one script run; return whether each object exists.

        Raises:
            ConnectorConnectionError: if the server cannot be reached.
            ValueError: if a hold has neither a holder nor a token, or a
                non-positive lease.
        """
        return self.apply(holds)

    def release(self, key: RedisKey, holder: str) -> bool:
        """Drop ``holder``'s hold; the object goes when no live hold is left.

        Raises:
            ConnectorConnectionError: if the server cannot be reached.
        """
        return self.apply([Release(key, holder)])[0]
