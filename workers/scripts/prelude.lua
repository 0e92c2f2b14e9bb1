-- prelude.lua is put in front of every room script when it is loaded.
--
-- Keys of one room (one hash slot: they share the {roomId} hash tag):
-- KEYS[1]  room:{R}          hash  the design's RoomState (id, name, isLocked, lockedBy,
--                                  lockedByName, lockedAt, lockReason, activeUsers,
--                                  activeUploads, lastActivity, createdAt)
-- KEYS[2]  room:{R}:users    set   ids of the users present
-- KEYS[3]  room:{R}:sockets  hash  socketId -> connector \31 userId \31 joinedAt \31 userName
-- KEYS[4]  room:{R}:uploads  hash  uploadId -> upload JSON (built by Go)
-- KEYS[5]  room:{R}:files    hash  fileId -> file JSON (built by Go)
-- KEYS[6]  room:{R}:applied  hash  id = last applied inbound entry, fence = highest
--                                  lease token seen, result = that entry's outcome,
--                                  s:<socketId> = origin \31 seq \31 entry ms of
--                                  that socket's last applied client event,
--                                  pruned = field count after the last pruning,
--                                  conns = a copy of the connectors list (see conns)
-- KEYS[7]  room:{R}:conns    hash  connectorId -> number of the room's sockets on it:
--                                  where the room's events go (one outbound entry
--                                  per connector; connectors know their members)
--
-- Common arguments:
-- ARGV[1]  inbound entry id ("ms-seq")
-- ARGV[2]  fencing token of the caller's partition lease
-- ARGV[3]  event time, ISO-8601 (from the envelope, so a re-run writes the same)
-- ARGV[4]  seconds an empty room lives on
-- ARGV[5]  room id
-- ARGV[6]  socket id of a client event ('' for internal commands)
-- ARGV[7]  its origin (the socket's incarnation)
-- ARGV[8]  its number within the origin (see streams.Envelope)
-- ARGV[9..] script specific
--
-- Every script returns a flat array of strings whose first element is a
-- status: 'ok' or 'noop' (applied), a refusal code (applied: the refusal is
-- the outcome), 'dup' (an entry older than the last applied one, or a
-- client event appended twice: done before, nothing to repeat) or 'fenced'
-- (a newer lease owner wrote here: the caller lost its lease and must
-- stop). Applying is idempotent: the entry id is recorded in the same
-- script as the state change, and the outcome of the last entry is cached
-- so that its redelivery returns the same result (the caller re-emits it
-- and connectors drop duplicates). A client event appended twice (the
-- Redis client repeated an XADD whose reply was lost) has two entry ids but
-- one origin and seq: the second is a 'dup'.

local FS, PS, KS, RS = '\31', '\29', '\28', '\30'
-- Long enough for API_SEQ_KEEP_MS below, the TTL being set again at most
-- hourly.
local APPLIED_TTL = 93600
-- A repeated append lands within seconds of the first (the connector gives
-- up on an append after 5 s); a socket's seq is kept this long after its
-- last event in the room.
local SEQ_KEEP_MS = 600000
-- A publish of the HTTP API with an Idempotency-Key (socket 'api:<key
-- digest>', seq the key's record generation) may be appended again by a
-- retry for as long as its record lives (24 h): its seq is kept longer.
local API_SEQ_KEEP_MS = 90000000
-- State of one call, set by init.
local SEQ_FIELD          -- 's:' .. the socket id
local seqNew = false     -- the socket has no seq in the room yet: the hash grows
local lastID = nil       -- the last applied entry before this one (its id)
local connsMirror = nil  -- the applied hash's copy of the connectors list (see conns)
local connsChanged = false -- room:{R}:conns changed (or the copy was missing): finish stores the list

-- init starts a call. Loaded as a function library (FUNCTION LOAD), this
-- prelude is run once and its functions serve every call: KEYS and ARGV
-- are the library's (see scripts.go) and are set here. Sent as a script
-- (EVALSHA, where Redis has no functions), it runs on every call.
local function init(keys, argv)
  KEYS, ARGV = keys, argv
  SEQ_FIELD = 's:' .. ARGV[6]
  seqNew, lastID, connsMirror, connsChanged = false, nil, nil, false
end

-- Numbers (entry ids' parts, tokens, seqs) are compared as the decimal
-- strings they come as, without converting them: tonumber goes through
-- strtod, which on the frequent event cost more than the commands.
-- numlt tells whether decimal x < decimal y (no sign, no leading zeros).
local function numlt(x, y)
  local lx, ly = #x, #y
  if lx ~= ly then
    return lx < ly
  end
  return x < y
end

-- Ids are taken apart with plain finds (a pattern match costs more).
local function idparts(id)
  local i = string.find(id, '-', 1, true)
  return string.sub(id, 1, i - 1), string.sub(id, i + 1)
end

local function idlt(a, b)
  local am, as = idparts(a)
  local bm, bs = idparts(b)
  if am ~= bm then
    return numlt(am, bm)
  end
  return numlt(as, bs)
end

local function split(s, sep)
  local out, i = {}, 1
  while true do
    local j = string.find(s, sep, i, true)
    if not j then
      out[#out + 1] = string.sub(s, i)
      return out
    end
    out[#out + 1] = string.sub(s, i, j - 1)
    i = j + 1
  end
end

-- begin returns the outcome to give back without applying, or nil when
-- the entry must be applied now.
local function begin()
  local a = redis.call('HMGET', KEYS[6], 'id', 'fence', SEQ_FIELD, 'conns')
  lastID, connsMirror = a[1], a[4]
  if a[2] and a[2] ~= ARGV[2] and numlt(ARGV[2], a[2]) then
    return {'fenced'}
  end
  if a[1] then
    if a[1] == ARGV[1] then
      return split(redis.call('HGET', KEYS[6], 'result') or 'noop', RS)
    end
    if idlt(ARGV[1], a[1]) then
      return {'dup'}
    end
  end
  if ARGV[6] ~= '' and a[3] then
    local i = string.find(a[3], FS, 1, true)
    if i and string.sub(a[3], 1, i - 1) == ARGV[7] then
      local j = string.find(a[3], FS, i + 1, true)
      if not numlt(string.sub(a[3], i + 1, (j or 0) - 1), ARGV[8]) then
        return {'dup'}
      end
    end
  end
  seqNew = ARGV[6] ~= '' and not a[3]
  return nil
end

local function entryMs(id)
  return tonumber((idparts(id)))
end

-- pruneSeqs forgets the seqs of sockets silent in the room for
-- SEQ_KEEP_MS (API publishes: API_SEQ_KEEP_MS). It runs when a socket's
-- first seq was added and scans only when the hash has doubled since the
-- last scan, so its cost per event stays constant.
local function pruneSeqs()
  local n = redis.call('HLEN', KEYS[6])
  if n <= 2 * tonumber(redis.call('HGET', KEYS[6], 'pruned') or '0') + 64 then
    return
  end
  local ms = entryMs(ARGV[1])
  local oldest, oldestAPI = ms - SEQ_KEEP_MS, ms - API_SEQ_KEEP_MS
  local all = redis.call('HGETALL', KEYS[6])
  local gone = {}
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 2) == 's:' then
      local last = tonumber(string.match(all[i + 1], '(%d+)$'))
      if last < oldestAPI or (last < oldest and string.sub(all[i], 3, 6) ~= 'api:') then
        gone[#gone + 1] = all[i]
      end
    end
  end
  for i = 1, #gone, 1000 do
    redis.call('HDEL', KEYS[6], unpack(gone, i, math.min(i + 999, #gone)))
  end
  redis.call('HSET', KEYS[6], 'pruned', n - #gone)
end

-- ttlPeriod is the TTL period of an entry's ms: its digits but the last
-- seven (units of about 2.8 hours).
local function ttlPeriod(ms)
  if #ms <= 7 then
    return ''
  end
  return string.sub(ms, 1, #ms - 7)
end

-- finish records the entry as applied, with its outcome, and returns it.
-- The hash's TTL is set again by the first entry of each TTL period (an
-- entry's ms with its last 7 digits dropped: about 2.8 hours, well within
-- the TTL), which it tells from the previous entry's id.
local function finish(res)
  local ms = idparts(ARGV[1])
  local f = {'id', ARGV[1], 'fence', ARGV[2], 'result', table.concat(res, RS)}
  if ARGV[6] ~= '' then
    f[#f + 1], f[#f + 2] = SEQ_FIELD, ARGV[7] .. FS .. ARGV[8] .. FS .. ms
  end
  local refresh = not lastID or ttlPeriod(ms) ~= ttlPeriod((idparts(lastID)))
  if connsChanged then
    f[#f + 1], f[#f + 2] = 'conns', table.concat(redis.call('HKEYS', KEYS[7]), PS)
  end
  redis.call('HSET', KEYS[6], unpack(f))
  if seqNew then
    pruneSeqs()
  end
  if refresh then
    redis.call('EXPIRE', KEYS[6], APPLIED_TTL)
  end
  return res
end

-- socket value: connector, userId, joinedAt, userName
local function sockval(v)
  local f = split(v, FS)
  return f[1], f[2], f[3], table.concat(f, FS, 4)
end

-- rebuildConns counts the room's sockets per connector from its sockets
-- hash, for a room written before connector counts were kept.
local function rebuildConns()
  local all = redis.call('HVALS', KEYS[3])
  local n = {}
  for i = 1, #all do
    local c = string.match(all[i], '^[^\31]*')
    n[c] = (n[c] or 0) + 1
  end
  for c, k in pairs(n) do
    redis.call('HSET', KEYS[7], c, k)
  end
  connsChanged = true
end

-- ensureConns makes sure the counts exist before join, leave and move
-- change them (rare events: the check costs two commands).
local function ensureConns()
  if redis.call('EXISTS', KEYS[7]) == 0 and redis.call('HLEN', KEYS[3]) > 0 then
    rebuildConns()
  end
end

-- conns lists the connectors hosting sockets of the room ("c1\29c2"): the
-- outbound streams a room event goes to. It grows with the number of
-- connectors, never with the room. The applied hash keeps a copy of the
-- list (field conns), read with the entry's marker at no extra command;
-- finish stores it again whenever room:{R}:conns changed in the call, or
-- the copy was missing (an applied hash that expired, or written before
-- the copy was kept).
local function conns()
  if connsMirror and not connsChanged then
    return connsMirror
  end
  local c = redis.call('HKEYS', KEYS[7])
  if #c == 0 and redis.call('HLEN', KEYS[3]) > 0 then
    rebuildConns()
    c = redis.call('HKEYS', KEYS[7])
  end
  connsMirror, connsChanged = table.concat(c, PS), true
  return connsMirror
end

-- addConn counts n more (or fewer) sockets of the room on connector conn.
local function addConn(conn, n)
  if redis.call('HINCRBY', KEYS[7], conn, n) <= 0 then
    redis.call('HDEL', KEYS[7], conn)
  end
  connsChanged = true
end

local function flat(key)
  local all = redis.call('HGETALL', key)
  local out = {}
  for i = 1, #all, 2 do
    out[#out + 1] = all[i] .. KS .. all[i + 1]
  end
  return table.concat(out, PS)
end

-- touchUploads refreshes the room hash's activeUploads (JSON built by
-- concatenation: ids never need escaping) and lastActivity. It runs when
-- an upload starts, completes or fails, never on progress: progress
-- changes only its own upload's record (room:{R}:uploads), which a join
-- snapshot reads.
local function touchUploads()
  local ups = redis.call('HGETALL', KEYS[4])
  local pj = {}
  for i = 1, #ups, 2 do
    pj[#pj + 1] = '"' .. ups[i] .. '":' .. ups[i + 1]
  end
  redis.call('HSET', KEYS[1], 'activeUploads', '{' .. table.concat(pj, ',') .. '}', 'lastActivity', ARGV[3])
end

-- touch refreshes every derived field of the room hash: activeUsers,
-- activeUploads and lastActivity.
local function touch()
  local users = redis.call('SMEMBERS', KEYS[2])
  table.sort(users)
  local uj = {}
  for i = 1, #users do
    uj[i] = '"' .. users[i] .. '"'
  end
  redis.call('HSET', KEYS[1], 'activeUsers', '[' .. table.concat(uj, ',') .. ']')
  touchUploads()
end

-- lifetime gives the room's keys no TTL while someone is in it and
-- ARGV[4] seconds once it is empty (all but the applied marker).
local STATE_KEYS = {1, 2, 3, 4, 5, 7}
local function lifetime()
  local empty = redis.call('HLEN', KEYS[3]) == 0
  for _, i in ipairs(STATE_KEYS) do
    if empty then
      redis.call('EXPIRE', KEYS[i], ARGV[4])
    else
      redis.call('PERSIST', KEYS[i])
    end
  end
  return empty
end

local function member(uid)
  return redis.call('SISMEMBER', KEYS[2], uid) == 1
end
