-- One operation on one waiting room, atomically: admission.Room (admission/room.go) ported
-- to Lua, and held to it by a differential test. Its first lines, made by layout.go, set the
-- model's constants and the layouts of the argument and the replies from Go.
--
-- Keys (one hash tag, so one Cluster slot): KEYS[1] the meta hash: field "h" the room's
-- counters packed as int64s, "l<word>" and "r<word>" the live waiters of this epoch and of
-- recovered places by liveness word (bucket plus one). KEYS[2] claimed sessions and KEYS[3]
-- pending grants (zsets scored by expiry), KEYS[4] recovered places (a zset), KEYS[5] the
-- rate window: the times of the newest admissions, int64s in a string. Liveness words live
-- in strings KEYS[1] minus "m" .. "q:<epoch>:<chunk>", 4 bytes a ticket, CHUNK tickets each.
-- The room's settings hash (cp.KC, "cfg") holds, besides the stored settings, the host's
-- count of slots left (field "slots"; none: not counted), which a join, a poll and a stats
-- read carry (stats) and by which a room that closes when sold out takes no place (join).
--
-- Every redis.call costs about a microsecond, and they are the cost here: a poll that
-- waits is TIME, the header and two live counts read in one HMGET, and its word read; it
-- writes only what moved (its word and two counts once a bucket, the header once a second:
-- the room's clock is kept to the second). A join is TIME, the HMGET and one HSET: the words
-- of a bucket's joins are written together (flushJoins). Expiries are whole seconds (as
-- admission.Room makes them), so what expired is looked for once a second; the head of the
-- queue is known live until its word lapses, so it is not read again on every call; numbers
-- go in and out of the header with struct, which costs far less than a field each.
--
-- The file is a library: the functions are made once and run(KEYS, ARGV) does one operation.
-- The store loads it as a Redis Function (FUNCTION LOAD, Redis 7) with a footer that
-- registers run; where Functions are missing (miniredis, Redis 6) it runs as a script.

