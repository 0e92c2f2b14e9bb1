-- evict.lua: an operator removes a user from the room (HTTP API): every
-- socket of the user leaves it at once.
-- ARGV[9] user id
-- Returns {'ok', userName, conns, lockOrphaned, empty, removed} or
-- {'not_member'}. conns are the connectors that hosted the room's sockets
-- before (the removed sockets hear user-left too); removed lists the
-- sockets that left as socketId \31 connector, joined by \29.
-- lockOrphaned is '1' when the user held the room's lock.
--
-- It reads the room's sockets once (an operator's rare command).
local r = begin()
if r then return r end
local uid = ARGV[9]
if not member(uid) then
  return finish({'not_member'})
end
local before = conns()
local all = redis.call('HGETALL', KEYS[3])
local removed, uname = {}, uid
for i = 1, #all, 2 do
  local conn, u, _, name = sockval(all[i + 1])
  if u == uid then
    redis.call('HDEL', KEYS[3], all[i])
    addConn(conn, -1)
    removed[#removed + 1] = all[i] .. FS .. conn
    uname = name
  end
end
redis.call('SREM', KEYS[2], uid)
local orphan = '0'
local st = redis.call('HMGET', KEYS[1], 'isLocked', 'lockedBy')
if st[1] == 'true' and st[2] == uid then
  orphan = '1'
end
touch()
local empty = '0'
if lifetime() then
  empty = '1'
end
return finish({'ok', uname, before, orphan, empty, table.concat(removed, PS)})
