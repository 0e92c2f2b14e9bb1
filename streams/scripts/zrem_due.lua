-- Remove members of a schedule whose time has come, and only those: a
-- member rescheduled meanwhile (a later score) stays.
-- KEYS[1]  sorted set (score = due time in ms)
-- ARGV[1]  now in ms
-- ARGV[2..] members
-- Returns the number removed.
local n = 0
for i = 2, #ARGV do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if s and tonumber(s) <= tonumber(ARGV[1]) then
    n = n + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return n
