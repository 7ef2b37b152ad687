-- send: ARGV[3] queue, [4] attribute version the caller validated against ('' = any),
-- then triples (message id, blob, visible_at or '' for visible now).
-- Returns {0}, {1} no such queue, {2} the queue's attributes changed since.
local m = qmeta(ARGV[3])
if not m then return {1} end
if ARGV[4] ~= '' and ARGV[4] ~= m.ver then return {2} end
local q = m.name
local n = (#ARGV - 4) / 3
local first = redis.call('HINCRBY', qk(q, 'meta'), 'seq', n) - n + 1
local blobs, sent, ready, delayed = {}, {}, {}, {}
for i = 0, n - 1 do
  local mk = string.format('%016d', first + i) .. ':' .. ARGV[5 + 3 * i]
  blobs[#blobs + 1] = mk
  blobs[#blobs + 1] = ARGV[6 + 3 * i]
  sent[#sent + 1] = NOW_S
  sent[#sent + 1] = mk
  local at = ARGV[7 + 3 * i]
  if at == '' then
    ready[#ready + 1] = NOW_S
    ready[#ready + 1] = mk
  else
    delayed[#delayed + 1] = at
    delayed[#delayed + 1] = mk
  end
end
redis.call('HSET', qk(q, 'm'), unpack(blobs))
redis.call('ZADD', qk(q, 'sent'), unpack(sent))
if #ready > 0 then redis.call('ZADD', qk(q, 'ready'), unpack(ready)) end
if #delayed > 0 then redis.call('ZADD', qk(q, 'dly'), unpack(delayed)) end
return {0}
