-- One operation on one waiting room, atomically: the rules of package admission, exactly as
-- store/memory applies them (the differential test holds the two to each other).
--
-- KEYS (one hash tag, so one Cluster slot): 1 meta hash, 2 live buckets hash, 3 rate window
-- hash, 4 claimed sessions zset, 5 pending grants zset, 6 recovered places zset. Liveness of
-- tickets lives in strings KEYS[1] minus "m" .. "q:<epoch>:<chunk>", 4 bytes per ticket.
--
-- ARGV: op, capacity, per minute, session ms, renewal (0/1), hold ms, grace ms, method,
-- queue all (0/1), recovery ms, last epoch, ref number, ref epoch, now ms (-1: Redis TIME).
--
-- Numbers leave as integers; every key gets a TTL when written.
local op = ARGV[1]
local cap, perMin = tonumber(ARGV[2]), tonumber(ARGV[3])
local sessMs, renewal = tonumber(ARGV[4]), ARGV[5] == '1'
local holdMs, graceMs = tonumber(ARGV[6]), tonumber(ARGV[7])
local method, queueAll = tonumber(ARGV[8]), ARGV[9] == '1'
local recoveryMs, lastEpoch = tonumber(ARGV[10]), tonumber(ARGV[11])
local refN, refE = tonumber(ARGV[12]), tonumber(ARGV[13])
local now = tonumber(ARGV[14])
local KM, KL, KW, KS, KG, KR = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local base = string.sub(KM, 1, -2)

local BUCKET, SLOTS, MAXSCAN, CHUNK, PASSED = 5000, 61, 1024, 4096, 2147483648
local PASSTHROUGH, REJECT = 2, 3
local HOLD_BUCKETS = math.floor((holdMs + BUCKET - 1) / BUCKET)
local LIVE_TTL = holdMs + 2 * BUCKET + 1000

if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local m = redis.call('HMGET', KM, 'e', 'n', 'c', 'a', 't', 'b', 'ru', 'rc')
local epoch = tonumber(m[1])
if not epoch then
  if op == 'stats' then return {now, 0, 0, 0, 0} end
  if op == 'release' then return {} end
end

local nxt, cursor, admitted, born, recoverUntil, recovering
local created = not epoch
if epoch then
  nxt, cursor, admitted = tonumber(m[2]), tonumber(m[3]), tonumber(m[4])
  now = math.max(now, tonumber(m[5]))
  born, recoverUntil, recovering = tonumber(m[6]), tonumber(m[7]), m[8] == '1'
else
  -- A new epoch: leftovers of an expired one must not count.
  redis.call('DEL', KL, KW, KR, KS, KG)
  epoch, nxt, cursor, admitted, born, recoverUntil, recovering = now, 0, 0, 0, now, 0, false
end
local b = math.floor(now / BUCKET) + 1

local function recover()
  if not recovering then recovering, recoverUntil = true, now + recoveryMs end
end
if created and lastEpoch > 0 and lastEpoch < epoch then
  recover() -- the caller saw this room within the hold: the store lost it
end
local function noticeLoss()
  if now - born < holdMs then recover() end
