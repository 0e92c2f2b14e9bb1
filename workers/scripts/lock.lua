-- lock.lua: a member locks the room.
-- ARGV[9] user id  ARGV[10] user name  ARGV[11] reason ('' = none)
-- Returns {'ok', changed, conns, lockedAt, reason} (changed is '0' when
-- the user already held the lock), {'room_locked', lockedBy, lockedByName,
-- lockedAt} or {'not_member'}.
local r = begin()
if r then return r end
local uid = ARGV[9]
if not member(uid) then
  return finish({'not_member'})
end
local st = redis.call('HMGET', KEYS[1], 'isLocked', 'lockedBy', 'lockedByName', 'lockedAt', 'lockReason')
if st[1] == 'true' then
  if st[2] == uid then
    return finish({'ok', '0', conns(), st[4] or '', st[5] or ''})
  end
  return finish({'room_locked', st[2] or '', st[3] or '', st[4] or ''})
end
redis.call('HSET', KEYS[1], 'isLocked', 'true', 'lockedBy', uid, 'lockedByName', ARGV[10],
  'lockedAt', ARGV[3], 'lockReason', ARGV[11])
touch()
return finish({'ok', '1', conns(), ARGV[3], ARGV[11]})
