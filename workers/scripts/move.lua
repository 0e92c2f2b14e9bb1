-- move.lua: a recovered socket now lives on another connector.
-- ARGV[9] socket id  ARGV[10] new connector id
-- Returns {'ok', from} when the socket is in the room (now routed to the
-- new connector; from is the connector it was on) or {'noop'} when it is
-- not.
local r = begin()
if r then return r end
ensureConns()
local cur = redis.call('HGET', KEYS[3], ARGV[9])
if not cur then
  return finish({'noop'})
end
local from, uid, joinedAt, uname = sockval(cur)
redis.call('HSET', KEYS[3], ARGV[9], ARGV[10] .. FS .. uid .. FS .. joinedAt .. FS .. uname)
if from ~= ARGV[10] then
  addConn(from, -1)
  addConn(ARGV[10], 1)
end
return finish({'ok', from})
