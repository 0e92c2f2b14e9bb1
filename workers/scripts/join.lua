-- join.lua: a socket joins a room (creating the room on first use).
-- ARGV[9] socket id  ARGV[10] connector id  ARGV[11] user id  ARGV[12] user name
-- Returns {'ok', first, targets, room, sockets, uploads, files}: first is
-- '1' when the user was not in the room before (user-joined goes out);
-- room/sockets/uploads/files are the room's hashes, flattened, for the
-- joiner's snapshot.
local r = begin()
if r then return r end
local sid, conn, uid, uname = ARGV[9], ARGV[10], ARGV[11], ARGV[12]
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'id', ARGV[5], 'name', ARGV[5], 'isLocked', 'false',
    'createdAt', ARGV[3])
end
local first = '0'
local cur = redis.call('HGET', KEYS[3], sid)
if cur then
  local _, _, joinedAt = sockval(cur)
  redis.call('HSET', KEYS[3], sid, conn .. FS .. uid .. FS .. joinedAt .. FS .. uname)
else
  if not member(uid) then
    first = '1'
  end
  redis.call('HSET', KEYS[3], sid, conn .. FS .. uid .. FS .. ARGV[3] .. FS .. uname)
  redis.call('SADD', KEYS[2], uid)
end
touch()
lifetime()
return finish({'ok', first, targets(), flat(KEYS[1]), flat(KEYS[3]), flat(KEYS[4]), flat(KEYS[5])})
