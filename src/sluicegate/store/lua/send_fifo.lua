-- send_fifo: ARGV[3] queue, [4] attribute version ('' = any), [5] deduplication window
-- (seconds), then 4-tuples (message id, blob, group, deduplication id).
-- Returns {0, then per message: message id, sequence, 1 if duplicate}, {1}, or {2} (stale).
local m = qmeta(ARGV[3])
if not m then return {1} end
if ARGV[4] ~= '' and ARGV[4] ~= m.ver then return {2} end
local q = m.name
local window = tonumber(ARGV[5])
while true do
  local old = redis.call('ZRANGEBYSCORE', qk(q, 'dedupx'), '-inf', NOW_S, 'LIMIT', 0, 1000)
  if #old == 0 then break end
  redis.call('HDEL', qk(q, 'dedup'), unpack(old))
  redis.call('ZREM', qk(q, 'dedupx'), unpack(old))
end
local out = {0}
local visible_at = nil
if m.delay > 0 then visible_at = NOW + m.delay end
for i = 6, #ARGV, 4 do
  local mid, blob, g, dedup = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local seen = redis.call('HGET', qk(q, 'dedup'), dedup)
  if seen then
    local smid, sseq = string.match(seen, '^([^|]*)|(.*)$')
    out[#out + 1] = smid
    out[#out + 1] = sseq
    out[#out + 1] = 1
  else
    local seq = redis.call('HINCRBY', qk(q, 'meta'), 'seq', 1)
    local sseq = string.format('%d', seq)
    local mk = string.format('%016d', seq) .. ':' .. mid
    redis.call('HSET', qk(q, 'dedup'), dedup, mid .. '|' .. sseq)
    redis.call('ZADD', qk(q, 'dedupx'), NOW + window, dedup)
    add(m, mk, blob, {count = 0, first = '', token = '', source = '', group = g}, NOW_S,
      visible_at)
    out[#out + 1] = mid
    out[#out + 1] = sseq
    out[#out + 1] = 0
  end
end
return out