end
local function older(e, n) return e > 0 and e < epoch and n >= 0 end
local function live(seen) return seen > 0 and b - seen <= HOLD_BUCKETS end
local function member(e, n) return tostring(e) .. ':' .. tostring(n) end
local function pad(s, w) return string.rep('0', w - #s) .. s end
local function rqMember(e, n) return pad(tostring(e), 13) .. ':' .. pad(tostring(n), 15) end

-- Liveness of ticket n of epoch e: 4 big-endian bytes in chunk strings.
local function chunkKey(e, n) return base .. 'q:' .. tostring(e) .. ':' .. tostring(math.floor(n / CHUNK)) end
local function decode(s, i)
  local x1, x2, x3, x4 = string.byte(s, i, i + 3)
  return ((x1 * 256 + x2) * 256 + x3) * 256 + x4
end
local function getSeen(e, n)
  local off = (n % CHUNK) * 4
  local s = redis.call('GETRANGE', chunkKey(e, n), off, off + 3)
  if #s < 4 then return 0 end
  return decode(s, 1)
end
local function setSeen(e, n, v)
  local k = chunkKey(e, n)
  redis.call('SETRANGE', k, (n % CHUNK) * 4, string.char(math.floor(v / 16777216) % 256,
    math.floor(v / 65536) % 256, math.floor(v / 256) % 256, v % 256))
  redis.call('PEXPIRE', k, LIVE_TTL)
end

-- Counters, read once and kept up to date. Live waiters are counted by the bucket of their
-- last poll in KL: field "<bucket>" for this epoch's queue, "r<bucket>" for recovered places.
local nS, nG, nR, liveSum, liveRec, win
local wroteS, wroteG, wroteW, wroteL = false, false, false, false

-- prune drops expired sessions and liveness buckets older than the hold, and reads the
-- counters; once per operation, since the time does not move within one.
local function prune()
  if nS then return end
  redis.call('ZREMRANGEBYSCORE', KS, '-inf', now)
  redis.call('ZREMRANGEBYSCORE', KG, '-inf', now)
  nS, nG, nR = redis.call('ZCARD', KS), redis.call('ZCARD', KG), redis.call('ZCARD', KR)
  local oldest = b - HOLD_BUCKETS
  local h = redis.call('HGETALL', KL)
  liveSum, liveRec = 0, 0
  for i = 1, #h, 2 do
    local rec = string.sub(h[i], 1, 1) == 'r'
    local bucket = tonumber(rec and string.sub(h[i], 2) or h[i])
    if bucket < oldest then
      redis.call('HDEL', KL, h[i])
    elseif rec then
      liveRec = liveRec + tonumber(h[i + 1])
    else
      liveSum = liveSum + tonumber(h[i + 1])
    end
  end
end

local function windowCount()
  if win then return win end
  local slot = math.floor(now / 1000)
  local h = redis.call('HGETALL', KW)
  win = 0
  for i = 1, #h, 2 do
    local s = tonumber(h[i])
    if s <= slot - SLOTS then
      redis.call('HDEL', KW, h[i])
    else
      win = win + tonumber(h[i + 1])
    end
  end
  return win
end

local function addLive(bucket, d, rec)
  local f = (rec and 'r' or '') .. tostring(bucket)
  if d < 0 and redis.call('HEXISTS', KL, f) == 0 then return end -- pruned already
  redis.call('HINCRBY', KL, f, d)
  wroteL = true
  if rec then liveRec = liveRec + d else liveSum = liveSum + d end
end

local function grant(e, n)
  redis.call('ZADD', KG, now + graceMs, member(e, n))
  nG, wroteG = nG + 1, true
  windowCount()
  redis.call('HINCRBY', KW, tostring(math.floor(now / 1000)), 1)
  win, wroteW = win + 1, true
  admitted = admitted + 1
end

-- step moves admission forward: abandoned places skipped, live ones granted while allowed.
-- Recovered places (from epochs the store lost) go first.
local function step()
  prune()
  local allow
  if method == PASSTHROUGH then
    allow = math.huge
  elseif queueAll or method == REJECT or now < recoverUntil then
    allow = 0
  else
    allow = math.max(0, math.min(cap - nS - nG, perMin - windowCount()))
  end
  local scanned = 0
  while nR > 0 and scanned < MAXSCAN do
    local head = redis.call('ZRANGE', KR, 0, 0)[1]
    local e, n = tonumber(string.sub(head, 1, 13)), tonumber(string.sub(head, 15))
    local v = getSeen(e, n)
    local mem = member(e, n)
    -- A place whose holder is already in (its pass was counted again) needs no grant.
    if live(v) then
      if not (redis.call('ZSCORE', KS, mem) or redis.call('ZSCORE', KG, mem)) then
        if allow <= 0 then return end
        allow = allow - 1
        grant(e, n)
      end
      addLive(v, -1, true)
    end
    setSeen(e, n, PASSED + b)
    redis.call('ZREM', KR, head)
    nR = nR - 1
    scanned = scanned + 1
  end
  if nR > 0 then return end
  while cursor < nxt and scanned < MAXSCAN do
    local k = chunkKey(epoch, cursor)
    local first = cursor % CHUNK
    local count = math.min(MAXSCAN - scanned, CHUNK - first, nxt - cursor)
    local s = redis.call('GETRANGE', k, first * 4, (first + count) * 4 - 1)
    for i = 0, count - 1 do
      local seen = 0
      if 4 * i + 4 <= #s then seen = decode(s, 4 * i + 1) end
      if live(seen) then
        if allow <= 0 then return end
        allow = allow - 1
        addLive(seen, -1)
        grant(epoch, cursor)
      end
      cursor = cursor + 1
      scanned = scanned + 1
      if cursor % CHUNK == 0 then redis.call('DEL', k) end
    end
  end
end

local function usersAhead(n, live)
  local span = nxt - cursor - 1
  if n <= cursor or span <= 0 or live <= 1 then return 0 end
  local others = math.min(live - 1, span)
  local ahead = (n - cursor) * others + math.floor(span / 2)
  return math.min(math.floor(ahead / span), others)
end

-- result answers for ticket n of epoch e, claiming its slot if it was granted:
-- ticket, epoch, joined, requeued, admitted, expires, ahead, now, active, waiting, admissions, window.
local function result(e, n)
  local mem = member(e, n)
  local adm, exp, ahead = 0, 0, 0
  local claimed = redis.call('ZSCORE', KS, mem)
  if claimed then
    adm, exp = 1, tonumber(claimed)
  elseif redis.call('ZSCORE', KG, mem) then
    redis.call('ZREM', KG, mem)
    exp = now + sessMs
    redis.call('ZADD', KS, exp, mem)
    nG, nS, wroteS, adm = nG - 1, nS + 1, true, 1
  end
  if adm == 0 then
    if e == epoch then
      ahead = liveRec + usersAhead(n, liveSum)
    else
      ahead = redis.call('ZLEXCOUNT', KR, '-', '(' .. rqMember(e, n))
    end
  end
  return {n, e, 0, 0, adm, exp, ahead, now, nS + nG, liveSum + liveRec, admitted, windowCount()}
end

local function join()
  prune()
  local n = nxt
  nxt = nxt + 1
  setSeen(epoch, n, b)
  addLive(b, 1)
  step()
  local res = result(epoch, n)
  res[3] = now
  return res
end

local function poll()
  if older(refE, refN) then
    noticeLoss()
    prune()
    local mem = member(refE, refN)
    if redis.call('ZSCORE', KS, mem) or redis.call('ZSCORE', KG, mem) then
      return result(refE, refN)
    end
    local v = getSeen(refE, refN)
    if not (v ~= 0 and (v >= PASSED or not live(v))) then
      if v == 0 then
        redis.call('ZADD', KR, 0, rqMember(refE, refN))
        nR = nR + 1
      else
        addLive(v, -1, true)
      end
      addLive(b, 1, true)
      redis.call('PEXPIRE', KR, LIVE_TTL) -- while any recovered waiter polls
      setSeen(refE, refN, b)
      step()
      return result(refE, refN)
    end
  elseif refE ~= epoch or refN < 0 or refN >= nxt then
    -- unknown: a new place
  elseif refN < cursor then
    prune()
    local mem = member(refE, refN)
    if redis.call('ZSCORE', KS, mem) or redis.call('ZSCORE', KG, mem) then
      return result(refE, refN)
    end
  else
    prune()
    local seen = getSeen(epoch, refN)
    if not live(seen) then
      setSeen(epoch, refN, 0) -- a lost place stays lost
    else
      if seen ~= b then
        addLive(seen, -1)
        addLive(b, 1)
        setSeen(epoch, refN, b)
      end
      step()
      return result(epoch, refN)
    end
  end
  local res = join()
  res[4] = 1
  return res
end

local function renew()
  prune()
  local mem = member(refE, refN)
  local s = redis.call('ZSCORE', KS, mem)
  local exp
  if s then
    exp = tonumber(s)
    if renewal then exp = now + sessMs end
  elseif not redis.call('ZSCORE', KG, mem) and older(refE, refN) then
    noticeLoss() -- the store lost this session; its holder's pass is valid: count it again
    exp = now + sessMs
    nS = nS + 1
  else
    return {now, 0, 0}
  end
  redis.call('ZADD', KS, exp, mem)
  wroteS = true
  return {now, 1, exp}
end

local function save()
  redis.call('HSET', KM, 'e', epoch, 'n', nxt, 'c', cursor, 'a', admitted, 't', now, 'b', born,
    'ru', recoverUntil, 'rc', recovering and '1' or '0')
  -- The room lives while anything in it does: like store/memory, it goes once it has no
  -- sessions and nobody has come for max(hold, 61 s) plus a bucket.
  local ttl = math.max(holdMs, SLOTS * 1000) + BUCKET + 1
  for _, k in ipairs({KS, KG}) do
    local last = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')
    if last[2] then ttl = math.max(ttl, tonumber(last[2]) - now + 1) end
  end
  redis.call('PEXPIRE', KM, ttl)
  if wroteS then redis.call('PEXPIRE', KS, sessMs + 1000) end
  if wroteG then redis.call('PEXPIRE', KG, graceMs + 1000) end
  if wroteW then redis.call('PEXPIRE', KW, (SLOTS + 1) * 1000) end
  if wroteL then redis.call('PEXPIRE', KL, LIVE_TTL) end
end

if op == 'join' then
  local res = join()
  save()
  return res
elseif op == 'poll' then
  local res = poll()
  save()
  return res
elseif op == 'renew' then
  local res = renew()
  save()
  return res
elseif op == 'release' then
  local mem = member(refE, refN)
  redis.call('ZREM', KS, mem)
  redis.call('ZREM', KG, mem)
  return {}
elseif op == 'stats' then
  prune()
  return {now, nS + nG, liveSum + liveRec, admitted, windowCount()}
end
return redis.error_reply('waitingroom: unknown operation ' .. tostring(op))
