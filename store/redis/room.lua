-- One operation on one waiting room, atomically: the rules of package admission, exactly as
-- store/memory applies them (the differential test holds the two to each other).
--
-- KEYS (one hash tag, so one Cluster slot): 1 meta hash (with the live waiters by bucket,
-- fields l<bucket> and r<bucket>, and the rate window, fields w<slot>), 2 claimed sessions
-- zset, 3 pending grants zset, 4 recovered places zset. Liveness of
-- tickets lives in strings KEYS[1] minus "m" .. "q:<epoch>:<chunk>", 4 bytes per ticket,
-- 4,094 tickets a chunk (16,376 bytes: with its header, one 16 KiB allocation).
--
-- The meta hash keeps running totals (live waiters, grants in the window) so that no
-- operation reads a whole hash: buckets and slots are pruned one by one as they age out.
-- Calls from Lua are the cost here; each one below earns its place.
--
-- ARGV: op, capacity, per minute, session ms, renewal (0/1), hold ms, grace ms, method,
-- queue all (0/1), recovery ms, last epoch, ref number, ref epoch, now ms (-1: Redis TIME),
-- number of events, then for each (sorted, not overlapping): pre-queue ms, start ms, end ms,
-- shuffle (0/1), seed, capacity, per minute, session ms, renewal (0/1), method.
--
-- Numbers leave as integers; every key gets a TTL when written.
--
-- The file is a library: the functions below are created once, and run(KEYS, ARGV) does one
-- operation. The store loads it as a Redis Function (FUNCTION LOAD, Redis 7) with a footer
-- that registers run, so that Lua does not build some twenty closures on every call; where
-- Functions are missing (miniredis, Redis 6) it runs as a script whose footer calls run.

local BUCKET, SLOTS, MAXSCAN, CHUNK, PASSED, PICK_TRIES = 5000, 61, 1024, 4094, 2147483648, 16
local RANDOM, PASSTHROUGH, REJECT = 1, 2, 3
local HASH_P = 67108859
-- The event state of a room that has seen none; never written (schedule replaces it first).
local NO_EVENT = {0, 0, -1, 0, 0, 0}

