-- Forget that a socket is in a room (socket:{id}:rooms), as its connector
-- learns that the room refused its join or removed it, only while that
-- connector owns the socket: a socket recovered on another connector
-- keeps the set its new owner relies on.
-- KEYS[1]  socket:{socketId}        hash with field 'connector'
-- KEYS[2]  socket:{socketId}:rooms  set of room ids
-- ARGV[1]  room id
-- ARGV[2]  connector that must own the socket
-- Returns 1 when the room was removed, 0 otherwise.
if redis.call('HGET', KEYS[1], 'connector') ~= ARGV[2] then
  return 0
end
return redis.call('SREM', KEYS[2], ARGV[1])
