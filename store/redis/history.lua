-- store.History.Record on Redis: merges one minute into KEYS[1], the hash of the room's
-- hour, fields "<minute of the hour>:<name>". ARGV: the minute (0-59), the TTL in ms, then
-- name and value pairs; a name's first letter says how it merges: "+" adds, "^" keeps the
-- larger, "@" is Waiting's time, which keeps the pair (w, @) of the later (of two at the
-- same instant, the longer queue).
local m, ttl = ARGV[1], ARGV[2]
for i = 3, #ARGV, 2 do
  local name, v = ARGV[i], tonumber(ARGV[i + 1])
  local kind, f = string.sub(name, 1, 1), m .. ':' .. string.sub(name, 2)
  if kind == '+' then
    if v ~= 0 then redis.call('HINCRBY', KEYS[1], f, v) end
  elseif kind == '^' then
    local cur = tonumber(redis.call('HGET', KEYS[1], f))
    if not cur or v > cur then redis.call('HSET', KEYS[1], f, v) end
  elseif kind == '@' then
    local cur = redis.call('HMGET', KEYS[1], f, m .. ':w')
    local at, w = tonumber(cur[1]), tonumber(ARGV[i + 3])
    if not at or v > at or v == at and w > (tonumber(cur[2]) or -1) then
      redis.call('HSET', KEYS[1], f, v, m .. ':w', w)
    end
  end
end
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
