-- peek: ARGV[3] queue, [4] limit. Reads only (no command here writes), so a peek changes
-- nothing: no expiry, no move to the dead-letter queue, no receive count or visibility.
-- Returns {0, then per message (the first `limit` by sent time, ties by key, of those not
-- past the retention period): key, blob, state (count|first receive|token|source|group),
-- sent time, in flight until ('' when not in flight), delayed until ('' when not)};
-- {1}: no such queue.
local m = qmeta(ARGV[3])
if not m then return {1} end
local q = m.name
local held = redis.call('ZRANGEBYSCORE', qk(q, 'sent'), '(' .. fmt(NOW - m.ret), '+inf',
  'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[4]))
local out = {0}
for i = 1, #held, 2 do
  local mk = held[i]
  local n = #out
  out[n + 1] = mk
  out[n + 2] = redis.call('HGET', qk(q, 'm'), mk)
  out[n + 3] = redis.call('HGET', qk(q, 'st'), mk) or FRESH
  out[n + 4] = held[i + 1]
  out[n + 5] = redis.call('ZSCORE', qk(q, 'infl'), mk) or ''
  out[n + 6] = redis.call('ZSCORE', qk(q, 'dly'), mk) or ''
end
return out
