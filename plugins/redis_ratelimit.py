"""Redis rate-limit backend: one limit shared by every gateway process of a fleet.

Chosen by ``rate_limit: {backend: redis, redis_url: redis://host:6379/0}``. Each bucket is a Redis
hash ``{w: window index, c: current count, p: previous count}``; a Lua script reads, decides and
charges all of a request's buckets in one atomic step, with the same sliding-window arithmetic as
the memory backend (``gateway.ratelimit.wait_time``). Time is Redis's own ``TIME``, so gateways with
skewed clocks still agree on windows. Keys expire two windows after their last use.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as redis

from gateway.config import RateLimit
from gateway.plugins import Plugin
from gateway.ratelimit import Bucket
from gateway.yamlfile import ConfigError

# The Lua twin of gateway.ratelimit.wait_time (tests compare the two on a real Redis).
LUA_WAIT_TIME = """
local function wait_time(p, c, elapsed, limit, cost, W)
  local est = p * (W - elapsed) / W + c
  if est + cost <= limit and (cost > 0 or est < limit) then return nil end
  if cost > limit then return W end
  local room = limit - cost
  if cost == 0 then room = limit - 0.000001 end
  if c <= room and p > 0 then
    local d = (W - elapsed) - W * (room - c) / p
    if d <= 0 then d = 0.001 end
    return d
  end
  local d = W - elapsed
  if c > 0 then d = d + math.max(0, W * (1 - room / c)) end
  if d <= 0 then d = 0.001 end
  return d
end
"""

# ARGV[1] = window seconds; then (limit, cost) per KEYS entry. Returns nil (go) or the wait as a string
# (Lua numbers returned as integers would lose the fraction).
_SCRIPT = LUA_WAIT_TIME + """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local W = tonumber(ARGV[1])
local idx = math.floor(now / W)
local elapsed = now - idx * W
local worst = nil
local state = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('HMGET', key, 'w', 'c', 'p')
  local w, c, p = tonumber(v[1]), tonumber(v[2]) or 0, tonumber(v[3]) or 0
  if w == idx - 1 then p = c; c = 0 elseif w ~= idx then p = 0; c = 0 end
  state[i] = {c, p}
  local d = wait_time(p, c, elapsed, tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1]), W)
  if d and (worst == nil or d > worst) then worst = d end
end
if worst then return tostring(worst) end
local ttl = math.ceil(2 * W) + 1
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 'w', idx, 'c', state[i][1] + tonumber(ARGV[2 * i + 1]), 'p', state[i][2])
  redis.call('EXPIRE', key, ttl)
end
return nil
"""


class RedisBackend:
    """Rate-limit counts in Redis (redis.asyncio); see the module docstring."""

    def __init__(self, cfg: RateLimit):
        if not cfg.redis_url:
            raise ConfigError("<config>", None, "rate_limit.redis_url", "required when rate_limit.backend is redis")
        if not cfg.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("<config>", None, "rate_limit.redis_url", "must be redis://, rediss:// or unix://")
        self.prefix = cfg.redis_prefix
        # Short timeouts: a slow Redis must not hold requests; the limiter then fails closed.
        self.client = redis.Redis.from_url(cfg.redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self.script = self.client.register_script(_SCRIPT)

    async def hit(self, buckets: Sequence[Bucket], window: float) -> float | None:
        args: list[float | int] = [window]
        for b in buckets:
            args += [b.limit, b.cost]
        res = await self.script(keys=[self.prefix + b.name for b in buckets], args=args)
        return None if res is None else float(res)

    async def close(self) -> None:
        await self.client.aclose()


plugin = Plugin(name="redis_ratelimit", rate_limit_backends={"redis": RedisBackend})
"""The entry point ``soberana.plugins: redis_ratelimit``."""
