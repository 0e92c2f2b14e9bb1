-- Admit a join of one of a user's sockets against the user's bounds, in
-- one step on the user's keys, so that simultaneous joins (on any
-- connectors) cannot pass them together. A join admitted here holds its
-- place among the user's rooms until the workers apply it (the room is
-- then in user:{userId}:rooms) or the hold ends.
-- KEYS[1]  user:{userId}:rooms    set     rooms the user is in (the workers keep it)
-- KEYS[2]  user:{userId}:joining  zset    room -> ms until which an admitted join holds its place
-- KEYS[3]  user:{userId}:created  string  rooms the user's joins created in the current window
-- ARGV[1]  room id
-- ARGV[2]  now, ms
-- ARGV[3]  how long an admitted join holds its place, ms
-- ARGV[4]  rooms the user may be in (0 = no limit)
-- ARGV[5]  '1' when the room does not exist (the join would create it)
-- ARGV[6]  rooms the user may create per window (0 = no limit)
-- ARGV[7]  the window, ms
-- Returns {'ok'}, {'too_many_rooms', ARGV[4]} or
-- {'too_many_new_rooms', ARGV[6]}.
local room, now = ARGV[1], tonumber(ARGV[2])
local limit, createLimit = tonumber(ARGV[4]), tonumber(ARGV[6])
if limit > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('SISMEMBER', KEYS[1], room) == 0 and not redis.call('ZSCORE', KEYS[2], room) then
    -- The rooms the user is in, and those its admitted joins will add.
    -- Holds never outnumber the limit, so this loop is bounded by it.
    local n = redis.call('SCARD', KEYS[1])
    local held = redis.call('ZRANGE', KEYS[2], 0, -1)
    for i = 1, #held do
      if redis.call('SISMEMBER', KEYS[1], held[i]) == 0 then
        n = n + 1
      end
    end
    if n >= limit then
      return {'too_many_rooms', ARGV[4]}
    end
  end
end
if ARGV[5] == '1' and createLimit > 0 then
  if tonumber(redis.call('GET', KEYS[3]) or '0') >= createLimit then
    return {'too_many_new_rooms', ARGV[6]}
  end
  if redis.call('INCR', KEYS[3]) == 1 then
    redis.call('PEXPIRE', KEYS[3], ARGV[7])
  end
end
if limit > 0 then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), room)
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return {'ok'}
