-- leave.lua: a socket leaves a room (leave-room, or its disconnect).
-- ARGV[9] socket id
-- ARGV[10] connector the socket must still be on ('' = any): a disconnect
--         reported by a connector the socket has since moved away from
--         changes nothing
-- ARGV[11] 'leave' (asked by the client) or 'disconnect'
-- Returns {'ok', userLeft, userId, userName, conns, lockOrphaned, empty,
-- conn}, {'not_member'} for a leave of a socket not in the room, or
-- {'noop'}. conns are the connectors still hosting sockets of the room;
-- conn is the one the socket was on (it drops the socket from its
-- members). lockOrphaned is '1' when the user who left holds the room's
-- lock and has no socket left in it.
local r = begin()
if r then return r end
ensureConns()
local sid = ARGV[9]
local cur = redis.call('HGET', KEYS[3], sid)
if not cur then
  if ARGV[11] == 'leave' then
    return finish({'not_member'})
  end
  return finish({'noop'})
end
local conn, uid, _, uname = sockval(cur)
if ARGV[10] ~= '' and conn ~= ARGV[10] then
  return finish({'noop'})
end
redis.call('HDEL', KEYS[3], sid)
addConn(conn, -1)
local userLeft = '1'
local all = redis.call('HVALS', KEYS[3])
for i = 1, #all do
  local _, u = sockval(all[i])
  if u == uid then
    userLeft = '0'
    break
  end
end
local orphan = '0'
if userLeft == '1' then
  redis.call('SREM', KEYS[2], uid)
  local st = redis.call('HMGET', KEYS[1], 'isLocked', 'lockedBy')
  if st[1] == 'true' and st[2] == uid then
    orphan = '1'
  end
end
touch()
local empty = '0'
if lifetime() then
  empty = '1'
end
return finish({'ok', userLeft, uid, uname, conns(), orphan, empty, conn})
