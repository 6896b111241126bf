package bench

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/redis"
)

// TestProfile shows where the server's time goes in Poll and Join, two ways. Gated on
// WAITINGROOM_BENCH_PROFILE=1; the figures are only meaningful on an otherwise idle machine.
//
//   - commands: INFO commandstats before and after many calls, per script call. Commands a
//     script calls are counted too, but their usec covers the command alone, not the cost
//     of calling it from Lua (arguments, the reply turned into Lua values), which falls in
//     "(script, outside commands)".
//   - phases: room.lua's run called many times in one EVAL (its functions made once, as
//     FUNCTION LOAD makes them), with a TIME reading between its phases, so that the cost of each phase is measured inside the
//     server, network and clients aside. The phases are marked by matching lines of room.lua;
//     when it changes, the test says which line it no longer finds.
func TestProfile(t *testing.T) {
	if os.Getenv("WAITINGROOM_BENCH_PROFILE") != "1" {
		t.Skip("set WAITINGROOM_BENCH_PROFILE=1 (and WAITINGROOM_REDIS_ADDR) to profile room.lua")
	}
	src, err := os.ReadFile("../store/redis/room.lua")
	if err != nil {
		t.Fatal(err)
	}
	phased, err := phaseScript(string(src))
	if err != nil {
		t.Skip(err)
	}
	const pollers = 16
	client := newClient(t, 0, 2*pollers, "")
	prefix := newPrefix(t)
	t.Cleanup(func() { deleteKeys(t, client, prefix+":*") })
	st := newStore(t, client, prefix)
	ctx := context.Background()

	t.Run("commands", func(t *testing.T) {
		const calls = 20000
		for _, op := range []string{"poll", "join"} {
			room := "commands-" + op
			_, tickets := fullRoom(t, st, room, limits, pollers)
			before := commandStats(t, client)
			var wg sync.WaitGroup
			for w := range pollers {
				wg.Go(func() {
					for range calls / pollers {
						var err error
						if op == "poll" {
							_, err = st.Poll(ctx, room, tickets[w], limits)
						} else {
							_, err = st.Join(ctx, room, limits)
						}
						if err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			logCommands(t, op, before, commandStats(t, client))
		}
	})

	hourLimits := limits
	fiveMinutes := limits
	fiveMinutes.Hold = 5 * time.Minute
	for _, c := range []struct {
		name  string
		op    string
		limit admission.Limits
		queue int  // waiters queued before
		aged  bool // polled for a whole Hold before (see agedRoom)
		runs  int
	}{
		{name: "poll, 16 waiting", op: "poll", limit: hourLimits, queue: 16, runs: 2000},
		{name: "poll, 2000 waiting", op: "poll", limit: hourLimits, queue: 2000, runs: 2000},
		{name: "join, queue growing from 16", op: "join", limit: hourLimits, queue: 16, runs: 2000},
		{name: "poll, after a Hold of 5m", op: "poll", limit: fiveMinutes, queue: 16, aged: true, runs: 1000},
		{name: "poll, after a Hold of 1h", op: "poll", limit: hourLimits, queue: 16, aged: true, runs: 300},
	} {
		t.Run("phases/"+c.name, func(t *testing.T) {
			room := strings.NewReplacer(" ", "", ",", "-").Replace(c.name)
			var tickets []store.Ref
			if c.aged {
				tickets = agedRoom(t, client, prefix, room, c.limit, c.queue)
			} else {
				_, tickets = fullRoom(t, st, room, c.limit, c.queue)
			}
			ref := tickets[len(tickets)/2]
			if c.op == "join" {
				ref = store.Ref{}
			}
			logPhases(t, client, phased, redis.Keys(prefix, room), c.op, c.limit, ref, c.runs)
		})
	}
}

// logCommands logs the commands the script called, per script call, most costly first.
func logCommands(t *testing.T, op string, before, after map[string]cmdStat) {
	type row struct {
		name        string
		calls, usec float64
	}
	var rows []row
	var script row
	var inner float64
	for name, a := range after {
		b := before[name]
		d := row{name: name, calls: float64(a.calls - b.calls), usec: float64(a.usec - b.usec)}
		switch {
		case d.calls <= 0 || name == "info":
		case name == "evalsha" || name == "eval" || name == "fcall":
			script.calls += d.calls
			script.usec += d.usec
		default:
			rows = append(rows, d)
			inner += d.usec
		}
	}
	if script.calls == 0 {
		t.Fatalf("%s: no script calls counted", op)
	}
	slices.SortFunc(rows, func(a, b row) int { return cmp.Compare(b.usec, a.usec) })
	n := script.calls
	var perOp float64
	for _, r := range rows {
		perOp += r.calls / n
	}
	t.Logf("%s: %.0f script calls, %.2f µs each in the server, %.1f commands each", op, n, script.usec/n, perOp)
	for _, r := range rows {
		t.Logf("  %-18s %5.2f calls/op %6.2f µs/op", r.name, r.calls/n, r.usec/n)
	}
	t.Logf("  %-18s                %6.2f µs/op", "(script, outside commands)", (script.usec-inner)/n)
}

// logPhases runs the phased script: runs times op in one EVAL, timing its phases, then runs
// times again without timing for the total.
func logPhases(t *testing.T, client *goredis.Client, src string, keys []string, op string, l admission.Limits, ref store.Ref, runs int) {
	flag := func(b bool) int {
		if b {
			return 1
		}
		return 0
	}
	v, err := client.Eval(context.Background(), src, keys,
		op, l.Capacity, l.PerMinute, l.Session.Milliseconds(), flag(l.Renewal),
		l.Hold.Milliseconds(), l.Grace.Milliseconds(), int(l.Method), flag(l.QueueAll),
		l.Recovery.Milliseconds(), l.LastEpoch, ref.Number, ref.Epoch, -1, 0, runs, // no events; RUNS last
	).StringSlice()
	if err != nil {
		t.Fatal(err)
	}
	total, _ := strconv.ParseFloat(v[1], 64)
	phases := make([]float64, 0, len(v)/2)
	var sum float64
	for i := 3; i < len(v); i += 2 {
		us, _ := strconv.ParseFloat(v[i], 64)
		phases = append(phases, us)
		sum += us
	}
	t.Logf("%s: %.2f µs per run of room.lua inside the server untimed, %.2f timed (%d runs; the call's own entry and reply come on top)",
		op, total, sum, runs)
	for i, us := range phases {
		t.Logf("  %-24s %7.2f µs  %3.0f%%", v[2+2*i], us, 100*us/sum)
	}
}

// phaseScript wraps room.lua in a function run ARGV[15] times, with mark(name) calls that
// add the time since the previous mark to the phase name. It returns an error naming the
// first line of room.lua it cannot find.
func phaseScript(room string) (string, error) {
	marks := []struct{ find, replace string }{
		{"  args(KEYS, ARGV)\n  m = redis.call('HMGET'", "  args(KEYS, ARGV)\n  mark('arguments, TIME')\n  m = redis.call('HMGET'"},
		{"  load()\n  schedule(ARGV)\n", "  mark('HMGET meta')\n  load()\n  schedule(ARGV)\n  mark('load, events')\n"},
		{"  else\n    prune()\n    local seen = getSeen(epoch, refN)\n",
			"  else\n    prune()\n    mark('prune()')\n    local seen = getSeen(epoch, refN)\n"},
		{"      step()\n      return result(epoch, refN)\n",
			"      mark('liveness read/write')\n      step()\n      mark('step()')\n      return result(epoch, refN)\n"},
		{"local function join()\n  prune()\n", "local function join()\n  prune()\n  mark('prune()')\n"},
		{"  addLive(b, 1)\n  step()\n  local res = result(epoch, n)\n",
			"  addLive(b, 1)\n  mark('liveness read/write')\n  step()\n  mark('step()')\n  local res = result(epoch, n)\n  mark('result()')\n"},
		{"  if op == 'join' then\n    local res = join()\n    save()\n",
			"  if op == 'join' then\n    local res = join()\n    mark('join() rest')\n    save()\n    mark('save()')\n"},
		{"  elseif op == 'poll' then\n    local res = poll()\n    save()\n",
			"  elseif op == 'poll' then\n    local res = poll()\n    mark('result()')\n    save()\n    mark('save()')\n"},
	}
	for _, m := range marks {
		if strings.Count(room, m.find) != 1 {
			return "", fmt.Errorf("room.lua changed: update the phase marks in profile_test.go (no single %q)", m.find)
		}
		room = strings.Replace(room, m.find, m.replace, 1)
	}
	return `local RUNS = tonumber(ARGV[16])
local acc, order, last, timing = {}, {}, 0, true
local function clock() local t = redis.call('TIME') return tonumber(t[1]) * 1000000 + tonumber(t[2]) end
local function mark(name)
  if not timing then return end
  local t = clock()
  if not acc[name] then acc[name], order[#order + 1] = 0, name end
  acc[name] = acc[name] + (t - last)
  last = clock()
end
-- The library's functions are made once, as FUNCTION LOAD makes them; run is one call.
` + room + `
local function once() run(KEYS, ARGV) end
-- What a mark costs by itself, taken off every phase.
for i = 1, 1000 do last = clock() mark('') end
local overhead = acc[''] / 1000
acc, order = {}, {}
for i = 1, RUNS do last = clock() once() end
timing = false
local t0 = clock()
for i = 1, RUNS do once() end
local out = {'total', string.format('%.3f', (clock() - t0) / RUNS)}
for _, name in ipairs(order) do
  out[#out + 1] = name
  out[#out + 1] = string.format('%.3f', math.max(0, acc[name] / RUNS - overhead))
end
return out
`, nil
}
