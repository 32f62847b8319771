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

# Applies holds and releases in order. KEYS: the objects (their holders' hashes
# are named from them). ARGV[1] is the holder named by a bare release; then per
# op its kind and fields: 'r' (a release by ARGV[1]), 'R' holder (a release by
# another holder), 'h' holder lease-ms token tombstone-ms (a hold). Returns one
# string, a '1' or '0' per op: for a hold whether the object exists (the hold
# recorded), for a release whether it evicted the object.
_APPLY: Final = (
    _SETTLE
    + """
local out = {}
local c = 2
for i = 1, #KEYS do
  local obj = KEYS[i]
  local h = '"""
    + HOLDERS_PREFIX
    + """' .. obj
  local kind = ARGV[c]
  if kind == 'r' or kind == 'R' then
    local holder = ARGV[1]
    if kind == 'R' then
      holder = ARGV[c + 1]
      c = c + 2
    else
      c = c + 1
    end
    if redis.call('EXISTS', h) == 0 then
      -- never held (or all lapsed): no holds
      out[i] = tostring(redis.call('DEL', obj))
    else
      redis.call('HDEL', h, holder)
      out[i] = tostring(settle(obj, h, now))
    end
  else
    local holder, lease, token = ARGV[c + 1], tonumber(ARGV[c + 2]), ARGV[c + 3]
    local tomb = tonumber(ARGV[c + 4])
    c = c + 5
    if redis.call('EXISTS', obj) == 1 then
      if holder == '' then
        if redis.call('HDEL', h, 'x:' .. token) == 0 then
          redis.call('HSET', h, 't:' .. token, now + lease)
        end
      else
        redis.call('HSET', h, holder, now + lease)
        if token ~= '' and redis.call('HDEL', h, 't:' .. token) == 0 then
          redis.call('HSET', h, 'x:' .. token, now + tomb)
        end
      end
      settle(obj, h, now)
      out[i] = '1'
    else
      redis.call('DEL', h)
      out[i] = '0'
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
        # A release by the first release's holder is one field ("r"): the
        # releases a process batches are all its own.
        default = next((op.holder for op in ops if isinstance(op, Release)), "")
        keys: list[str] = []
        args: list[Any] = [default]
        for op in ops:
            keys.append(op.key.redis_key)
            if isinstance(op, Release):
                if op.holder == default:
                    args.append("r")
                else:
                    args += ["R", op.holder]
                continue
            record_name(op.holder, op.lease, op.token)
            tomb = op.transfer_lease or TOMBSTONE_LEASE
            lease_ms = max(1, int(op.lease * 1000))
            args += ["h", op.holder, lease_ms, op.token or "", int(tomb * 1000)]
        if self._script is None:
            self._script = self.connector._redis.register_script(_APPLY)
        with self.connector._errors("HOLD"):
            found = self._script(keys=keys, args=args)
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
