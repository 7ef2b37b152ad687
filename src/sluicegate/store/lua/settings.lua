-- Live settings: one compare-and-set write (rules in sluicegate/store/live.py).
-- P..'settings' (hash scope -> JSON {values, at, by}), P..'settings:ver' (hash scope ->
-- version), P..'settings:rev' (zset scope -> revision of its last write),
-- P..'settings:revision' (the store's revision), P..'settings:history' (list of JSON
-- entries, newest last), and the shared value 'settings:revision' in P..'shared'.
-- ARGV[3] scope, ARGV[4] the version the caller read, ARGV[5] the new record,
-- ARGV[6] the history entry, ARGV[7] how many entries the history keeps, ARGV[8] a
-- random token of this write: the same write run again (redis-py retries a command
-- whose reply was lost) answers as the first run did instead of losing to itself.
-- Returns {1, revision} when written, {0, current version} when the version moved.
local scope = ARGV[3]
local kver = P .. 'settings:ver'
local klast = P .. 'settings:last'
local last = redis.call('HGET', klast, scope)
if last then
  local token, done = string.match(last, '^([^|]*)|(%d+)$')
  if token == ARGV[8] then return {1, tonumber(done)} end
end
local current = tonumber(redis.call('HGET', kver, scope) or '0')
if current ~= tonumber(ARGV[4]) then return {0, current} end
local rev = redis.call('INCR', P .. 'settings:revision')
redis.call('HSET', klast, scope, ARGV[8] .. '|' .. rev)
redis.call('HSET', kver, scope, current + 1)
redis.call('HSET', P .. 'settings', scope, ARGV[5])
redis.call('ZADD', P .. 'settings:rev', rev, scope)
local khist = P .. 'settings:history'
redis.call('RPUSH', khist, ARGV[6])
redis.call('LTRIM', khist, -tonumber(ARGV[7]), -1)
redis.call('HSET', P .. 'shared', 'settings:revision', tostring(rev))
return {1, rev}
