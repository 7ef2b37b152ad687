-- delete: ARGV[3] queue, then pairs (message key, token).
-- Returns {status, flag per pair}: 1 deleted, 0 stale; status 1: no such queue.
local m = qmeta(ARGV[3])
if not m then return {1} end
local q = m.name
local cutoff = NOW - m.ret
local out = {0}
local done = {}
local n = (#ARGV - 3) / 2
local keys = {}
for i = 1, n do keys[i] = ARGV[2 + 2 * i] end
local sts = sliced('HMGET', qk(q, 'st'), keys)
local sents = sliced('ZMSCORE', qk(q, 'sent'), keys)
local gone = {}
for i = 1, n do
  local mk, tok = keys[i], ARGV[3 + 2 * i]
  local id = mk .. '#' .. tok
  local ok = 0
  if done[id] then
    ok = 1
  elseif sts[i] and not done[mk] and sents[i] and tonumber(sents[i]) > cutoff then
    -- (a message without state was never received: no handle of it is current)
    local s = parsest(sts[i])
    if s.token ~= '' and s.token == tok then
      ok = 1
      done[id] = true
      done[mk] = true
      if m.fifo then remove(m, mk, s) else gone[#gone + 1] = mk end
    end
  end
  out[i + 1] = ok
end
if #gone > 0 then
  -- usually all were in flight; otherwise some became visible again (not yet received)
  local _, removed = sliced('ZREM', qk(q, 'infl'), gone)
  if removed < #gone then
    sliced('ZREM', qk(q, 'ready'), gone)
  end
  sliced('ZREM', qk(q, 'sent'), gone)
  sliced('HDEL', qk(q, 'm'), gone)
  sliced('HDEL', qk(q, 'st'), gone)
end
return out
