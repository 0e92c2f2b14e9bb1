-- Append the events of applied inbound entries to their partition's feed,
-- each inbound entry's at most once (the keys share the {p} hash tag).
-- KEYS[1]    feed:{p}                 stream of applied events
-- KEYS[1+i]  feed:{p}:fed:<room>      string: the last inbound entry of the
--                                     room (of entry i) whose events are in
--                                     the feed
-- ARGV[1]  the oldest id the feed keeps (MINID, approximate)
-- ARGV[2]  entries the feed keeps at most (MAXLEN, approximate)
-- ARGV[3]  seconds a room's marker lives
-- ARGV[4]  format version (the entries' v field)
-- ARGV[5..] for each inbound entry i, in order: its id, its room, its
--          time (ISO-8601), n, then n times: event type, JSON payload
-- Returns the number of events appended.
--
-- A room's entries are applied in stream order, so its marker only grows:
-- an entry not newer than it was fed before (a redelivery of the room's
-- last entry after a crash or a lost reply) or is older than what a newer
-- lease owner fed already (a late write of a worker that lost its lease),
-- and is skipped.

-- Decimal strings compared without tonumber (ids' parts may pass 2^53).
local function numlt(x, y)
  if #x ~= #y then
    return #x < #y
  end
  return x < y
end

local function idlt(a, b)
  local i, j = string.find(a, '-', 1, true), string.find(b, '-', 1, true)
  local am, bm = string.sub(a, 1, i - 1), string.sub(b, 1, j - 1)
  if am ~= bm then
    return numlt(am, bm)
  end
  return numlt(string.sub(a, i + 1), string.sub(b, j + 1))
end

local added, trim = 0, true
local i, k = 5, 2
while i <= #ARGV do
  local id, room, at, n = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3])
  i = i + 4
  local last = redis.call('GET', KEYS[k])
  if not last or idlt(last, id) then
    for j = 0, n - 1 do
      local typ, data = ARGV[i + 2 * j], ARGV[i + 2 * j + 1]
      if trim then
        redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[1], '*',
          'v', ARGV[4], 'type', typ, 'roomId', room, 'entryId', id, 'at', at, 'data', data)
        trim = false
      else
        redis.call('XADD', KEYS[1], '*',
          'v', ARGV[4], 'type', typ, 'roomId', room, 'entryId', id, 'at', at, 'data', data)
      end
      added = added + 1
    end
    redis.call('SET', KEYS[k], id, 'EX', ARGV[3])
  end
  i = i + 2 * n
  k = k + 1
end
if added > 0 then
  redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[2])
end
return added
