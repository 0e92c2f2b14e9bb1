-- join.lua: a socket joins a room (creating the room on first use).
-- ARGV[9] socket id  ARGV[10] connector id  ARGV[11] user id  ARGV[12] user name
-- ARGV[13] most users the room may hold (0 = no limit)
-- Returns {'ok', first, conns, room, sockets, uploads, files, added, from},
-- {'ok', '0', '', '', '', '', '', '0', '', 'again'} when the socket is in
-- the room on this connector already (nothing is sent again: it has had
-- the snapshot and every event since), or {'room_full', limit} when a new
-- user would make the room hold more users than ARGV[13] (one SCARD).
-- first is '1' when the user was not in the room before (user-joined goes
-- out); conns are the connectors hosting the room's sockets, this one
-- included; room/sockets/uploads/files are the room's hashes, flattened,
-- for the joiner's snapshot (each bounded by the room limits); added is
-- '1' when the socket was not in the room on this connector before (its
-- connector adds it to its members); from is the connector the socket was
-- on in the room before, when another ('' otherwise).
local r = begin()
if r then return r end
ensureConns()
local sid, conn, uid, uname = ARGV[9], ARGV[10], ARGV[11], ARGV[12]
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'id', ARGV[5], 'name', ARGV[5], 'isLocked', 'false',
    'createdAt', ARGV[3])
end
local first, added, from = '0', '0', ''
local cur = redis.call('HGET', KEYS[3], sid)
if cur then
  local was, _, joinedAt = sockval(cur)
  local v = conn .. FS .. uid .. FS .. joinedAt .. FS .. uname
  if was == conn then
    -- A repeated join: the same socket, where it was. Only its name may
    -- have changed (a refreshed token).
    if v ~= cur then
      redis.call('HSET', KEYS[3], sid, v)
    end
    return finish({'ok', '0', '', '', '', '', '', '0', '', 'again'})
  end
  redis.call('HSET', KEYS[3], sid, v)
  addConn(was, -1)
  addConn(conn, 1)
  added, from = '1', was
else
  if not member(uid) then
    local limit = tonumber(ARGV[13])
    if limit > 0 and redis.call('SCARD', KEYS[2]) >= limit then
      return finish({'room_full', ARGV[13]})
    end
    first = '1'
  end
  redis.call('HSET', KEYS[3], sid, conn .. FS .. uid .. FS .. ARGV[3] .. FS .. uname)
  redis.call('SADD', KEYS[2], uid)
  addConn(conn, 1)
  added = '1'
end
touch()
lifetime()
return finish({'ok', first, conns(), flat(KEYS[1]), flat(KEYS[3]), flat(KEYS[4]), flat(KEYS[5]), added, from})
