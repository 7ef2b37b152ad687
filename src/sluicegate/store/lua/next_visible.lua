-- next_visible: ARGV[3] queue. Returns {0, earliest visible_at of a hidden message or ''}.
local q = ARGV[3]
if redis.call('EXISTS', qk(q, 'meta')) == 0 then return {1} end
local best = nil
for _, part in ipairs({'infl', 'dly'}) do
  local head = redis.call('ZRANGE', qk(q, part), 0, 0, 'WITHSCORES')
  if #head > 0 and (best == nil or tonumber(head[2]) < tonumber(best)) then best = head[2] end
end
return {0, best or ''}
