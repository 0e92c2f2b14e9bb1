-- Give a lease up at once (graceful shutdown, rebalancing).
-- KEYS[1]  lease key   in:{p}:lease
-- ARGV[1]  owner id
-- ARGV[2]  fencing token
-- Returns 1 when released, 0 when it was not the caller's.
if redis.call('GET', KEYS[1]) == ARGV[1] .. ' ' .. ARGV[2] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
