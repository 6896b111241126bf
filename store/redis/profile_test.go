package redis

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
)

// Profiling tools for room.lua, gated on WAITINGROOM_PROFILE=1 and a real Redis at
// WAITINGROOM_REDIS_ADDR; their figures mean something only on an otherwise idle machine.
// The benchmarks that judge the store are in the bench module.

func profileClient(t *testing.T) *goredis.Client {
	addr := os.Getenv("WAITINGROOM_REDIS_ADDR")
	if addr == "" || os.Getenv("WAITINGROOM_PROFILE") != "1" {
		t.Skip("set WAITINGROOM_PROFILE=1 and WAITINGROOM_REDIS_ADDR to profile room.lua")
	}
	c := goredis.NewClient(&goredis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// profileLimits are a full room of one seat taken for an hour: everyone else waits.
var profileLimits = admission.Limits{
	Capacity: 1, PerMinute: 1, Session: time.Hour, Renewal: true, Hold: time.Hour,
	Grace: 40 * time.Second, Recovery: time.Minute, Refresh: 20 * time.Second,
}

// profileRoom is a room of its own on the profile's server, full, with 101 waiters (their
// tickets): the keys are deleted when the test ends.
func profileRoom(t *testing.T) (*goredis.Client, []string, []store.Ref) {
	c := profileClient(t)
	ctx := context.Background()
	prefix := "wrprofile-" + fmt.Sprint(time.Now().UnixNano())
	s := &Store{client: c, prefix: prefix}
	keys := Keys(prefix, "room")
	t.Cleanup(func() {
		// The room's keys and its liveness chunks, which Keys does not name.
		iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
	var refs []store.Ref
	for range 101 {
		r, err := s.Join(ctx, "room", profileLimits)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, store.Ref{Number: r.Ticket, Epoch: r.Epoch})
	}
	return c, keys, refs
}

// TestProfilePhases runs room.lua's own functions, phase by phase, many times inside one
// EVAL, with a TIME reading after each phase: what each costs inside the server, the network,
// the client and FCALL's own overhead aside. Each phase's figure includes one TIME call,
// which the "(a TIME call)" line measures.
func TestProfilePhases(t *testing.T) {
	c, keys, refs := profileRoom(t)
	ctx := context.Background()
	phased := `
return (function()
  local N = tonumber(ARGV[2])
  local function T() local x = redis.call('TIME'); return tonumber(x[1]) * 1e6 + tonumber(x[2]) end
  local A, acc, order, last = {ARGV[1]}, {}, {}, 0
  local function mark(name)
    local n = T()
    if not acc[name] then acc[name] = 0; order[#order + 1] = name end
    acc[name] = acc[name] + (n - last)
    last = T()
  end
  run(KEYS, A)
  for _ = 1, N do
    last = T()
    mark('(a TIME call)')
    local sh, scc = savedH, savedC
    savedH, savedC = nil, nil
    args(KEYS, A); mark('args (with TIME)')
    local v, w1, f1, f0 = readHeader(); mark('HMGET header and counts')
    begin(v, w1, f1, f0, sh, scc); mark('load')
    schedule(); prune(); mark('schedule, prune')
    if op == OP.POLL then
      local w = getWord(epoch, refN); mark('read the word')
      if w ~= b then addLive(w, -1); addLive(b, 1) end; mark('move the count')
      local nw = step(refN, b); mark('step')
      if nw ~= w then setWord(epoch, refN, nw, period(b) ~= period(w)) end; mark('write the word')
      result(epoch, refN, refN < cursor or nw >= TAKEN); mark('result')
    else
      join(); mark('join')
    end
    if nGrants > 0 then flushGrants() end; save(); mark('save')
  end
  local out = {}
  for _, k in ipairs(order) do out[#out + 1] = string.format('%-26s %6.2f us', k, acc[k] / N) end
  return out
end)()
`
	src := luaHeader + "local function getStruct() return struct end\n" + roomLua + "\n" + phased
	for _, op := range []struct {
		name string
		arg  []byte
	}{
		{"poll", encodeArgs(opPoll, 0, profileLimits, refs[50])},
		{"join", encodeArgs(opJoin, 0, profileLimits, store.Ref{})},
	} {
		lines, err := c.Eval(ctx, src, keys, op.arg, 5000).StringSlice()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s, per call:\n  %s", op.name, strings.Join(lines, "\n  "))
	}
}

// TestProfileLoop runs a poll and a join many times inside one EVAL, by turns of 100 with a
// GCRA of redis_rate's shape (GET, TIME, SET), and prints each one's time and the ratio:
// the cost of room.lua's own work against the yardstick's, without the network, the client
// or FCALL's overhead, and steady where this VM's speed drifts (both take the same turns).
func TestProfileLoop(t *testing.T) {
	c, keys, refs := profileRoom(t)
	ctx := context.Background()
	t.Cleanup(func() { c.Del(ctx, keys[0]+"gcra") })
	loop := `
return (function()
  local N = tonumber(ARGV[2])
  local function T() local x = redis.call('TIME'); return tonumber(x[1]) * 1e6 + tonumber(x[2]) end
  local A = {ARGV[1]}
  local G = {KEYS[1] .. 'gcra'}
  run(KEYS, A)
  local tg, to = 0, 0
  for _ = 1, N / 100 do
    local t0 = T()
    for _ = 1, 100 do
      local tat = redis.call('GET', G[1])
      local t = redis.call('TIME')
      local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
      tat = math.max(tonumber(tat) or now, now) + 1
      redis.call('SET', G[1], tat, 'PX', 60000)
      local r = {1, tat}
    end
    local t1 = T()
    for _ = 1, 100 do run(KEYS, A) end
    local t2 = T()
    tg, to = tg + t1 - t0, to + t2 - t1
  end
  local t0, t1, t2 = 0, tg, tg + to
  redis.call('DEL', G[1])
  return {string.format('gcra %.2f us, op %.2f us, ratio %.2f', (t1 - t0) / N, (t2 - t1) / N, (t2 - t1) / (t1 - t0))}
end)()
`
	src := luaHeader + "local function getStruct() return struct end\n" + roomLua + "\n" + loop
	random := profileLimits
	random.Method = admission.Random
	event := profileLimits // an event running, after one that ended, as bench's
	start := time.Now().Add(-time.Hour).UnixMilli()
	event.Events = []admission.Event{
		{Prequeue: start - 2*3600e3, Start: start - 2*3600e3, End: start - 3600e3, Capacity: 1, PerMinute: 1, Session: time.Hour, Renewal: true},
		{Prequeue: start, Start: start, End: start + 3*3600e3, Capacity: 1, PerMinute: 1, Session: time.Hour, Renewal: true},
	}
	for range 3 {
		for _, op := range []struct {
			name string
			arg  []byte
		}{
			{"fifo poll", encodeArgs(opPoll, 0, profileLimits, refs[50])},
			{"fifo join", encodeArgs(opJoin, 0, profileLimits, store.Ref{})},
			{"random poll", encodeArgs(opPoll, 0, random, refs[50])},
			{"random join", encodeArgs(opJoin, 0, random, store.Ref{})},
			{"event poll", encodeArgs(opPoll, 0, event, refs[50])},
			{"event join", encodeArgs(opJoin, 0, event, store.Ref{})},
		} {
			lines, err := c.Eval(ctx, src, keys, op.arg, 20000).StringSlice()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %s", op.name, lines[0])
		}
	}
}

// TestProfileCalls measures usec_per_call (INFO commandstats) of FCALL for polls and joins,
// by turns with a GCRA script of redis_rate's shape (GET, TIME, SET) run as EVALSHA: one
// connection, so that the figures compare within a run.
func TestProfileCalls(t *testing.T) {
	c := profileClient(t)
	ctx := context.Background()
	prefix := "wrprofile-" + fmt.Sprint(time.Now().UnixNano())
	s, err := New(c, WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Del(ctx, append(Keys(prefix, "room"), prefix+":gcra")...) })
	var refs []store.Ref
	for range 200 {
		r, err := s.Join(ctx, "room", profileLimits)
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, store.Ref{Number: r.Ticket, Epoch: r.Epoch})
	}
	gcra := goredis.NewScript(`
local tat = redis.call('GET', KEYS[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
tat = math.max(tonumber(tat) or now, now) + 1
redis.call('SET', KEYS[1], tat, 'PX', 60000)
return {1, tat}`)
	stat := func(cmd string) (calls, usec float64) {
		info, _ := c.Info(ctx, "commandstats").Result()
		for _, line := range strings.Split(info, "\r\n") {
			if strings.HasPrefix(line, "cmdstat_"+cmd+":") {
				fmt.Sscanf(strings.SplitN(line, ":", 2)[1], "calls=%g,usec=%g", &calls, &usec)
			}
		}
		return calls, usec
	}
	for range 3 {
		var line []string
		for _, op := range []string{"gcra", "poll", "join"} {
			cmd := "fcall"
			if op == "gcra" {
				cmd = "evalsha"
			}
			c0, u0 := stat(cmd)
			for i := range 3000 {
				var err error
				switch op {
				case "gcra":
					err = gcra.Run(ctx, c, []string{prefix + ":gcra"}).Err()
				case "poll":
					_, err = s.Poll(ctx, "room", refs[1+i%199], profileLimits)
				case "join":
					_, err = s.Join(ctx, "room", profileLimits)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			c1, u1 := stat(cmd)
			line = append(line, fmt.Sprintf("%s %.2f us", op, (u1-u0)/(c1-c0)))
		}
		t.Log(strings.Join(line, ", "))
	}
}
