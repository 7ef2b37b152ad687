-- redrive: ARGV[3] dead-letter queue, [4] destination ('' = each message's source).
-- All or nothing. Returns {0, destination per moved message}, {1, missing queue} or
-- {3, error message}.
local m = qmeta(ARGV[3])
if not m then return {1, ARGV[3]} end
local to = nil
if ARGV[4] ~= '' then
  to = qmeta(ARGV[4])
  if not to then return {1, ARGV[4]} end
end
expire(m)
local keys = redis.call('ZRANGE', qk(m.name, 'sent'), 0, -1)
table.sort(keys)
local sts, dests, known = {}, {}, {}
for i, mk in ipairs(keys) do
  local s = getst(m, mk)
  sts[i] = s
  local d = to
  if not d then
    if s.source == '' then
      return {3, 'message ' .. string.sub(mk, 18) .. " in '" .. m.name ..
        "' has no source queue; name the destination queue"}
    end
    d = known[s.source]
    if not d then
      d = qmeta(s.source)
      if not d then return {1, s.source} end
      known[s.source] = d
    end
  end
  dests[i] = d
end
local out = {0}
for i, mk in ipairs(keys) do
  move(m, mk, sts[i], dests[i], '')
  out[#out + 1] = dests[i].name
end
return out