-- One operation's state: run sets every one of these first, the functions read them.
local op, cap, perMin, sessMs, renewal, holdMs, graceMs, method, queueAll, recoveryMs
local lastEpoch, refN, refE, now, KM, KS, KG, KR, base, HOLD_BUCKETS, LIVE_TTL
local m, epoch, created, nxt, cursor, admitted, born, recoverUntil, recovering, prev, b, slot
-- Running totals: live waiters of this epoch (liveSum) and recovered (liveRec), the oldest
-- bucket the meta hash may hold (lowBucket), grants in the window (win), the oldest window
-- slot it may hold (lowSlot), the latest session or grant expiry (maxExp).
local liveSum, liveRec, lowBucket, win, lowSlot, maxExp
-- The latest event seen and its pre-queue (store/memory's room.ev...): start, tickets
-- [p0, p1) (p1 -1 while open), shuffle cursor, seed, shuffled (0/1); one meta field.
local ev, evDirty
-- Session counts, read once per operation (by prune).
local nS, nG, nR, wroteS, wroteG
-- Whether the recovered places' set may hold any (1) or surely holds none (0): most rooms
-- never lose their store, and then prune need not count it. And the bucket in which a
-- join last set the TTL of the newest liveness chunk (see join).
local mayRecover, chunkTTLBucket

local function recover()
  if not recovering then recovering, recoverUntil = true, now + recoveryMs end
end
local function noticeLoss()
  if now - born < holdMs then recover() end
end
-- store/memory's shufflePending: the cursor then stands at p0 or before it.
local function shufflePending() return ev[6] == 1 and ev[4] < ev[3] - ev[2] end
local function older(e, n) return e > 0 and e < epoch and n >= 0 end

-- admission's pickLane: rounds of cubing modulo a prime below 2^26 (products stay exact).
local function hashLane(e, a, t, l)
  local P = HASH_P
  local function cube(x) return x * x % P * x % P end
  local h = cube((e % P + l + 1) % P)
  h = cube((h + math.floor(e / P) % P + 1) % P)
  h = cube((h + a % P + 1) % P)
  h = cube((h + math.floor(a / P) % P + 1) % P)
  h = cube((h + t % P + 1) % P)
  for _ = 1, 3 do h = cube((h + l + 1) % P) end
  return h
end
-- admission.Permute and PermuteIndex: a 10-round Feistel network over [0, B*B), B = ceil(sqrt(n)).
local function feistelBase(n)
  local bb = math.max(math.floor(math.sqrt(n)), 1)
  while bb * bb < n do bb = bb + 1 end
  while bb > 1 and (bb - 1) * (bb - 1) >= n do bb = bb - 1 end
  return bb
end
-- One pass of the network over x, and its inverse. One assignment at a time: gopher-lua
-- (miniredis) mistakes "a, b = b, a + f(b)".
local function feistel(seed, bb, x)
  local left, right = math.floor(x / bb), x % bb
  for round = 0, 9 do
    local nr = (left + hashLane(seed, right, round, 2) % bb) % bb
    left = right
    right = nr
  end
  return left * bb + right
end
local function unfeistel(seed, bb, x)
  local left, right = math.floor(x / bb), x % bb
  for round = 9, 0, -1 do
    local nl = (right - hashLane(seed, left, round, 2) % bb) % bb
    right = left
    left = nl
  end
  return left * bb + right
end
-- Cycle walking: step until the result falls in [0, n).
local function cycleWalk(seed, n, x, step)
  local bb = feistelBase(n)
  x = step(seed, bb, x)
  while x >= n do x = step(seed, bb, x) end
  return x
end
local function permute(seed, n, k) return cycleWalk(seed, n, k, feistel) end
local function permuteIndex(seed, n, i) return cycleWalk(seed, n, i, unfeistel) end
local function live(seen) return seen > 0 and seen < PASSED and b - seen <= HOLD_BUCKETS end
local function member(e, n) return tostring(e) .. ':' .. tostring(n) end
-- Recovered places sort by epoch, then number: zero-padded, all at score 0.
local function rqMember(e, n) return string.format('%013d:%015d', e, n) end

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
local function setSeen(e, n, v, keepTTL)
  local k = chunkKey(e, n)
  redis.call('SETRANGE', k, (n % CHUNK) * 4, string.char(math.floor(v / 16777216) % 256,
    math.floor(v / 65536) % 256, math.floor(v / 256) % 256, v % 256))
  if not keepTTL then redis.call('PEXPIRE', k, LIVE_TTL) end
end


-- prune drops expired sessions, and liveness buckets and window slots that aged out,
-- subtracting them from the totals; once per operation, since time stands still within one.
local function prune()
  if nS then return end
  redis.call('ZREMRANGEBYSCORE', KS, '-inf', now)
  redis.call('ZREMRANGEBYSCORE', KG, '-inf', now)
  nS, nG, nR = redis.call('ZCARD', KS), redis.call('ZCARD', KG), 0
  if mayRecover == 1 then
    nR = redis.call('ZCARD', KR)
    if nR == 0 then mayRecover = 0 end
  end
  local oldest = b - HOLD_BUCKETS
  if lowBucket < oldest then
    -- Buckets exist from lowBucket to the last operation's: at most a hold's worth.
    for bk = lowBucket, math.min(oldest - 1, math.floor(prev / BUCKET) + 1) do
      local f = tostring(bk)
      local v = redis.call('HMGET', KM, 'l' .. f, 'r' .. f)
      if v[1] or v[2] then
        liveSum = liveSum - (tonumber(v[1]) or 0)
        liveRec = liveRec - (tonumber(v[2]) or 0)
        redis.call('HDEL', KM, 'l' .. f, 'r' .. f)
      end
    end
    lowBucket = oldest
  end
  local oldestSlot = slot - SLOTS + 1
  if lowSlot < oldestSlot then
    for sl = lowSlot, math.min(oldestSlot - 1, math.floor(prev / 1000)) do
      local f = 'w' .. tostring(sl)
      local n = redis.call('HGET', KM, f)
      if n then
        win = win - tonumber(n)
        redis.call('HDEL', KM, f)
      end
    end
    lowSlot = oldestSlot
  end
end

local function addLive(bucket, d, rec)
  if d < 0 and bucket < lowBucket then return end -- pruned already: those no longer count
  local f = (rec and 'r' or 'l') .. tostring(bucket)
  if redis.call('HINCRBY', KM, f, d) == 0 then redis.call('HDEL', KM, f) end
  if rec then liveRec = liveRec + d else liveSum = liveSum + d end
end

local function addSession(key, exp, mem)
  redis.call('ZADD', key, exp, mem)
  maxExp = math.max(maxExp, exp)
end

local function grant(e, n)
  addSession(KG, now + graceMs, member(e, n))
  nG, wroteG = nG + 1, true
  redis.call('HINCRBY', KM, 'w' .. tostring(slot), 1)
  win = win + 1
  admitted = admitted + 1
end

-- step moves admission forward: abandoned places skipped, live ones granted while allowed.
-- Recovered places (from epochs the store lost) go first.
local function step()
  prune()
  local allow
  if queueAll or method == REJECT then
    allow = 0
  elseif method == PASSTHROUGH then
    allow = math.huge
  elseif now < recoverUntil then
    allow = 0
  else
    allow = math.max(0, math.min(cap - nS - nG, perMin - win))
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
  if method == RANDOM then
    -- Each free slot to a random live waiter (admission.Pick); what is left over (a queue
    -- mostly of abandoned places) goes to the head below.
    local function pick(try, span)
      return (hashLane(epoch, admitted, try, 0) * HASH_P + hashLane(epoch, admitted, try, 1)) % span
    end
    local function take(n, seen)
      allow = allow - 1
      addLive(seen, -1)
      setSeen(epoch, n, PASSED + b)
      grant(epoch, n)
    end
    local try = 0
    while allow > 0 and cursor < nxt and try < PICK_TRIES * allow do
      local n = cursor + pick(try, nxt - cursor)
      local seen = getSeen(epoch, n)
      if live(seen) then take(n, seen) end
      try = try + 1
    end
    -- Few live places among many taken or abandoned: the next live ones from a random
    -- place on, wrapping round.
    local span = nxt - cursor
    if allow > 0 and span > 0 then
      local start = pick(try, span)
      local j = 0
      while allow > 0 and j < math.min(span, MAXSCAN) do
        local n = cursor + (start + j) % span
        local seen = getSeen(epoch, n)
        if live(seen) then take(n, seen) end
        j = j + 1
      end
    end
  end
  while cursor < nxt and scanned < MAXSCAN do
    if shufflePending() and cursor == ev[2] then
      -- The pre-queue in its shuffled order: places granted or passed are marked taken,
      -- and the cursor jumps over the whole pre-queue once it is through.
      local n = ev[3] - ev[2]
      while ev[4] < n and scanned < MAXSCAN do
        local t = ev[2] + permute(ev[5], n, ev[4])
        local seen = getSeen(epoch, t)
        if live(seen) then
          if allow <= 0 then return end
          allow = allow - 1
          addLive(seen, -1)
          grant(epoch, t)
        end
        if seen < PASSED then setSeen(epoch, t, PASSED + b) end
        ev[4] = ev[4] + 1
        evDirty, scanned = true, scanned + 1
      end
      if ev[4] < n then return end
      cursor = ev[3]
      scanned = scanned + 1
      if cursor >= nxt or scanned >= MAXSCAN then break end
    end
    local k = chunkKey(epoch, cursor)
    local first = cursor % CHUNK
    -- With nobody to admit, only abandoned places at the head are skipped: read a little.
    local count = math.min(MAXSCAN - scanned, CHUNK - first, nxt - cursor, allow > 0 and MAXSCAN or 64)
    if shufflePending() and cursor < ev[2] then
      count = math.min(count, ev[2] - cursor) -- stop at a shuffled pre-queue
    end
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

local function usersAhead(n, cur, live)
  local span = nxt - cur - 1
  if n <= cur or span <= 0 or live <= 1 then return 0 end
  local others = math.min(live - 1, span)
  local ahead = (n - cur) * others + math.floor(span / 2)
  return math.min(math.floor(ahead / span), others)
end

-- result answers for ticket n of epoch e, claiming its slot if it was granted:
-- ticket, epoch, joined, requeued, admitted, expires, ahead, now, active, waiting, admissions, window.
local function result(e, n, taken)
  local mem = member(e, n)
  local adm, exp, ahead = 0, 0, 0
  -- Slots go only to tickets behind the cursor, recovered ones, or taken out of order
  -- (Random): others need no look.
  local look = taken or e ~= epoch or n < cursor or method == RANDOM or (ev[6] == 1 and n < ev[3])
  local claimed = look and redis.call('ZSCORE', KS, mem)
  if claimed then
    adm, exp = 1, tonumber(claimed)
  elseif look and redis.call('ZSCORE', KG, mem) then
    redis.call('ZREM', KG, mem)
    exp = now + sessMs
    addSession(KS, exp, mem)
    nG, nS, wroteS, adm = nG - 1, nS + 1, true, 1
  end
  if adm == 0 then
    if e == epoch then
      -- In a shuffled pre-queue, places count by their turn in the shuffled order.
      local pos, cur = n, cursor
      if shufflePending() then
        if n >= ev[2] and n < ev[3] then pos = ev[2] + permuteIndex(ev[5], ev[3] - ev[2], n - ev[2]) end
        if cursor == ev[2] then cur = ev[2] + ev[4] end
      end
      ahead = liveRec + usersAhead(pos, cur, liveSum)
    else
      ahead = redis.call('ZLEXCOUNT', KR, '-', '(' .. rqMember(e, n))
    end
  end
  return {n, e, 0, 0, adm, exp, ahead, now, nS + nG, liveSum + liveRec, admitted, win}
end

local function join()
  prune()
  local n = nxt
  nxt = nxt + 1
  if n % CHUNK == 0 and n > 0 then
    -- A busy room's next chunk, made at full size at once: grown a ticket at a time, its
    -- allocation would end up nearly twice as large. (The first grows, so that a small
    -- room stays small.)
    redis.call('SET', chunkKey(epoch, n), string.rep('\0', CHUNK * 4), 'PX', LIVE_TTL)
  end
  -- The newest chunk's TTL need not be set again within a bucket: set at any moment of
  -- bucket b it outlasts every place written in b (LIVE_TTL allows a bucket more than the
  -- hold). A chunk's first ticket always sets it.
  setSeen(epoch, n, b, n % CHUNK ~= 0 and chunkTTLBucket == b)
  chunkTTLBucket = b
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
        mayRecover = 1
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
    if seen >= PASSED then
      -- Granted out of order (Random): in, unless the grant lapsed.
      local mem = member(refE, refN)
      if redis.call('ZSCORE', KS, mem) or redis.call('ZSCORE', KG, mem) then
        return result(refE, refN, true)
      end
    elseif not live(seen) then
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
    if renewal then exp = math.max(exp, now + sessMs) end -- never shorter (an event's)
  elseif not redis.call('ZSCORE', KG, mem) and older(refE, refN) then
    noticeLoss() -- the store lost this session; its holder's pass is valid: count it again
    exp = now + sessMs
    nS = nS + 1
  else
    return {now, 0, 0}
  end
  addSession(KS, exp, mem)
  wroteS = true
  return {now, 1, exp}
end

-- The counters as load found them (by their place in the HMGET), and save's HSET
-- arguments: tables made once and reused, like the functions.
local found, changed, k = {}, {}, 0

local function put(name, i, v)
  if created or v ~= found[i] then
    changed[k + 1] = name
    changed[k + 2] = v
    k = k + 2
  end
end

local function save()
  k = 0
  put('n', 2, nxt)
  put('c', 3, cursor)
  put('a', 4, admitted)
  put('t', 5, now)
  put('lt', 9, liveSum)
  put('lr', 10, liveRec)
  put('lo', 11, lowBucket)
  put('wt', 12, win)
  put('wl', 13, lowSlot)
  put('sx', 14, maxExp)
  put('rq', 16, mayRecover)
  put('qb', 17, chunkTTLBucket)
  if created or recovering ~= (m[8] == '1') then
    put('e', 1, epoch)
    put('b', 6, born)
    put('ru', 7, recoverUntil)
    put('rc', 8, recovering and 1 or 0)
  end
  if evDirty then
    changed[k + 1] = 'ev'
    changed[k + 2] = string.format('%.0f:%.0f:%.0f:%.0f:%.0f:%.0f', unpack(ev))
    k = k + 2
  end
  if k > 0 then redis.call('HSET', KM, unpack(changed, 1, k)) end
  -- The room lives while anything in it does: like store/memory, it goes once it has no
  -- sessions and nobody has come for max(hold, 61 s) plus a bucket. The TTL is set once a
  -- bucket (5 s), a bucket longer: busy rooms skip a call.
  if created or math.floor(now / BUCKET) ~= math.floor(prev / BUCKET) or maxExp ~= found[14] then
    redis.call('PEXPIRE', KM, math.max(math.max(holdMs, SLOTS * 1000) + 2 * BUCKET + 1, maxExp - now + 1))
  end
  -- Sessions of different lengths (an event's, the room's) share the set: it lives as long
  -- as the latest.
  if wroteS then redis.call('PEXPIRE', KS, math.max(sessMs, maxExp - now) + 1000) end
  if wroteG then redis.call('PEXPIRE', KG, graceMs + 1000) end
end

-- args reads the operation's arguments.
local function args(KEYS, ARGV)
  op = ARGV[1]
  cap, perMin = tonumber(ARGV[2]), tonumber(ARGV[3])
  sessMs, renewal = tonumber(ARGV[4]), ARGV[5] == '1'
  holdMs, graceMs = tonumber(ARGV[6]), tonumber(ARGV[7])
  method, queueAll = tonumber(ARGV[8]), ARGV[9] == '1'
  recoveryMs, lastEpoch = tonumber(ARGV[10]), tonumber(ARGV[11])
  refN, refE = tonumber(ARGV[12]), tonumber(ARGV[13])
  now = tonumber(ARGV[14])
  KM, KS, KG, KR = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
  base = string.sub(KM, 1, -2)
  HOLD_BUCKETS = math.floor((holdMs + BUCKET - 1) / BUCKET)
  LIVE_TTL = holdMs + 2 * BUCKET + 1000
  if now < 0 then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
end

-- load reads the room (m and epoch are read already), or starts a new epoch.
local function load()
  created = not epoch
  liveSum, liveRec, lowBucket, win, lowSlot, maxExp = nil, nil, nil, nil, nil, nil
  nS, nG, nR, wroteS, wroteG = nil, nil, nil, false, false
  if epoch then
    nxt, cursor, admitted = tonumber(m[2]), tonumber(m[3]), tonumber(m[4])
    prev = tonumber(m[5])
    now = math.max(now, prev)
    born, recoverUntil, recovering = tonumber(m[6]), tonumber(m[7]), m[8] == '1'
    liveSum, liveRec, lowBucket = tonumber(m[9]), tonumber(m[10]), tonumber(m[11])
    win, lowSlot, maxExp = tonumber(m[12]), tonumber(m[13]), tonumber(m[14])
    found[1], found[2], found[3], found[4], found[5] = epoch, nxt, cursor, admitted, prev
    found[6], found[7], found[9], found[10], found[11] = born, recoverUntil, liveSum, liveRec, lowBucket
    found[12], found[13], found[14] = win, lowSlot, maxExp
    -- Rooms saved before these two fields existed: assume the worst.
    mayRecover, chunkTTLBucket = tonumber(m[16]) or 1, tonumber(m[17]) or 0
    found[16], found[17] = mayRecover, chunkTTLBucket
  else
    -- A new epoch: leftovers of an expired one must not count.
    redis.call('DEL', KR, KS, KG)
    epoch, nxt, cursor, admitted, born, recoverUntil, recovering = now, 0, 0, 0, now, 0, false
    prev, mayRecover, chunkTTLBucket = now, 0, 0
  end
  b = math.floor(now / BUCKET) + 1
  slot = math.floor(now / 1000)
  if not liveSum then
    -- A new room: nothing counted yet.
    liveSum, liveRec, win, lowBucket, lowSlot, maxExp = 0, 0, 0, b, slot, 0
  end
  if created and lastEpoch > 0 and lastEpoch < epoch then
    recover() -- the caller saw this room within the hold: the store lost it
  end
end

-- schedule applies the event in force at now (admission.Limits.At): its limits replace the
-- room's; in its pre-queue nobody is admitted. It opens and closes the pre-queue.
local function schedule(ARGV)
  local evStart, evShuffle, evSeed, prequeue
  for i = 0, (tonumber(ARGV[15]) or 0) - 1 do
    local o = 16 + i * 10
    if now < tonumber(ARGV[o + 2]) then
      if now >= tonumber(ARGV[o + 1]) then
        evStart, evShuffle, evSeed = tonumber(ARGV[o + 1]), ARGV[o + 3] == '1', tonumber(ARGV[o + 4])
        cap, perMin, sessMs = tonumber(ARGV[o + 5]), tonumber(ARGV[o + 6]), tonumber(ARGV[o + 7])
        renewal, method = ARGV[o + 8] == '1', tonumber(ARGV[o + 9])
      elseif now >= tonumber(ARGV[o]) then
        evStart, prequeue, queueAll = tonumber(ARGV[o + 1]), true, true
      end
      break
    end
  end
  ev, evDirty = NO_EVENT, false
  if m[15] and not created then
    ev = {0, 0, -1, 0, 0, 0}
    local i = 1
    for x in string.gmatch(m[15], '[^:]+') do
      ev[i] = tonumber(x)
      i = i + 1
    end
  end
  if evStart then
    if ev[1] ~= evStart then ev, evDirty = {evStart, nxt, -1, 0, 0, 0}, true end
    if not prequeue and ev[3] < 0 then
      -- The pre-queue closes. The cursor may have skipped abandoned places of it meanwhile.
      ev[2] = math.max(ev[2], cursor)
      ev[3], ev[5], evDirty = nxt, evSeed, true
      ev[6] = (evShuffle and ev[3] > ev[2]) and 1 or 0
      -- Sessions and grants from before the start are not valid inside the event.
      redis.call('DEL', KS, KG)
    end
  end
end

local function run(KEYS, ARGV)
  args(KEYS, ARGV)
  m = redis.call('HMGET', KM, 'e', 'n', 'c', 'a', 't', 'b', 'ru', 'rc', 'lt', 'lr', 'lo', 'wt', 'wl', 'sx', 'ev', 'rq', 'qb')
  epoch = tonumber(m[1])
  if not epoch then
    if op == 'stats' then return {now, 0, 0, 0, 0} end
    if op == 'release' then return {} end
  end
  load()
  schedule(ARGV)
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
    save() -- pruning moved the totals
    return {now, nS + nG, liveSum + liveRec, admitted, win}
  end
  return redis.error_reply('waitingroom: unknown operation ' .. tostring(op))
end
