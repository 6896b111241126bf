package bench

import (
	"cmp"
	"context"
	"os"
	"slices"
	"sync"
	"testing"
)

// TestProfile shows which commands the server runs for Poll and Join: INFO commandstats
// before and after many calls, per script call. Commands a script calls are counted too,
// but their usec covers the command alone, not the cost of calling it from Lua (arguments,
// the reply turned into Lua values), which falls in "(script, outside commands)". Gated on
// WAITINGROOM_BENCH_PROFILE=1; the figures are only meaningful on an otherwise idle machine.
// The time of each phase inside room.lua is store/redis's TestProfilePhases.
func TestProfile(t *testing.T) {
	if os.Getenv("WAITINGROOM_BENCH_PROFILE") != "1" {
		t.Skip("set WAITINGROOM_BENCH_PROFILE=1 (and WAITINGROOM_REDIS_ADDR) to profile room.lua")
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
			_, tickets := fullRoom(t, client, prefix, room, limits, pollers)
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
