-- Claim the record of a publish made with an Idempotency-Key.
--
-- The record is a string: 'pending <fprint> <gen> <until>' while a
-- request is being appended, 'done <fprint> <entryId> <gen>' once it was.
-- fprint is a digest of the request (event and data); gen numbers the
-- request for the workers' duplicate check (its seq): Redis's clock at the
-- record's creation, in microseconds, so that a record made after an
-- earlier one expired has a higher number and is a new request, while a
-- retry of an abandoned one (its request crashed between its append and
-- its answer) reuses it and is applied once. until is the time in ms
-- after which a pending request counts as abandoned.
--
-- KEYS[1]  api:idem:{key}  the record
-- ARGV[1]  the request's fprint
-- ARGV[2]  ms a pending request has before it counts as abandoned
-- ARGV[3]  the record's lifetime, ms
-- Returns {'new', gen} (a new record: append with gen), {'retry', gen}
-- (an abandoned request taken over: append again with its gen),
-- {'done', entryId}, {'busy'} (in progress) or {'other'} (the key was
-- used for another request).
local t = redis.call('TIME')
local gen = t[1] .. string.format('%06d', tonumber(t[2]))
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], 'pending ' .. ARGV[1] .. ' ' .. gen .. ' ' .. string.format('%d', now + tonumber(ARGV[2])), 'PX', ARGV[3])
  return {'new', gen}
end
local f = {}
for w in string.gmatch(v, '%S+') do
  f[#f + 1] = w
end
if f[2] ~= ARGV[1] then
  return {'other'}
end
if f[1] == 'done' then
  return {'done', f[3] or ''}
end
local until_ = tonumber(f[4] or '')
if not f[3] or not until_ or now < until_ then
  -- In progress (or written by a version that kept no number: it ends
  -- with its short TTL).
  return {'busy'}
end
redis.call('SET', KEYS[1], 'pending ' .. ARGV[1] .. ' ' .. f[3] .. ' ' .. string.format('%d', now + tonumber(ARGV[2])), 'KEEPTTL')
return {'retry', f[3]}
