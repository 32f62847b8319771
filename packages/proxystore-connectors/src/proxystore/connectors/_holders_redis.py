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
server. Redis Cluster is not supported (the keys of one heartbeat span slots).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from proxystore.connectors.holders import TOMBSTONE_LEASE, Hold, record_name

if TYPE_CHECKING:
    from proxystore.connectors.redis import RedisConnector, RedisKey

__all__ = ["HOLDERS_PREFIX", "RedisHolders", "holders_key"]

#: Prefix of the hash that records the holders of one object.
HOLDERS_PREFIX: Final = "proxystore:holders:"

_SETTLE = """
local function settle(obj, h, now)
  local rec = redis.call('HGETALL', h)
  local best = -1
  for j = 1, #rec, 2 do
    local d = tonumber(rec[j + 1])
    if d <= now then
      redis.call('HDEL', h, rec[j])
    elseif string.sub(rec[j], 1, 2) ~= 'x:' and d > best then
      best = d
    end
  end
  if best < 0 then
    redis.call('DEL', obj, h)
    return 1
  end
  redis.call('PEXPIRE', obj, best - now)
  redis.call('PEXPIRE', h, best - now)
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: obj1, h1, obj2, h2, ...; ARGV: tombstone ms, then holder, lease ms, token
# for each pair. Returns 1/0 per object: whether it exists (the hold recorded).
_HOLD: Final = (
    _SETTLE
    + """
local tomb = tonumber(ARGV[1])
local out = {}
for i = 1, #KEYS / 2 do
  local obj, h = KEYS[2 * i - 1], KEYS[2 * i]
  local holder, lease, token = ARGV[3 * i - 1], tonumber(ARGV[3 * i]), ARGV[3 * i + 1]
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
    out[i] = 1
  else
    redis.call('DEL', h)
    out[i] = 0
  end
end
return out
"""
)

# KEYS: obj, h; ARGV: holder. Returns 1 when the object was evicted.
_RELEASE: Final = (
    _SETTLE
    + """
if redis.call('EXISTS', KEYS[2]) == 0 then
  return 0
end
redis.call('HDEL', KEYS[2], ARGV[1])
return settle(KEYS[1], KEYS[2], now)
"""
)


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
        self._hold_script: Any = None
        self._release_script: Any = None

    def _scripts(self) -> tuple[Any, Any]:
        if self._hold_script is None:
            client = self.connector._redis
            self._release_script = client.register_script(_RELEASE)
            self._hold_script = client.register_script(_HOLD)
        return self._hold_script, self._release_script

    def hold(self, holds: Sequence[Hold[RedisKey]]) -> list[bool]:
        """Add or renew holds in one script run; return whether each object exists.

        Raises:
            ConnectorConnectionError: if the server cannot be reached.
            ValueError: if a hold has neither a holder nor a token, or a
                non-positive lease.
        """
        if not holds:
            return []
        keys: list[str] = []
        args: list[Any] = [int(TOMBSTONE_LEASE * 1000)]
        for key, holder, lease, token in holds:
            record_name(holder, lease, token)
            keys += [key.redis_key, holders_key(key.redis_key)]
            args += [holder, max(1, int(lease * 1000)), token or ""]
        script, _ = self._scripts()
        with self.connector._errors("HOLD"):
            found = script(keys=keys, args=args)
        return [bool(x) for x in found]

    def release(self, key: RedisKey, holder: str) -> bool:
        """Drop ``holder``'s hold; the object goes when no live hold is left.

        Raises:
            ConnectorConnectionError: if the server cannot be reached.
        """
        _, script = self._scripts()
        with self.connector._errors("RELEASE"):
            evicted = script(
                keys=[key.redis_key, holders_key(key.redis_key)], args=[holder]
            )
        return bool(evicted)
