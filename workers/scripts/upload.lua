-- upload.lua: upload started / progress / completed / failed.
-- ARGV[9] 'start' | 'progress' | 'complete' | 'fail'
-- ARGV[10] user id  ARGV[11] upload id  ARGV[12] file id
-- ARGV[13] upload JSON to keep in room:{R}:uploads (start, progress) or
--          file JSON to add to room:{R}:files (complete)
-- Returns {'ok', conns}, {'not_member'}, {'room_locked', lockedBy,
-- lockedByName, lockedAt} (the room is locked by someone else; a failure
-- report is still accepted) or {'forbidden', owner} (the upload id belongs
-- to another user).
--
-- Progress, the frequent event, costs the same in any room: it reads the
-- membership of one user, the lock and its own upload, and writes its own
-- upload and the room's lastActivity. activeUploads is refreshed when an
-- upload starts, completes or fails.
local r = begin()
if r then return r end
local mode, uid, upid = ARGV[9], ARGV[10], ARGV[11]
if not member(uid) then
  return finish({'not_member'})
end
if mode ~= 'fail' then
  local st = redis.call('HMGET', KEYS[1], 'isLocked', 'lockedBy', 'lockedByName', 'lockedAt')
  if st[1] == 'true' and st[2] ~= uid then
    return finish({'room_locked', st[2] or '', st[3] or '', st[4] or ''})
  end
end
local cur = redis.call('HGET', KEYS[4], upid)
if cur then
  local owner = string.match(cur, '"userId":"([^"]*)"')
  if owner and owner ~= uid then
    return finish({'forbidden', owner})
  end
end
if mode == 'progress' then
  redis.call('HSET', KEYS[4], upid, ARGV[13])
  redis.call('HSET', KEYS[1], 'lastActivity', ARGV[3])
  return finish({'ok', conns()})
end
if mode == 'start' then
  redis.call('HSET', KEYS[4], upid, ARGV[13])
elseif mode == 'complete' then
  redis.call('HDEL', KEYS[4], upid)
  redis.call('HSET', KEYS[5], ARGV[12], ARGV[13])
else
  redis.call('HDEL', KEYS[4], upid)
end
touchUploads()
return finish({'ok', conns()})
