-- A change of one room's settings, atomically (store.Control's PutSettings and
-- DeleteSettings): KEYS[1] the settings hash (v, lim, doc, and slots, the host's count of
-- slots left, which a put leaves as it is; after a deletion only last, the
-- latest version, so that versions go on rising and an old ETag never matches), KEYS[2]
-- their trail, KEYS[3]
-- the room's meta hash, whose "v" caches the stored version for room.lua's operations.
-- ARGV: the operation ("put" or "delete"), the version it was made against (-1: any), the
-- limits (an argument of room.lua), the document, who, what, the TTL in ms, the trail's
-- length, the time (0: the server's TIME) and the length of the room header's "c".
-- Reply: {new version} or {-1, stored version} when the version did not match.
local op, want = ARGV[1], tonumber(ARGV[2])
local cur = redis.call('HMGET', KEYS[1], 'v', 'doc', 'last')
local have = tonumber(cur[1]) or 0
if want ~= -1 and want ~= have or op == 'delete' and have == 0 then return {-1, have} end
local now = tonumber(ARGV[9])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local nv = 0
if op == 'put' then
  nv = math.max(have, tonumber(cur[3]) or 0) + 1
  redis.call('HSET', KEYS[1], 'v', nv, 'lim', ARGV[3], 'doc', ARGV[4])
  redis.call('HDEL', KEYS[1], 'last')
else
  redis.call('HDEL', KEYS[1], 'v', 'lim', 'doc', 'slots') -- the host's count of slots goes too
  redis.call('HSET', KEYS[1], 'last', have)
end
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('LPUSH', KEYS[2], cjson.encode({version = nv, previous = have, at = now, by = ARGV[5],
  what = ARGV[6], prior = cur[2] or nil}))
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[8]) - 1)
redis.call('PEXPIRE', KEYS[2], ARGV[7])
-- The room's header "c" keeps the stored version (plus one) in its last 8 bytes, which
-- room.lua compares with each caller's: written in place, little-endian.
local c = redis.call('HGET', KEYS[3], 'c')
if c then
  local n, bytes = nv + 1, {}
  for i = 1, 8 do
    bytes[i] = n % 256
    n = (n - n % 256) / 256
  end
  c = string.sub(c .. string.rep('\0', tonumber(ARGV[10]) - #c), 1, tonumber(ARGV[10]) - 8) .. string.char(unpack(bytes))
  redis.call('HSET', KEYS[3], 'c', c)
end
return {nv}
