-- Extend a lease the caller still holds.
-- KEYS[1]  lease key   in:{p}:lease
-- ARGV[1]  owner id
-- ARGV[2]  fencing token
-- ARGV[3]  lease TTL in milliseconds
-- Returns 1 when renewed, 0 when the lease is gone or held by another.
if redis.call('GET', KEYS[1]) == ARGV[1] .. ' ' .. ARGV[2] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0