local CHUNK = 4094 -- tickets a liveness string: 16,376 bytes, with its header one 16 KiB allocation
-- Every TTL is a minute longer than the model needs: the room keeps the latest time it saw
-- and never goes back, but Redis counts TTLs on its clock, which may step back a little.
local SLACK = 60000
-- su and sp are struct.unpack and struct.pack, found at the first call (a library being
-- loaded may not read them) through getStruct, which the store's Go code defines before this
-- file. miniredis has no struct library: there, a stand-in for the only format used,
-- little-endian int64s, not negative, below 2^53.
local su, sp
-- Globals as upvalues, bound by setup: in a library they are looked up through a metatable.
local floor, mmax, mmin, rcall, tonum
local function polyUnpack(fmt, s, pos)
  pos = pos or 1
  local out = {}
  for i = 1, (#fmt - 1) / 2 do
    local v, mul = 0, 1
    for j = 0, 7 do
      v = v + string.byte(s, pos + j) * mul
      mul = mul * 256
    end
    out[i] = v
    pos = pos + 8
  end
  out[#out + 1] = pos
  return unpack(out)
end
local function polyPack(fmt, ...)
  local parts = {}
  for i, v in ipairs({...}) do
    local bytes = {}
    for j = 1, 8 do
      local b = v % 256
      bytes[j] = b
      v = (v - b) / 256
    end
    parts[i] = string.char(unpack(bytes))
  end
  return table.concat(parts)
end
local function i8s(n) return '<' .. string.rep('i8', n) end
-- made at the first call, as su and sp: the argument, an event, the header's two fields
local ARGS_FMT, EVENT_FMT, HOT_FMT, COLD_FMT

-- One operation's arguments, its room and time.
local op, cap, perMin, sessMs, renewal, holdMs, graceMs, refreshMs, method, queueAll
local recoveryMs, lastEpoch, refN, refE, nEvents, now, HB, KM, KS, KG, KR, KW, base, arg
-- The version of the stored settings the caller's limits come from, whether it overwrites
-- them, and the room's settings keys: KC a hash (v, lim: an argument whose limits they
-- are, doc), KCH their trail (a list of JSON entries, newest first).
-- (cp.mine, cp.overwrite, cp.KC, cp.KCH; one table: a chunk may have at most 200 locals),
-- and the stored settings to hand back to a caller whose version differed (cp.v, cp.doc).
local cp = {}
-- The header "h", field by field (see load and save), and what the operation learns.
local epoch, prev, nxt, cursor, admitted, granted, nS, nG, recoverUntil, recovering
local mayRecover, liveSum, liveRec, lowBucket, ev, p0, p1, sc, seed, shuffle
local wlo, wtlo, wbase, wttl, maxExp, ksUntil, kgUntil, chunkTB, chunkC, headLive, mUntil, ringHB, pruned
local created, b, liveFields, pollerGranted
-- Joins not yet written: tickets [pj, nxt) of this epoch all hold word pb (see flushJoins).
local pj, pb
local dirty, nDirty, grants, nGrants = {}, 0, {}, 0
-- The header is two fields: "h", what most operations change, and "c", what few do, which
-- save writes only when something set coldDirty: every assignment to those variables
-- (recovery, the schedule and a shuffle, recovered places, the window's base, the hold)
-- does.
local coldDirty
-- The header's fields as the last save wrote them (or, "c", as it read it), while the
-- variables above still hold their values: a header read back unchanged (the same text: Lua
-- keeps one copy of a string, so comparing is one step) need not be unpacked again. Cleared
-- at the start of each call, so that a call that fails half-way leaves nothing to trust.
local savedH, savedC
local chunkKM, chunkEpoch, chunkBase, baseKM

-- ---------------------------------------------------------------------------------------
-- Pure helpers: admission's Live, UsersAhead and Permute (with Pick's lanes).

local function live(w) return w > 0 and w < TAKEN and b - w <= HB end

local function usersAhead(n, cur, lv)
  local span = nxt - cur - 1
  if n <= cur or span <= 0 or lv <= 1 then return 0 end
  local others = lv - 1
  if span < others then others = span end
  local ahead = (n - cur) * others + (span - span % 2) / 2
  ahead = (ahead - ahead % span) / span
  if ahead < others then return ahead end
  return others
end

-- admission's pickLane: rounds of cubing modulo a prime below 2^26 (products stay exact).
local function cube(v) return v * v % PICK_P * v % PICK_P end
local function hashLane(x, y, z, l)
  local P = PICK_P
  local h = cube((x % P + l + 1) % P)
  h = cube((h + floor(x / P) % P + 1) % P)
  h = cube((h + y % P + 1) % P)
  h = cube((h + floor(y / P) % P + 1) % P)
  h = cube((h + z % P + 1) % P)
  for _ = 1, 3 do h = cube((h + l + 1) % P) end
  return h
end

-- admission.Permute and PermuteIndex: a Feistel network over [0, B*B), B = ceil(sqrt(n)),
-- walking the cycle until the value falls in [0, n). One assignment at a time: gopher-lua
-- (miniredis) mistakes "a, b = b, a + f(b)".
local function feistelBase(n)
  local bb = mmax(floor(math.sqrt(n)), 1)
  while bb * bb < n do bb = bb + 1 end
  while bb > 1 and (bb - 1) * (bb - 1) >= n do bb = bb - 1 end
  return bb
end
local function feistel(sd, bb, x)
  local left, right = floor(x / bb), x % bb
  for round = 0, FEISTEL_ROUNDS - 1 do
    local nr = (left + hashLane(sd, right, round, 2) % bb) % bb
    left = right
    right = nr
  end
  return left * bb + right
end
local function unfeistel(sd, bb, x)
  local left, right = floor(x / bb), x % bb
  for round = FEISTEL_ROUNDS - 1, 0, -1 do
    local nl = (right - hashLane(sd, left, round, 2) % bb) % bb
    right = left
    left = nl
  end
  return left * bb + right
end
local function cycleWalk(sd, n, x, step)
  local bb = feistelBase(n)
  x = step(sd, bb, x)
  while x >= n do x = step(sd, bb, x) end
  return x
end
local function permute(sd, n, k) return cycleWalk(sd, n, k, feistel) end
local function permuteIndex(sd, n, i) return cycleWalk(sd, n, i, unfeistel) end

-- (Here and on the paths every call takes, x - x % m stands for floor: math's functions
-- are calls into C, which cost twice that.)
local function expiry(d)
  local t = now + d
  local r = t % 1000
  if r == 0 then return t end
  return t - r + 1000
end
-- Integers as text: string.format('%d') is about twice as fast as tostring, which formats
-- with %.14g. Bound at the first call, as su and sp.
local fmt
local function member(e, n) return fmt('%d:%d', e, n) end
-- Numbers go to rcall as text made here: Redis formats a Lua number with %.17g, which
-- costs twice what %d does. Small ones (offsets in a chunk) are made once and kept.
local function d(v) return fmt('%d', v) end
local small, nSmall = {}, 0
local function sd(v)
  local s = small[v]
  if not s then
    if nSmall >= 16384 then small, nSmall = {}, 0 end
    s, nSmall = fmt('%d', v), nSmall + 1
    small[v] = s
  end
  return s
end
-- Live count fields by word, made once a word (a word lasts a bucket) and kept.
local lName, rName, nNames = {}, {}, 0
local function liveName(w, rec)
  local t = rec and rName or lName
  local f = t[w]
  if not f then
    if nNames >= 4096 then lName, rName, nNames = {}, {}, 0 end
    t = rec and rName or lName
    f, nNames = fmt(rec and 'r%d' or 'l%d', w), nNames + 1
    t[w] = f
  end
  return f
end
-- Recovered places sort by epoch, then number: zero-padded, all at score 0.
local function rqMember(e, n) return string.format('%013d:%015d', e, n) end

-- ---------------------------------------------------------------------------------------
-- Liveness words: 4 big-endian bytes a ticket in chunk strings. A chunk lives twice the
-- hold after it was last given a TTL; each waiter renews it when its poll crosses into a
-- new hold-long period, and a join into a new chunk or period: so it outlives every place
-- in it (see store/redis's package doc).

local lastChunk, lastChunkKey -- of this epoch: a poll reads and writes one word
local function chunkKey(e, n)
  local c = (n - n % CHUNK) / CHUNK
  if e ~= epoch then return fmt('%sq:%d:%d', base, e, c) end
  if c ~= lastChunk then lastChunk, lastChunkKey = c, chunkBase .. fmt('%d', c) end
  return lastChunkKey
end
local function decode(s, i)
  local x1, x2, x3, x4 = string.byte(s, i, i + 3)
  return ((x1 * 256 + x2) * 256 + x3) * 256 + x4
end
local function encode(v)
  local x4 = v % 256
  v = (v - x4) / 256
  local x3 = v % 256
  v = (v - x3) / 256
  local x2 = v % 256
  return string.char((v - x2) / 256, x2, x3, x4)
end
local function chunkTTL() return 2 * holdMs + 4 * BUCKET + SLACK end
-- A poll's word write renews its chunk when the waiter's last word was of another period.
local function period(w) return (w - w % HB) / HB end
-- Joins are not written one by one. Tickets that joined in one bucket have one word, so the
-- newest of them, [pj, nxt), are kept as that range and their word pb in the header, and
-- written at once (a SETRANGE a chunk) when a join comes in another bucket or a word in the
-- range must change: a join is then one write (the header), not two. Until then their words
-- are read from the range; those the cursor has passed need none.
local function flushJoins()
  local from = mmax(pj, cursor)
  if from < nxt then
    local word = encode(pb)
    local c = floor(from / CHUNK)
    while c * CHUNK < nxt do
      local lo, hi = mmax(from, c * CHUNK), mmin(nxt, (c + 1) * CHUNK)
      local k = chunkKey(epoch, lo)
      -- A new chunk is made at its full size at once: grown word by word, Redis would
      -- double its allocation as it went (28 KB for 16). A new chunk, or a new period of the
      -- newest one, gets its TTL, so that it outlives every place in it.
      local ttl = c + 1 ~= chunkC or period(pb) ~= period(chunkTB)
      if c + 1 > chunkC then rcall('SETRANGE', k, sd(CHUNK * 4 - 1), '\0') end
      rcall('SETRANGE', k, sd((lo % CHUNK) * 4), string.rep(word, hi - lo))
      if ttl then
        rcall('PEXPIRE', k, d(chunkTTL()))
        if c + 1 >= chunkC then chunkTB, chunkC = pb, c + 1 end
      end
      c = c + 1
    end
  end
  pj = nxt
end
local function getWord(e, n)
  if n >= pj and e == epoch and n < nxt then return pb end
  local off = (n % CHUNK) * 4
  local s = rcall('GETRANGE', chunkKey(e, n), sd(off), sd(off + 3))
  if #s < 4 then return 0 end
  return decode(s, 1)
end
local function setWord(e, n, v, ttl)
  if n >= pj and e == epoch and n < nxt then flushJoins() end
  local k = chunkKey(e, n)
  rcall('SETRANGE', k, sd((n % CHUNK) * 4), encode(v))
  if ttl then rcall('PEXPIRE', k, d(chunkTTL())) end
end

-- Tops (admission.Queue.Top): meta hash field "t<block>" is the newest live word written
-- to a Block of this epoch's tickets, so that a block whose top lapsed is passed in one step.
-- A join raises its block's top (unless the join before it, queued in the same bucket and
-- block, did), a poll that moves its word raises it (its poll read it with the header), and
-- the cursor drops it when it passes the block. A block without one counts as live: read
-- ticket by ticket (rooms from before tops were kept). T (made by the header, with BLOCK
-- and MAXSKIP) is one table: a chunk may have at most 200 locals.
T.drops, T.nDrops, T.dels, T.nDels = {}, 0, {}, 0
-- This operation's tops by block (false: none stored), emptied by begin (a poll reads its
-- own block's with the header: pk and pv, no table), and the blocks' field names, made once
-- a block and kept.
T.v, T.used, T.nm, T.nNames = {}, false, {}, 0
function T.name(k)
  local f = T.nm[k]
  if not f then
    if T.nNames >= 8192 then T.nm, T.nNames = {}, 0 end
    f, T.nNames = fmt('t%d', k), T.nNames + 1
    T.nm[k] = f
  end
  return f
end
-- T.of returns block k's top (b where none is stored: read ticket by ticket); in a run of
-- blocks passed whole (run), it reads those of up to 64 blocks from k on at once.
function T.of(k, run)
  local v
  if k == T.pk then v = T.pv else v = T.v[k] end
  if v == nil then
    T.used = true
    local names, m = {T.name(k)}, 1
    while run and m < 64 and (k + m) * T.BLOCK < nxt and T.v[k + m] == nil do
      m = m + 1
      names[m] = T.name(k + m - 1)
    end
    local got = rcall('HMGET', KM, unpack(names, 1, m))
    for i = 1, m do T.v[k + i - 1] = tonum(got[i]) or false end
    v = T.v[k]
  end
  return v or b
end
-- T.raise makes ticket n's block's top b, the newest word there can be.
function T.raise(n)
  local k = (n - n % T.BLOCK) / T.BLOCK
  local v
  if k == T.pk then v = T.pv else v = T.v[k] end
  if v and v >= b then return end
  if k == T.pk then T.pv = b else T.v[k], T.used = b, true end
  local f = T.name(k)
  liveFields[f] = b
  if not dirty[f] then
    dirty[f] = true
    nDirty = nDirty + 1
    dirty[nDirty] = f
  end
end
-- T.pass moves the cursor to e, dropping the tops of the blocks and the words of the chunks
-- it passes whole (written by save, after the counts).
function T.pass(e)
  local c = cursor - cursor % CHUNK
  while c + CHUNK <= e do
    T.nDels = T.nDels + 1
    T.dels[T.nDels] = chunkKey(epoch, c)
    c = c + CHUNK
  end
  local k = (cursor - cursor % T.BLOCK) / T.BLOCK
  while (k + 1) * T.BLOCK <= e do
    T.drop(k)
    k = k + 1
  end
  cursor = e
end
function T.drop(k)
  local f = T.name(k)
  if dirty[f] then liveFields[f] = 0 end -- written by save, then dropped
  T.nDrops = T.nDrops + 1
  T.drops[T.nDrops] = f
end
function T.flush()
  for i = 1, T.nDels, 1000 do rcall('DEL', unpack(T.dels, i, mmin(i + 999, T.nDels))) end
  for i = 1, T.nDrops, 1000 do rcall('HDEL', KM, unpack(T.drops, i, mmin(i + 999, T.nDrops))) end
  T.nDels, T.nDrops = 0, 0
end

-- Live counts by word: those this operation likely needs were read with the header
-- (liveFields: the word of now, and of a poll a refresh interval ago); the rest are read
-- when needed. The fields changed (dirty) are written by save.
local function countOf(f)
  local v = liveFields[f]
  if v == nil then
    v = tonum(rcall('HGET', KM, f)) or 0
    liveFields[f] = v
  end
  return v
end
local function addLive(w, d, rec)
  if w == 0 or w >= TAKEN or d < 0 and w < lowBucket then return end -- (counted; a count pruned no longer counts)
  local f = liveName(w, rec)
  local v = liveFields[f]
  if v == nil then v = countOf(f) end
  if not dirty[f] then
    dirty[f] = true
    nDirty = nDirty + 1
    dirty[nDirty] = f
  end
  liveFields[f] = v + d
  if rec then liveRec, coldDirty = liveRec + d, true else liveSum = liveSum + d end
end

-- ---------------------------------------------------------------------------------------
-- The rate window: admission times, int64s in KEYS[5] from admission number wbase on; those
-- from wlo on are within the window, the oldest at wtlo.

local function windowAt(i) -- the time of admission i (wbase <= i < admitted)
  local off = (i - wbase) * 8
  return (su('<i8', rcall('GETRANGE', KW, off, off + 7)))
end
local function windowCount()
  if admitted > wlo and wtlo <= now - WINDOW then
    -- The oldest left: find the first that has not, 64 at a time.
    while wlo < admitted do
      local n = mmin(64, admitted - wlo)
      local off = (wlo - wbase) * 8
      local s = rcall('GETRANGE', KW, off, off + 8 * n - 1)
      if #s < 8 * n then
        -- Expired: the last admission was longer than the window ago.
        wlo = admitted
        break
      end
      local i = 0
      while i < n do
        local t = su('<i8', s, 8 * i + 1)
        if t > now - WINDOW then
          wtlo = t
          break
        end
        i = i + 1
      end
      wlo = wlo + i
      if i < n then break end
    end
  end
  return admitted - wlo
end
-- windowAdd records admission number admitted (before the count moves) at now.
local function windowAdd()
  windowCount()
  if admitted - wlo >= mmax(perMin, 1) then
    -- The window keeps the newest PerMinute: enough to tell what the rate allows.
    wlo = admitted - mmax(perMin, 1) + 1
    if wlo < admitted then wtlo = windowAt(wlo) end
  end
  if wlo == admitted then
    -- Empty (and maybe expired): start afresh at this admission.
    rcall('SET', KW, sp('<i8', now), 'PX', WINDOW + SLACK)
    wbase, wlo, wtlo, wttl, coldDirty = admitted, admitted, now, b, true
    return
  end
  if wlo - wbase > mmax(64, admitted - wlo) then
    -- Most of the string has left the window: keep the rest.
    local off = (wlo - wbase) * 8
    local keep = rcall('GETRANGE', KW, off, -1)
    rcall('SET', KW, keep .. sp('<i8', now), 'PX', WINDOW + SLACK)
    wbase, wttl, coldDirty = wlo, b, true
    return
  end
  rcall('APPEND', KW, sp('<i8', now))
  if wttl ~= b then
    rcall('PEXPIRE', KW, WINDOW + SLACK)
    wttl = b
  end
end

-- ---------------------------------------------------------------------------------------
-- Sessions.

local function addSession(key, exp, mem)
  rcall('ZADD', key, exp, mem)
  if exp > maxExp then maxExp = exp end
  if key == KS and exp > ksUntil then
    -- The set lives a session past its latest: renewed once a session, not at every write.
    ksUntil = exp + sessMs
    rcall('PEXPIRE', KS, ksUntil - now + SLACK)
  end
end

local function grant(e, n, isPoller)
  granted = granted + 1
  nG = nG + 1
  if isPoller then
    pollerGranted = true -- claimed in this very operation: result records the session
    return
  end
  nGrants = nGrants + 2
  grants[nGrants - 1] = expiry(graceMs)
  grants[nGrants] = member(e, n)
  maxExp = mmax(maxExp, grants[nGrants - 1])
end

local function flushGrants()
  if nGrants > 0 then
    rcall('ZADD', KG, unpack(grants, 1, nGrants))
    kgUntil = now + graceMs + 2000
    rcall('PEXPIRE', KG, kgUntil - now + SLACK)
    nGrants = 0
  end
end

local function shufflePending() return shuffle == 1 and sc < p1 - p0 end
local function older(e, n) return e > 0 and e < epoch and n >= 0 end
local function recover()
  if recovering == 0 then recovering, recoverUntil, coldDirty = 1, now + recoveryMs, true end
end
local function noticeLoss()
  if now - epoch < holdMs then recover() end
end

-- ---------------------------------------------------------------------------------------
-- Admission (Room.step): recovered places first, then the lottery (Random), then the
-- cursor in ticket order, a shuffled pre-queue in its order.

-- allowance is admission.Allowance: how many the room may admit now (math.huge: all). A
-- Passthrough room admits in recovery too. rated says whether the rate counts (a revival is
-- no admission); with no slot free the rate window is not read.
local function allowance(rated)
  if queueAll == 1 or method == REJECT then return 0 end
  if method == PASSTHROUGH then return math.huge end
  if now < recoverUntil then return 0 end
  local allow = cap - nS - nG
  if allow <= 0 then return 0 end
  if rated then
    local r = perMin - windowCount() - nG
    if r < allow then allow = r end
    if allow < 0 then allow = 0 end
  end
  return allow
end

local function step(poller, pollerWord)
  local BLOCK, MAXSKIP = T.BLOCK, T.MAXSKIP
  local allow = allowance(true)
  local scanned = 0
  if mayRecover == 1 then
    while scanned < MAXSCAN do
      local head = rcall('ZRANGE', KR, 0, 0)[1]
      if not head then
        mayRecover, coldDirty = 0, true
        break
      end
      local e, n = tonum(string.sub(head, 1, 13)), tonum(string.sub(head, 15))
      local v = getWord(e, n)
      if live(v) then
        -- A place whose holder is already in (its pass was counted again) needs no grant.
        local mem = member(e, n)
        if not (rcall('ZSCORE', KS, mem) or rcall('ZSCORE', KG, mem)) then
          if allow <= 0 then return pollerWord end
          allow = allow - 1
          grant(e, n, false)
        end
        addLive(v, -1, true)
      end
      setWord(e, n, TAKEN + b, false)
      rcall('ZREM', KR, head)
      scanned = scanned + 1
    end
    if mayRecover == 1 then return pollerWord end
  end
  local random = method == RANDOM
  if random and allow > 0 and poller >= cursor and not shufflePending() and live(pollerWord) then
    allow = allow - 1
    addLive(pollerWord, -1)
    pollerWord = TAKEN + b
    grant(epoch, poller, true)
    if poller == cursor then headLive = 0 end
  end
  local skips, skipped = 0, false
  while cursor < nxt and scanned < MAXSCAN do
    -- (The poller's block is live: a join raises its top only after this.)
    local jump = skipped and cursor % BLOCK == 0 and skips < MAXSKIP and
      not (cursor == p0 and shufflePending()) and not (poller >= cursor and poller < cursor + BLOCK) and
      not live(T.of(cursor / BLOCK, true))
    skipped = false
    if jump then
      -- Right after a block passed whole: the next ones' tops first, read together (a
      -- block's head is not live where its top is not), and the run passed at once. It stops
      -- where admission.Room.step, passing a block at a time, would.
      local lim = nxt
      if shufflePending() then lim = mmin(lim, p0) end
      local e = cursor
      repeat
        e, skips = mmin(e + BLOCK, lim), skips + 1
      until e >= lim or e % BLOCK ~= 0 or skips >= MAXSKIP or (poller >= e and poller < e + BLOCK) or
        live(T.of(e / BLOCK, true))
      T.pass(e)
      skipped, headLive = true, 0
    elseif cursor == p0 and shufflePending() then
      -- The pre-queue in its shuffled order: places granted or passed are marked taken,
      -- and the cursor jumps over the whole pre-queue once it is through.
      local n = p1 - p0
      while sc < n and scanned < MAXSCAN do
        local t = p0 + permute(seed, n, sc)
        local w
        if t == poller then w = pollerWord else w = getWord(epoch, t) end
        if live(w) then
          if allow <= 0 then return pollerWord end
          allow = allow - 1
          addLive(w, -1)
          grant(epoch, t, t == poller)
        end
        if w < TAKEN then
          if t == poller then pollerWord = TAKEN + b else setWord(epoch, t, TAKEN + b, false) end
        end
        sc, coldDirty = sc + 1, true
        scanned = scanned + 1
      end
      if sc < n then return pollerWord end
      T.pass(p1)
      headLive = 0
      scanned = scanned + 1
    elseif headLive >= b and (random or allow <= 0) then
      break -- the head is live and waits: nothing to read
    else
      local k = chunkKey(epoch, cursor)
      local first = cursor % CHUNK
      local count = mmin(MAXSCAN - scanned, CHUNK - first, nxt - cursor)
      if shufflePending() and cursor < p0 then count = mmin(count, p0 - cursor) end
      -- Words of the joins not yet written are known: read only those before them.
      local nr = mmin(count, pj - cursor)
      local s = ''
      if nr > 0 then s = rcall('GETRANGE', k, sd(first * 4), sd((first + nr) * 4 - 1)) end
      local stop = false
      for i = 0, count - 1 do
        local w = 0
        if cursor == poller then
          w = pollerWord
        elseif i >= nr then
          w = pb
        elseif 4 * i + 4 <= #s then
          w = decode(s, 4 * i + 1)
        end
        if live(w) then
          if random or allow <= 0 then
            headLive = w + HB -- live until then, unless its holder polls again
            stop = true
            break
          end
          allow = allow - 1
          addLive(w, -1)
          grant(epoch, cursor, cursor == poller)
        elseif cursor % BLOCK == 0 and skips < MAXSKIP and not (poller >= cursor and poller < cursor + BLOCK) and
          not live(T.of(cursor / BLOCK, false)) then
          -- Nothing in the block is live: pass it in one step.
          local e = mmin(cursor + BLOCK, nxt)
          if shufflePending() then e = mmin(e, p0) end
          T.pass(e)
          skips, skipped = skips + 1, true
          break
        end
        cursor = cursor + 1
        scanned = scanned + 1
        if cursor % BLOCK == 0 then T.drop(cursor / BLOCK - 1) end
        if cursor % CHUNK == 0 then rcall('DEL', k) end
      end
      if stop then break end
      headLive = 0
    end
  end
  return pollerWord
end

-- ---------------------------------------------------------------------------------------
-- Answers.

-- nextPoll is Room.nextPoll: turn is the live waiters ahead in this epoch's order (-1: none).
local function nextPoll(n, turn)
  local refresh = now + (refreshMs > MINGAP and refreshMs or MINGAP)
  if method == RANDOM and not shufflePending() then
    -- admission.RandomPoll(epoch, n, now, refresh): the caller works it out (decodeResult),
    -- told so by the epoch negated. It is pure arithmetic, and was the costliest part of a
    -- Random poll here.
    return -epoch
  end
  if turn < 0 or queueAll == 1 or method ~= FIFO and not shufflePending() or now < recoverUntil or mayRecover == 1 then
    return refresh
  end
  if p1 == -1 and ev > now and ev < refresh then return ev end
  local m = perMin - nG - turn - 1
  if m < 0 or turn + 1 > cap - nS - nG then return refresh end
  local w = windowCount()
  if w <= m then return refresh end
  local at = windowAt(wlo + w - m - 1) + WINDOW
  return mmin(mmax(at, now + MINGAP), refresh)
end

local function stats(out, o)
  out[o], out[o + 1], out[o + 2] = now, nS + nG, liveSum + liveRec
  out[o + 3], out[o + 4], out[o + 5], out[o + 6] = admitted, granted, windowCount() + nG, cp.slots
end

-- result answers for ticket n of epoch e, claiming its slot if it was granted. look says
-- whether it may hold one: slots go only to tickets behind the cursor, recovered ones,
-- those taken out of order and the poller whose own operation granted it.
local result
do
  -- The reply's places as upvalues: R.X is a lookup by name on every use.
  local R_ADMITTED, R_EXPIRES, R_AHEAD, R_NEXTPOLL, R_NOW = R.ADMITTED, R.EXPIRES, R.AHEAD, R.NEXTPOLL, R.NOW
  function result(e, n, look)
    if nGrants > 0 then flushGrants() end -- a recovered place may have been granted just now
    local out = {n, e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0} -- made whole at once: no regrowing
    local mem = (pollerGranted or look) and member(e, n)
    local claim = pollerGranted -- granted by its own operation: claimed at once
    if claim then
      pollerGranted = false
    elseif look then
      local claimed = rcall('ZSCORE', KS, mem)
      if claimed then
        out[R_ADMITTED], out[R_EXPIRES] = 1, tonum(claimed)
      elseif rcall('ZSCORE', KG, mem) then
        rcall('ZREM', KG, mem)
        claim = true
      end
    end
    if claim then
      -- A grant claimed: a session from now, and an admission in the rate window.
      nG = nG - 1
      nS = nS + 1
      out[R_ADMITTED], out[R_EXPIRES] = 1, expiry(sessMs)
      addSession(KS, out[R_EXPIRES], mem)
      windowAdd()
      admitted = admitted + 1
    end
    if out[R_ADMITTED] == 0 then
      local turn = -1
      if e == epoch then
        -- In a shuffled pre-queue, places count by their turn in the shuffled order.
        local pos, cur = n, cursor
        if shuffle == 1 and shufflePending() then
          if n >= p0 and n < p1 then pos = p0 + permuteIndex(seed, p1 - p0, n - p0) end
          if cursor == p0 then cur = p0 + sc end
        end
        turn = usersAhead(pos, cur, liveSum)
        out[R_AHEAD] = liveRec + turn
      else
        out[R_AHEAD] = rcall('ZLEXCOUNT', KR, '-', '(' .. rqMember(e, n))
      end
      out[R_NEXTPOLL] = nextPoll(n, turn)
    end
    stats(out, R_NOW)
    return out
  end
end

-- ---------------------------------------------------------------------------------------
-- Operations.

local function join()
  if cp.close and cp.slots == 0 then
    -- admission.SoldOut: no place, no ticket; nothing moves but what expired.
    local out = {-1, epoch, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
    out[R.SOLDOUT] = 1
    stats(out, R.NOW)
    return out
  end
  local n = nxt
  nxt = nxt + 1
  addLive(b, 1)
  local w = step(n, b)
  if n >= cursor then
    -- Still queued (or taken out of order): its word is kept, with the joins of its bucket.
    -- The ticket before it, queued with the same word in the same block, raised the top.
    if not (mmax(pj, cursor) < n and pb == b and n % T.BLOCK ~= 0) then T.raise(n) end
    if pj < cursor then pj = cursor end -- those passed need no word
    if pj < n and pb ~= w then flushJoins() end
    if pj >= n then pj, pb = n, w end
    if w ~= b then flushJoins() end -- taken out of order: written at once
  end
  local out = result(epoch, n, false)
  out[R.JOINED] = now
  return out
end

local function poll()
  if older(refE, refN) then
    noticeLoss()
    local mem = member(refE, refN)
    if rcall('ZSCORE', KS, mem) or rcall('ZSCORE', KG, mem) then
      return result(refE, refN, true)
    end
    local v = getWord(refE, refN)
    if not (v ~= 0 and (v >= TAKEN or not live(v))) then
      if v == 0 then
        rcall('ZADD', KR, 0, rqMember(refE, refN))
        mayRecover, coldDirty = 1, true
      else
        addLive(v, -1, true)
      end
      addLive(b, 1, true)
      rcall('PEXPIRE', KR, holdMs + 2 * BUCKET + SLACK) -- while any recovered waiter polls
      setWord(refE, refN, b, true)
      step(-1, 0)
      return result(refE, refN, true)
    end
  elseif refE ~= epoch or refN < 0 or refN >= nxt then
    -- unknown: a new place
  elseif refN < cursor then
    local mem = member(refE, refN)
    if rcall('ZSCORE', KS, mem) or rcall('ZSCORE', KG, mem) then
      return result(refE, refN, true)
    end
  else
    local w = getWord(epoch, refN)
    if w >= TAKEN then
      -- Admitted out of order (Random, a shuffled pre-queue): in, unless the grant lapsed.
      local mem = member(refE, refN)
      if rcall('ZSCORE', KS, mem) or rcall('ZSCORE', KG, mem) then
        return result(refE, refN, true)
      end
    elseif not live(w) then
      if w ~= 0 then setWord(epoch, refN, 0, false) end -- a lost place stays lost
    else
      if w ~= b then
        addLive(w, -1)
        addLive(b, 1)
        T.raise(refN)
      end
      if refN == cursor then headLive = 0 end -- its word moves: read it again when needed
      local nw = step(refN, b)
      -- (A word the cursor passed is never read again, and its chunk may be gone.)
      if nw ~= w and refN >= cursor then setWord(epoch, refN, nw, period(b) ~= period(w)) end
      return result(epoch, refN, refN < cursor or nw >= TAKEN)
    end
  end
  local out = join()
  if out[R.SOLDOUT] == 0 then out[R.REQUEUED] = 1 end
  return out
end

local function renew()
  local mem = member(refE, refN)
  local s = rcall('ZSCORE', KS, mem)
  local exp
  if s then
    exp = tonum(s)
    if renewal == 1 then
      -- Never shorter: an event's longer session runs out as it was given.
      local nexp = mmax(exp, expiry(sessMs))
      if nexp ~= exp then
        exp = nexp
        addSession(KS, exp, mem)
      end
    end
  else
    local g = rcall('ZSCORE', KG, mem)
    if not g and older(refE, refN) then
      noticeLoss() -- the store lost this session; its holder's pass is valid: count it again
      exp = expiry(sessMs)
      nS = nS + 1
      addSession(KS, exp, mem)
      if T.passAt > now - WINDOW then
        -- Its admission was within the window: it counts again, at now (Room.Renew).
        windowAdd()
        admitted = admitted + 1
      end
    elseif T.recount == 1 and refE == epoch and refN >= 0 and refN < nxt then
      -- Admitted by an instance alone while the store was unreachable: counted now, a slot
      -- granted meanwhile claimed, the ticket's place taken out of the queue; for a session,
      -- or (renewal off) what is left of the one it was given.
      exp = expiry(sessMs)
      if renewal == 0 and T.passAt > 0 then
        local e = T.passAt + sessMs
        if e % 1000 ~= 0 then e = e - e % 1000 + 1000 end
        if e < exp then exp = e end
      end
      if exp <= now then return {now, 0, 0} end
      if g then
        rcall('ZREM', KG, mem)
        nG = nG - 1
      end
      if refN >= cursor then
        local w = getWord(epoch, refN)
        if w < TAKEN then
          addLive(w, -1)
          setWord(epoch, refN, TAKEN + b, false)
          if refN == cursor then headLive = 0 end
        end
      end
      nS = nS + 1
      addSession(KS, exp, mem)
      if g or T.passAt > now - WINDOW then
        windowAdd()
        admitted = admitted + 1
      end
    else
      return {now, 0, 0}
    end
  end
  return {now, 1, exp}
end

-- revive is Room.Revive: an ended session comes back while the room has room for it.
local function revive()
  local mem = member(refE, refN)
  if rcall('ZSCORE', KS, mem) then return renew() end
  if allowance(false) <= 0 or refE ~= epoch or refN < 0 or refN >= nxt or rcall('ZSCORE', KG, mem) then
    return {now, 0, 0}
  end
  local exp = expiry(sessMs)
  nS = nS + 1
  addSession(KS, exp, mem)
  return {now, 1, exp}
end

local function release()
  local mem = member(refE, refN)
  nS = nS - rcall('ZREM', KS, mem)
  nG = nG - rcall('ZREM', KG, mem)
end

-- ---------------------------------------------------------------------------------------
-- Loading and saving the room.

-- schedule applies the event in force at now (admission.Limits.At): its limits replace the
-- room's; in its pre-queue nobody is admitted. It opens and closes the pre-queue.
-- The schedule as last decoded, by its text: every call of a room brings the same one.
local evText, evList
local function schedule()
  local evStart, evShuffle, evSeed, prequeue
  if nEvents > 0 then
    -- The same text as the last call's, checked where it lies in arg without copying it out.
    local at = 8 * A_COUNT + 1
    if not (evText and #arg == at - 1 + #evText and string.find(arg, evText, at, true) == at) then
      local text = string.sub(arg, at, 8 * (A_COUNT + nEvents * E_COUNT))
      evText, evList = nil, {}
      for i = 0, nEvents - 1 do
        local e = {su(EVENT_FMT, text, 8 * i * E_COUNT + 1)}
        -- Each event's fields at fixed places: read below with no lookup of E.
        evList[i + 1] = {e[E.END + 1], e[E.START + 1], e[E.PREQUEUE + 1], e[E.SHUFFLE + 1] == 1,
          e[E.SEED + 1], e[E.CAPACITY + 1], e[E.PERMINUTE + 1], e[E.SESSIONMS + 1],
          e[E.RENEWAL + 1], e[E.METHOD + 1]}
      end
      evText = text
    end
  end
  for i = 1, nEvents do
    local e = evList[i]
    if now < e[1] then
      if now >= e[2] then
        evStart, evShuffle, evSeed = e[2], e[4], e[5]
        cap, perMin, sessMs, renewal, method = e[6], e[7], e[8], e[9], e[10]
      elseif now >= e[3] then
        evStart, prequeue, queueAll = e[2], true, 1
      end
      break
    end
  end
  if evStart then
    if ev ~= evStart then ev, p0, p1, sc, shuffle, coldDirty = evStart, nxt, -1, 0, 0, true end
    if not prequeue and p1 < 0 then
      -- The pre-queue closes. The cursor may have skipped abandoned places of it meanwhile.
      p0 = mmax(p0, cursor)
      p1, seed, coldDirty = nxt, evSeed, true
      shuffle = (evShuffle and p1 > p0) and 1 or 0
      if shuffle == 1 then headLive = 0 end
      -- Sessions and grants from before the start are not valid inside the event.
      rcall('DEL', KS, KG)
      nS, nG, ksUntil = 0, 0, 0
    end
  end
end

-- The header's hot fields as read, or as last written: an operation that moved none of them
-- (a poll that waits, within the second of the room's clock) leaves "h" as it is. Kept in
-- upvalues, which cost half what a table does here, in a block of their own (a chunk may
-- have at most 200 locals).
local loadedH, hotSnap, hotSame
-- Whether the snapshot holds the header as Redis has it. It is taken when an operation that
-- may leave the header alone begins (a join never does: it moves nxt), not at every save.
local snapValid = false
do
  local o1, o2, o3, o4, o5, o6, o7, o8, o9, o10, o11
  local o12, o13, o14, o15, o16, o17, o18, o19, o20, o21, o22
  hotSnap = function()
    o1, o2, o3, o4, o5, o6, o7, o8, o9, o10, o11 =
      prev, pruned, nxt, cursor, admitted, granted, nS, nG, liveSum, lowBucket, headLive
    o12, o13, o14, o15, o16, o17, o18, o19, o20, o21, o22 =
      wlo, wtlo, maxExp, mUntil, wttl, ksUntil, kgUntil, chunkTB, chunkC, pj, pb
  end
  hotSame = function()
    return prev == o1 and pruned == o2 and nxt == o3 and cursor == o4 and admitted == o5 and
      granted == o6 and nS == o7 and nG == o8 and liveSum == o9 and lowBucket == o10 and
      headLive == o11 and wlo == o12 and wtlo == o13 and maxExp == o14 and mUntil == o15 and
      wttl == o16 and ksUntil == o17 and kgUntil == o18 and chunkTB == o19 and chunkC == o20 and
      pj == o21 and pb == o22
  end
end

local function load(h, c, sh, scc)
  created = not h
  if h then
    if h ~= sh then
      prev, pruned, nxt, cursor, admitted, granted, nS, nG, liveSum, lowBucket, headLive,
      wlo, wtlo, maxExp, mUntil, wttl, ksUntil, kgUntil, chunkTB, chunkC, pj, pb = su(HOT_FMT, h)
      snapValid = false
    end
    loadedH = h
    if c ~= scc then
      -- (A header of 13 fields, from before the settings' version was kept in it: none.)
      epoch, recoverUntil, recovering, mayRecover, liveRec, ev, p0, p1, sc, seed, shuffle,
      wbase, ringHB, cp.sv = su(COLD_FMT, #c < COLD_LEN and c .. string.rep('\0', COLD_LEN - #c) or c)
      p1 = p1 - 1
    end
    savedC, coldDirty = c, false
    if prev > now then now = prev end
  else
    -- A new epoch: leftovers of an expired one must not count.
    rcall('DEL', KS, KG, KR, KW)
    coldDirty = true
    epoch, prev, nxt, cursor, admitted, granted, nS, nG, recoverUntil, recovering = now, now, 0, 0, 0, 0, 0, 0, 0, 0
    mayRecover, liveSum, liveRec, lowBucket, ev, p0, p1, sc, seed, shuffle = 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
    wlo, wtlo, wbase, wttl, maxExp, ksUntil, kgUntil, chunkTB, chunkC, headLive, mUntil, ringHB, pruned = 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, HB, now
    pj, pb, cp.sv = 0, 0, 0
    loadedH = nil
    if lastEpoch > 0 and lastEpoch < now then
      recover() -- the caller saw this room within the hold: the store lost it
    end
  end
  b = (now - now % BUCKET) / BUCKET + 1
  if lowBucket == 0 then lowBucket = b - HB end
end

-- prune drops what expired: sessions and grants (their expiries are whole seconds, so once a
-- second), and the live counts of words that lapsed. The head's liveness was computed with
-- the hold of its time: a change of the hold reads it again.
local function prune()
  if now - now % 1000 ~= pruned - pruned % 1000 or created then
    -- Everything in a set has expired by ksUntil or kgUntil, and the set may be gone.
    if nS > 0 then
      nS = nS - rcall('ZREMRANGEBYSCORE', KS, '-inf', now)
      if now >= ksUntil then nS = 0 end
    end
    if nG > 0 then
      nG = nG - rcall('ZREMRANGEBYSCORE', KG, '-inf', now)
      if now >= kgUntil then nG = 0 end
    end
  end
  if ringHB ~= HB then headLive, ringHB, coldDirty = 0, HB, true end
  local oldest = b - HB
  if lowBucket < oldest then
    -- Counts exist from lowBucket to the last operation's word: at most a hold's worth.
    for w = lowBucket, mmin(oldest - 1, floor(prev / BUCKET) + 1) do
      local fl, fr = liveName(w, false), liveName(w, true)
      local v = rcall('HMGET', KM, fl, fr)
      if v[1] or v[2] then
        liveSum = liveSum - (tonum(v[1]) or 0)
        liveRec = liveRec - (tonum(v[2]) or 0)
        if v[2] then coldDirty = true end
        rcall('HDEL', KM, fl, fr)
        liveFields[fl], liveFields[fr] = nil, nil -- never dirty: prune runs first
      end
    end
    lowBucket = oldest
  end
  pruned = now - now % 1000
end

local function save()
  -- The room lives while anything in it does: it goes once it has no sessions and nobody
  -- has come for max(hold, the window) plus a bucket. Its TTL is renewed when that moves
  -- past it, a bucket longer, so that a busy room renews it once a bucket.
  local need = now + (holdMs > WINDOW and holdMs or WINDOW) + 2 * BUCKET + 1000
  if maxExp + 1000 > need then need = maxExp + 1000 end
  local renewTTL = created or need > mUntil
  if renewTTL then mUntil = need + BUCKET end
  -- The room's clock is kept to the second (admission.Room.clock).
  prev = now - now % 1000
  if not coldDirty and snapValid and hotSame() then
    -- Only counts moved, if anything: a poll that waits.
    if nDirty == 1 then
      local f1 = dirty[1]
      rcall('HSET', KM, f1, d(liveFields[f1]))
    elseif nDirty > 0 then
      local k, args = 0, {}
      for i = 1, nDirty do
        local f = dirty[i]
        args[k + 1], args[k + 2], k = f, d(liveFields[f]), k + 2
      end
      rcall('HSET', KM, unpack(args, 1, k))
    end
    savedH = loadedH
    return
  end
  local h = sp(HOT_FMT, prev, pruned, nxt, cursor, admitted, granted, nS, nG, liveSum,
    lowBucket, headLive, wlo, wtlo, maxExp, mUntil, wttl, ksUntil, kgUntil, chunkTB, chunkC, pj, pb)
  local c = savedC
  -- A count that fell to 0 is written as 0: prune deletes it with its bucket.
  if not coldDirty and nDirty <= 2 then
    -- What nearly every call writes, without a table of arguments: the header, and the
    -- counts of a join or of a poll that moved its word.
    local f1, f2 = dirty[1], dirty[2]
    if nDirty == 0 then
      rcall('HSET', KM, 'h', h)
    elseif nDirty == 1 then
      rcall('HSET', KM, 'h', h, f1, d(liveFields[f1]))
    else
      rcall('HSET', KM, 'h', h, f1, d(liveFields[f1]), f2, d(liveFields[f2]))
    end
  else
    local k, args = 2, {'h', h}
    if coldDirty then
      c = sp(COLD_FMT, epoch, recoverUntil, recovering, mayRecover, liveRec, ev, p0, p1 + 1, sc,
        seed, shuffle, wbase, ringHB, cp.sv)
      args[3], args[4], k = 'c', c, 4
    end
    for i = 1, nDirty do
      local f = dirty[i]
      args[k + 1], args[k + 2], k = f, d(liveFields[f]), k + 2
    end
    rcall('HSET', KM, unpack(args, 1, k))
  end
  if renewTTL then rcall('PEXPIRE', KM, d(mUntil - now + SLACK)) end
  savedH, savedC = h, c
  snapValid = false
end

-- parse reads the argument arg.
local function parse()
  local flags
  op, now, cap, perMin, sessMs, renewal, holdMs, graceMs, refreshMs, method, queueAll,
  recoveryMs, lastEpoch, refN, refE, cp.mine, flags, nEvents = su(ARGS_FMT, arg)
  -- The field "flags": the offer's overwrite, and closing when sold out (layout.go).
  cp.overwrite = flags % 2
  cp.close = (flags - flags % SL.CLOSE) / SL.CLOSE % 2 == 1
  refN = refN - 1
  local hb = holdMs + BUCKET - 1
  HB = (hb - hb % BUCKET) / BUCKET
end

-- args reads the operation's argument.
local function args(KEYS, ARGV)
  arg = ARGV[1]
  parse()
  KM = KEYS[1]
  if KM ~= baseKM then
    -- The room's other keys are named after the first (Go's Keys): one key to pass, and
    -- names made once for a busy room.
    baseKM, base = KM, string.sub(KM, 1, -2)
    KS, KG, KR, KW = base .. 's', base .. 'g', base .. 'r', base .. 'w'
    cp.KC, cp.KCH = base .. 'cfg', base .. 'chg'
  end
  if now == 0 then
    local t = rcall('TIME')
    local us = tonum(t[2])
    now = tonum(t[1]) * 1000 + (us - us % 1000) / 1000
  end
end

-- reply packs an answer as int64s in one string: a table of numbers costs Redis more to
-- turn into its reply than struct costs to pack them.
local replyFmt = {}
local function reply(out)
  local n = #out
  if n == 0 then return '' end
  local f = replyFmt[n]
  if not f then
    f = i8s(n)
    replyFmt[n] = f
  end
  return sp(f, unpack(out, 1, n))
end

-- setup binds what a library being loaded may not read, at the first call.
local function setup()
  local st = getStruct()
  if st then su, sp = st.unpack, st.pack else su, sp = polyUnpack, polyPack end
  ARGS_FMT, EVENT_FMT, HOT_FMT, COLD_FMT = i8s(A_COUNT), i8s(E_COUNT), i8s(22), i8s(14)
  fmt = string.format
  floor, mmax, mmin, rcall, tonum = math.floor, math.max, math.min, redis.call, tonumber
end

-- readHeader reads the header, and the live counts a poll or a join will likely move: that
-- of the word of now (a join's, and a poll's), and that of a poll a refresh interval ago (a
-- waiter that polls as told). Each field read costs a quarter of a microsecond: only those
-- needed. It returns the fields read, the word of now and the counts' names.
local function readHeader()
  local w1 = (now - now % BUCKET) / BUCKET + 1
  local f1, f0, v
  if op == OP.POLL then
    local t0 = now - refreshMs
    f1, f0 = liveName(w1, false), liveName((t0 - t0 % BUCKET) / BUCKET + 1, false)
    v = rcall('HMGET', KM, 'h', 'c', f1, f0, T.name((refN - refN % T.BLOCK) / T.BLOCK))
  elseif op == OP.JOIN then
    f1 = liveName(w1, false)
    v = rcall('HMGET', KM, 'h', 'c', f1)
  else
    v = rcall('HMGET', KM, 'h', 'c')
  end
  return v, w1, f1, f0
end

-- begin starts an operation on what readHeader read (sh and scc: the header as the last
-- call left it): the per-call state emptied, the room loaded, its snapshot taken for an
-- operation that may leave the header alone.
local function begin(v, w1, f1, f0, sh, scc)
  -- dirty and grants are emptied, not made anew: a table costs more than a few stores.
  for i = 1, nDirty do dirty[dirty[i]], dirty[i] = nil, nil end
  liveFields, nDirty, nGrants, pollerGranted = {}, 0, 0, false
  T.nDels, T.nDrops, T.pk = 0, 0, nil
  if T.used then T.v, T.used = {}, false end
  load(v[1], v[2], sh, scc)
  if op ~= OP.JOIN and not snapValid and not created then
    hotSnap()
    snapValid = true
  end
  if KM ~= chunkKM or epoch ~= chunkEpoch then
    -- A Function keeps this between calls: a busy room formats it once.
    chunkKM, chunkEpoch, chunkBase, lastChunk = KM, epoch, fmt('%sq:%d:', base, epoch), nil
  end
  if w1 == b and f1 then
    -- (now did not step back to the room's clock)
    liveFields[f1] = tonum(v[3]) or 0
    if f0 then liveFields[f0] = tonum(v[4]) or 0 end
  end
  if f0 then T.pk, T.pv = (refN - refN % T.BLOCK) / T.BLOCK, tonum(v[5]) or false end
end

-- settle is admission.Settle: which limits the operation runs by. The room's header "c"
-- keeps the stored version it last saw (plus one; 0: unknown), written here and by a change
-- of the settings (control.lua), so that a caller holding it costs nothing more: c is read
-- anyway. Any other reads the settings. What it learns is saved with the header (cp.set).
local function settle(c, scc, doc)
  cp.v, cp.doc, cp.set = nil, nil, nil
  local mine, KC, KCH = cp.mine, cp.KC, cp.KCH
  -- The header as the last call left it (the same text): its version is unpacked already.
  local sv = c and (c == scc and cp.sv or #c >= COLD_LEN and su(SV_FMT, c, COLD_LEN - 7))
  if sv == mine + 1 and not (doc and cp.overwrite == 1) then return end
  local s = rcall('HMGET', KC, 'v', 'lim', 'doc', 'last')
  local cv = tonum(s[1])
  if doc and (not cv or cp.overwrite == 1) then
    -- The caller's code seeds the room's settings (versions go on from a deleted room's),
    -- or a deploy overwrites them.
    local nv = (cv or tonum(s[4]) or 0) + 1
    -- The limits without the caller's own trailing fields (a renewal's): instances of
    -- releases from before them read stored limits of the fields they know.
    rcall('HSET', KC, 'v', nv, 'lim', string.sub(arg, 1, 8 * (A_COUNT + nEvents * E_COUNT)), 'doc', doc)
    rcall('HDEL', KC, 'last')
    rcall('PEXPIRE', KC, SETTINGS_TTL)
    rcall('LPUSH', KCH, cjson.encode({version = nv, previous = cv or 0, at = now, by = 'code',
      what = cv and 'overwrite' or 'seed', prior = s[3] or nil}))
    rcall('LTRIM', KCH, 0, MAX_CHANGES - 1)
    rcall('PEXPIRE', KCH, SETTINGS_TTL)
    cp.v, cp.doc, cp.set = nv, doc, nv + 1
    return
  end
  cp.set = (cv or 0) + 1
  if not cv or cv == mine then return end
  -- The stored limits (fields capacity to recoveryMs, and the schedule) in place of the
  -- caller's; its own fields (the operation, time, epoch seen, ticket) stay.
  local lim = s[2]
  arg = string.sub(arg, 1, 8 * (A.CAPACITY - 1)) .. string.sub(lim, 8 * (A.CAPACITY - 1) + 1, 8 * A.RECOVERYMS) ..
    string.sub(arg, 8 * A.RECOVERYMS + 1, 8 * (A.EVENTS - 1)) .. string.sub(lim, 8 * (A.EVENTS - 1) + 1)
  local t = now
  parse()
  now = t
  -- Closing when sold out is the stored limits' (their "flags"; 0 in those of a release
  -- before it), not the caller's.
  local sf = su('<i8', lim, 8 * (A.FLAGS - 1) + 1)
  cp.close = (sf - sf % SL.CLOSE) / SL.CLOSE % 2 == 1
  cp.v, cp.doc = cv, s[3] or ''
end

local function run(KEYS, ARGV)
  if not su then setup() end
  local sh, scc = savedH, savedC
  savedH, savedC = nil, nil
  args(KEYS, ARGV)
  local v, w1, f1, f0 = readHeader()
  -- The host's count of slots left, for the answers that carry it (and a join's rule). It
  -- is the settings', which a change of them (settle) leaves as it is.
  if op == OP.JOIN or op == OP.POLL or op == OP.STATS then
    cp.slots = tonum(rcall('HGET', cp.KC, 'slots')) or SL.NONE
  end
  if not v[1] then
    if op == OP.STATS then return reply({now, 0, 0, 0, 0, 0, cp.slots}) end
    if op == OP.REVIVE then return reply({now, 0, 0}) end
    if op == OP.RELEASE then return '' end
  end
  -- A renewed pass's admission time follows the events: the caller's, read before settle
  -- may put the stored limits in the argument.
  local at = 8 * (A_COUNT + nEvents * E_COUNT)
  T.passAt, T.recount = 0, 0
  if op == OP.RENEW and #arg >= at + 16 then T.passAt, T.recount = su('<i8i8', arg, at + 1) end
  if op ~= OP.RELEASE then settle(v[2], scc, ARGV[2]) end
  begin(v, w1, f1, f0, sh, scc)
  if cp.set and cp.set ~= cp.sv then cp.sv, coldDirty = cp.set, true end
  if op ~= OP.RELEASE then
    -- A release is room.Release: it ends one session, and neither the schedule nor what
    -- expired moves (it carries no limits).
    schedule()
    prune()
  end
  local out
  if op == OP.JOIN then
    out = join()
  elseif op == OP.POLL then
    out = poll()
  elseif op == OP.RENEW then
    out = renew()
  elseif op == OP.REVIVE then
    out = revive()
  elseif op == OP.RELEASE then
    release()
    out = {}
  elseif op == OP.STATS then
    out = {}
    stats(out, S.NOW)
  else
    return redis.error_reply('waitingroom: unknown operation ' .. tostring(op))
  end
  if nGrants > 0 then flushGrants() end
  save()
  if T.nDels + T.nDrops > 0 then T.flush() end
  if cp.v then return reply(out) .. sp('<i8i8', cp.v, refreshMs) .. cp.doc end
  return reply(out)
end
