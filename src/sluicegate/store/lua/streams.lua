-- Helpers of the stream scripts (appended after common.lua).

-- Drop the records of one shard that arrived before horizon.
local function trim(s, shard, horizon)
  local ak = sk(s, 'a:' .. shard)
  local below = '(' .. fmt(horizon)
  if redis.call('ZCOUNT', ak, '-inf', below) == 0 then return end
  redis.call('ZREMRANGEBYSCORE', ak, '-inf', below)
  local keep = redis.call('ZRANGE', ak, 0, 0)
  if #keep == 0 then
    redis.call('DEL', sk(s, 'x:' .. shard))
  else
    redis.call('XTRIM', sk(s, 'x:' .. shard), 'MINID',
      string.format('%d', tonumber(keep[1])) .. '-0')
  end
end

local function smeta(s)
  local v = redis.call('HMGET', sk(s, 'meta'), 'shards', 'ret')
  if not v[1] then return nil end
  return {name = s, shards = tonumber(v[1]), ret = tonumber(v[2])}
end
