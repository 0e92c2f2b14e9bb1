-- Take the lease of one inbound partition if nobody holds it.
-- KEYS[1]  lease key   in:{p}:lease   (string "owner token", with a TTL)
-- KEYS[2]  epoch key   in:{p}:epoch   (counter of fencing tokens)
-- ARGV[1]  owner id
-- ARGV[2]  lease TTL in milliseconds
-- Returns the fencing token (> 0) when the caller holds the lease now,
-- 0 when another owner holds it.
local cur = redis.call('GET', KEYS[1])
if cur then
  local owner, token = string.match(cur, '^(.*) (%d+)$')
  if owner == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(token)
  end
  return 0
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. token, 'PX', ARGV[2])
return token
