-- Add a socket to its user's socket set unless the user has as many
-- sockets as allowed already, in one step, so that simultaneous connects
-- of one user (on any connectors) cannot pass the limit together.
-- KEYS[1]  user:{userId}:sockets  set of socket ids
-- ARGV[1]  socket id
-- ARGV[2]  sockets the user may have (0 = no limit)
-- ARGV[3]  the set's lifetime, ms
-- Returns {1, n} when the socket is in the set (added, or there already),
-- {0, n} when the limit refused it; n is how many sockets the user had.
local n = redis.call('SCARD', KEYS[1])
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then
  return {1, n}
end
local limit = tonumber(ARGV[2])
if limit > 0 and n >= limit then
  return {0, n}
end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, n}
