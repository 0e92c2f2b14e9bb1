-- publish.lua: a server event from the HTTP API for the room's members.
-- ARGV[9]  'custom' (delivered only) or 'file' (file-added: the file joins
--          room:{R}:files)
-- ARGV[10] file id (file)
-- ARGV[11] file JSON (file)
-- ARGV[12] upload the file completes ('' = none): it leaves the room's
--          active uploads
-- Returns {'ok', conns} or {'not_found'} when the room is gone (it expired
-- between the request and this entry).
--
-- A custom event costs the same in any room; a file reads the room's
-- uploads only when it ends one.
local r = begin()
if r then return r end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return finish({'not_found'})
end
if ARGV[9] == 'file' then
  redis.call('HSET', KEYS[5], ARGV[10], ARGV[11])
  if ARGV[12] ~= '' and redis.call('HDEL', KEYS[4], ARGV[12]) == 1 then
    touchUploads()
  else
    redis.call('HSET', KEYS[1], 'lastActivity', ARGV[3])
  end
  -- A file added to an empty room expires with it.
  lifetime()
end
return finish({'ok', conns()})
