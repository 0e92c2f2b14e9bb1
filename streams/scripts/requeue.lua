-- Append a copy of a dead letter to the stream it is applied or delivered
-- from again and record the copy against the letter, atomically (the keys
-- share the {p} hash tag).
-- KEYS[1]  in:{p}            inbound stream (a webhook's: feed:{p}:redo)
-- KEYS[2]  in:{p}:requeued   hash: dead letter id -> copy id (feed:{p}:requeued)
-- ARGV[1]  dead letter id
-- ARGV[2]  seconds the record lives (the inbound retention)
-- ARGV[3..] field, value, ... of the copy
-- Returns the copy's id, or false when the letter was requeued before.
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  return false
end
local fields = {}
for i = 3, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
local id = redis.call('XADD', KEYS[1], '*', unpack(fields))
redis.call('HSET', KEYS[2], ARGV[1], id)
redis.call('EXPIRE', KEYS[2], ARGV[2])
return id
