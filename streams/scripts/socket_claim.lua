-- Change who owns a socket, and its state, only if it is still where the
-- caller thinks. Recovery on another connector, the recovery timer of the
-- old one, holding a dropped socket and the reaper of a dead connector all
-- go through here, so exactly one of competing changes wins.
-- KEYS[1]  socket:{socketId}  hash with fields 'connector' and 'state'
-- ARGV[1]  connector the socket must be on now
-- ARGV[2]  its new connector ('' once closed)
-- ARGV[3]  its new state: live, held or closed
-- Returns 1 when the change was made, 0 when the socket was elsewhere or
-- gone.
local cur = redis.call('HGET', KEYS[1], 'connector')
if cur ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'connector', ARGV[2], 'state', ARGV[3])
return 1
