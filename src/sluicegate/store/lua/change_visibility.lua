-- change_visibility: ARGV[3] queue, [4] message key, [5] token, [6] new visible_at.
-- Returns {0} done, {1} no such queue, {2} the handle names no message in flight.
local m = qmeta(ARGV[3])
if not m then return {1} end
local q, mk, tok = m.name, ARGV[4], ARGV[5]
local s = getst(m, mk)
if not s or s.token == '' or s.token ~= tok then return {2} end
local at = redis.call('ZSCORE', qk(q, 'infl'), mk)
if not at or tonumber(at) <= NOW then return {2} end
local sent = redis.call('ZSCORE', qk(q, 'sent'), mk)
if not sent or tonumber(sent) <= NOW - m.ret then return {2} end
redis.call('ZADD', qk(q, 'infl'), ARGV[6], mk)
return {0}
