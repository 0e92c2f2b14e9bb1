-- upload.lua: upload started / progress / completed / failed.
-- ARGV[9] 'start' | 'progress' | 'complete' | 'fail'
-- ARGV[10] user id  ARGV[11] upload id  ARGV[12] file id
-- ARGV[13] upload JSON to keep in room:{R}:uploads (start, progress) or
--          file JSON to add to room:{R}:files (complete)
-- ARGV[14] most uploads in progress in the room (0 = no limit)
-- ARGV[15] most files in the room (0 = no limit)
-- ARGV[16] progress: the room's last applied entry as of which the
--          worker knows this user's progress on this upload passes every
--          check ('' when it does not know)
-- Returns {'ok', conns, dropped...} ({'ok', conns, prev} for progress:
-- prev is the room's last applied entry before this one), {'not_member'}, {'room_locked',
-- lockedBy, lockedByName, lockedAt} (the room is locked by someone else; a
-- failure report is still accepted), {'forbidden', owner} (the upload id
-- belongs to another user), {'not_owner', fileId, owner} (the file belongs
-- to another user: nobody else replaces it), {'upload_not_started',
-- uploadId, fileId} (a completion needs an upload of that file started by
-- the same user), {'too_many_uploads', limit} or {'too_many_files', limit}.
-- dropped (start only) are the upload JSONs of uploads whose users left
-- the room, removed to make room for this one when the room was at its
-- limit; the caller reports them failed.
--
-- Progress, the frequent event, costs the same in any room: it reads the
-- membership of one user, the lock and its own upload, and writes its own
-- upload and the room's lastActivity. A progress report for an upload not
-- started yet starts it (clients may skip file-upload-started) and so
-- counts it first (one HLEN). activeUploads is refreshed when an upload
-- starts, completes or fails. Limits are checked with HLEN where a record
-- is added, never by reading the room.
local r = begin()
if r then return r end
local mode, uid, upid, fid = ARGV[9], ARGV[10], ARGV[11], ARGV[12]
if mode == 'progress' and ARGV[16] ~= '' and lastID == ARGV[16] then
  -- The room applied nothing but progress reports since the worker saw
  -- this user's report on this upload pass every check: a report changes
  -- no membership, lock or other user's upload, so this one passes too.
  redis.call('HSET', KEYS[4], upid, ARGV[13])
  redis.call('HSET', KEYS[1], 'lastActivity', ARGV[3])
  return finish({'ok', conns(), lastID})
end
if not member(uid) then
  return finish({'not_member'})
end
if mode ~= 'fail' then
  -- lockedBy is set exactly while the room is locked.
  local holder = redis.call('HGET', KEYS[1], 'lockedBy')
  if holder and holder ~= uid then
    local st = redis.call('HMGET', KEYS[1], 'lockedByName', 'lockedAt')
    return finish({'room_locked', holder, st[1] or '', st[2] or ''})
  end
end
local cur = redis.call('HGET', KEYS[4], upid)
-- The upload's owner: a plain find of the user's own field first (ids
-- need no escaping in JSON), the pattern only when that fails.
if cur and not string.find(cur, '"userId":"' .. uid .. '"', 1, true) then
  local owner = string.match(cur, '"userId":"([^"]*)"')
  if owner and owner ~= uid then
    return finish({'forbidden', owner})
  end
end
local maxUploads = ARGV[14]
if mode == 'progress' then
  if not cur and maxUploads ~= '0' and redis.call('HLEN', KEYS[4]) >= tonumber(maxUploads) then
    return finish({'too_many_uploads', maxUploads})
  end
  redis.call('HSET', KEYS[4], upid, ARGV[13])
  redis.call('HSET', KEYS[1], 'lastActivity', ARGV[3])
  return finish({'ok', conns(), lastID or ''})
end
local maxFiles = tonumber(ARGV[15])
maxUploads = tonumber(maxUploads)

-- fileCheck returns nil when uid may add the file (or replace its own),
-- else the refusal.
local function fileCheck()
  local f = redis.call('HGET', KEYS[5], fid)
  if f then
    local owner = string.match(f, '"uploadedBy":"([^"]*)"')
    if owner and owner ~= uid then
      return {'not_owner', fid, owner}
    end
  elseif maxFiles > 0 and redis.call('HLEN', KEYS[5]) >= maxFiles then
    return {'too_many_files', ARGV[15]}
  end
  return nil
end

local dropped = {}
if mode == 'start' then
  local no = fileCheck()
  if no then
    return finish(no)
  end
  if not cur and maxUploads > 0 and redis.call('HLEN', KEYS[4]) >= maxUploads then
    -- At the limit: uploads of users who left the room will never
    -- complete; drop them (at most the limit's worth, and only here).
    local ups = redis.call('HGETALL', KEYS[4])
    for i = 1, #ups, 2 do
      local owner = string.match(ups[i + 1], '"userId":"([^"]*)"')
      if owner and not member(owner) then
        redis.call('HDEL', KEYS[4], ups[i])
        dropped[#dropped + 1] = ups[i + 1]
      end
    end
    if #dropped == 0 then
      return finish({'too_many_uploads', ARGV[14]})
    end
  end
  redis.call('HSET', KEYS[4], upid, ARGV[13])
elseif mode == 'complete' then
  if not cur or string.match(cur, '"fileId":"([^"]*)"') ~= fid then
    return finish({'upload_not_started', upid, fid})
  end
  local no = fileCheck()
  if no then
    return finish(no)
  end
  redis.call('HDEL', KEYS[4], upid)
  redis.call('HSET', KEYS[5], fid, ARGV[13])
else
  redis.call('HDEL', KEYS[4], upid)
end
touchUploads()
local res = {'ok', conns()}
for i = 1, #dropped do
  res[#res + 1] = dropped[i]
end
return finish(res)
