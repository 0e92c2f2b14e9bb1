-- unlock.lua: the lock holder unlocks the room, or the server releases a
-- lock whose holder left (lock-expire).
-- ARGV[9] user id of the caller, or '' for a lock-expire or an operator
-- ARGV[10] 'operator' for an operator's override (HTTP API): whoever holds
--          the lock, it is released ('' otherwise)
-- Returns {'ok', lockedBy, lockedByName, conns}, {'not_locked'},
-- {'not_lock_holder', lockedBy, lockedByName}, or {'noop'} for a
-- lock-expire that finds the holder back in the room or no lock (an
-- operator finding no lock gets {'not_locked'}).
local r = begin()
if r then return r end
local uid = ARGV[9]
local st = redis.call('HMGET', KEYS[1], 'isLocked', 'lockedBy', 'lockedByName')
local operator = ARGV[10] == 'operator'
if st[1] ~= 'true' then
  if uid == '' and not operator then
    return finish({'noop'})
  end
  return finish({'not_locked'})
end
if operator then
  -- released whoever holds it
elseif uid == '' then
  if member(st[2]) then
    return finish({'noop'})
  end
elseif st[2] ~= uid then
  return finish({'not_lock_holder', st[2] or '', st[3] or ''})
end
redis.call('HSET', KEYS[1], 'isLocked', 'false')
redis.call('HDEL', KEYS[1], 'lockedBy', 'lockedByName', 'lockedAt', 'lockReason')
touch()
return finish({'ok', st[2] or '', st[3] or '', conns()})
