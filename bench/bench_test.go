// Package bench measures the Redis store against a real server: throughput beside
// go-redis/redis_rate (the one-script-per-call limiter this store is modelled on) and the
// memory a room keeps. It is a module of its own so that redis_rate never reaches the
// library's users. Everything here skips unless WAITINGROOM_REDIS_ADDR is set; see README.md.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	goredis "github.com/redis/go-redis/v9"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/redis"
)

// limits is a busy room: one seat, taken for an hour, so every other visitor waits, and
// waiters stay live for the whole run without polling.
var limits = admission.Limits{
	Capacity: 1, PerMinute: 1, Session: time.Hour, Renewal: true,
	Hold: time.Hour, Grace: 40 * time.Second, Recovery: time.Minute,
}

// BenchmarkRedisRateAllow is the yardstick: one GCRA script on one key per call. All
// goroutines share one key, as all visitors of a room share its keys below.
func BenchmarkRedisRateAllow(b *testing.B) {
	client, prefix := benchClient(b), newPrefix(b)
	b.Cleanup(func() { deleteKeys(b, client, "rate:"+prefix+":*") })
	limiter := redis_rate.NewLimiter(client)
	key := prefix + ":allow"
	limit := redis_rate.PerSecond(1e9)
	ctx := context.Background()

	run(b, client, func(*testing.PB) func() error {
		return func() error {
			res, err := limiter.Allow(ctx, key, limit)
			if err == nil && res.Allowed != 1 {
				err = fmt.Errorf("redis_rate refused at %v", limit)
			}
			return err
		}
	})
}

// BenchmarkPoll is a waiter refreshing its page in a full room: each goroutine polls a
// waiting ticket of its own, which stays live and is never admitted.
func BenchmarkPoll(b *testing.B) {
	client, prefix, st := benchStore(b)
	_, tickets := fullRoom(b, client, prefix, "bench", limits, goroutines())
	benchPoll(b, client, st, "bench", limits, tickets)
}

// BenchmarkPollAfterHold is BenchmarkPoll in a room that has seen waiters poll for a whole
// Hold before the run, as every busy room has once it is older than its Hold: its liveness
// hash then holds a field for every 5-second bucket of the Hold, emptied ones included, and
// every operation reads them all. Run for the library's default Hold (5m) and for the Hold
// of limits (1h).
func BenchmarkPollAfterHold(b *testing.B) {
	for _, c := range []struct {
		name string
		hold time.Duration
	}{{"hold=5m", 5 * time.Minute}, {"hold=1h", time.Hour}} {
		l := limits
		l.Hold = c.hold
		client, prefix, st := benchStore(b)
		tickets := agedRoom(b, client, prefix, "bench", l, goroutines())
		b.Run(c.name, func(b *testing.B) { benchPoll(b, client, st, "bench", l, tickets) })
	}
}

// BenchmarkJoin is a crowd arriving at a full room: every call queues a new visitor, so the
// queue grows by b.N.
func BenchmarkJoin(b *testing.B) {
	client, prefix, st := benchStore(b)
	fullRoom(b, client, prefix, "bench", limits, 0)
	ctx := context.Background()

	run(b, client, func(*testing.PB) func() error {
		return func() error {
			r, err := st.Join(ctx, "bench", limits)
			if err == nil && r.Admitted {
				err = fmt.Errorf("join into a full room admitted: %+v", r)
			}
			return err
		}
	})
}

func benchPoll(b *testing.B, client *goredis.Client, st *redis.Store, room string, l admission.Limits, tickets []store.Ref) {
	ctx := context.Background()
	var next atomic.Int64
	run(b, client, func(*testing.PB) func() error {
		t := tickets[int(next.Add(1)-1)%len(tickets)]
		return func() error {
			r, err := st.Poll(ctx, room, t, l)
			if err == nil && (r.Admitted || r.Requeued || r.Ticket != t.Number) {
				err = fmt.Errorf("poll of %v: %+v", t, r)
			}
			return err
		}
	})
}

// run times op on parallelism() goroutines per GOMAXPROCS; newOp makes each goroutine's op.
// Besides ns/op it reports ops/s and the server's own time per script call (INFO
// commandstats: FCALL, EVALSHA and EVAL usec over calls), which tells Redis's share from the
// client's and the network's.
func run(b *testing.B, client *goredis.Client, newOp func(*testing.PB) func() error) {
	b.SetParallelism(parallelism())
	before := scriptTime(b, client)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		op := newOp(pb)
		for pb.Next() {
			if err := op(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "ops/s")
	}
	after := scriptTime(b, client)
	if calls := after.calls - before.calls; calls > 0 {
		b.ReportMetric(float64(after.usec-before.usec)/float64(calls), "redis-µs/op")
	}
}

// fullRoom gives the room's one seat to a first visitor and queues n more: it returns the
// session and the tickets. They join a liveness bucket before the server's now (through a
// store on a clock that far back), so that the first poll of each is in a later bucket and
// writes the joins' words: a poll then reads its word, as in a room that has run a while.
func fullRoom(tb testing.TB, client *goredis.Client, prefix, room string, l admission.Limits, n int) (store.Ref, []store.Ref) {
	now, err := client.Time(context.Background()).Result()
	if err != nil {
		tb.Fatal(err)
	}
	st, err := redis.New(client, redis.WithPrefix(prefix),
		redis.WithClock(func() time.Time { return now.Add(-admission.LiveBucket) }))
	if err != nil {
		tb.Fatal(err)
	}
	return seatAndQueue(tb, st, room, l, n)
}

// seatAndQueue is fullRoom on st's clock.
func seatAndQueue(tb testing.TB, st store.Store, room string, l admission.Limits, n int) (store.Ref, []store.Ref) {
	ctx := context.Background()
	r, err := st.Join(ctx, room, l)
	if err != nil || !r.Admitted {
		tb.Fatalf("first visitor: admitted %v, %v", r.Admitted, err)
	}
	seat := store.Ref{Number: r.Ticket, Epoch: r.Epoch}
	tickets := make([]store.Ref, n)
	for i := range tickets {
		r, err := st.Join(ctx, room, l)
		if err != nil || r.Admitted {
			tb.Fatalf("waiter %d: admitted %v, %v", i, r.Admitted, err)
		}
		tickets[i] = store.Ref{Number: r.Ticket, Epoch: r.Epoch}
	}
	return seat, tickets
}

// agedRoom is fullRoom as it is after a Hold of traffic: made one Hold ago by the server's
// clock, its waiters have polled and its seated visitor has renewed in every liveness bucket
// since. The store used here passes those instants (WithClock) and ends at the server's
// now, so stores on the server's TIME carry on from there.
func agedRoom(tb testing.TB, client *goredis.Client, prefix, room string, l admission.Limits, n int) []store.Ref {
	ctx := context.Background()
	end, err := client.Time(ctx).Result()
	if err != nil {
		tb.Fatal(err)
	}
	now := end.Add(-l.Hold)
	st, err := redis.New(client, redis.WithPrefix(prefix), redis.WithClock(func() time.Time { return now }))
	if err != nil {
		tb.Fatal(err)
	}
	seat, tickets := seatAndQueue(tb, st, room, l, n)
	for ; !now.After(end); now = now.Add(admission.LiveBucket) {
		if r, err := st.Renew(ctx, room, seat, l); err != nil || !r.Active {
			tb.Fatalf("renew at %v: active %v, %v", now, r.Active, err)
		}
		for _, t := range tickets {
			if r, err := st.Poll(ctx, room, t, l); err != nil || r.Admitted || r.Requeued {
				tb.Fatalf("poll at %v: %+v, %v", now, r, err)
			}
		}
	}
	return tickets
}

// parallelism is the b.SetParallelism factor: goroutines per GOMAXPROCS. One goroutine per
// core would measure round trips on a small machine, not the server; 8 keeps the server
// busy. Set WAITINGROOM_BENCH_PARALLELISM to change it.
func parallelism() int {
	if n, err := strconv.Atoi(os.Getenv("WAITINGROOM_BENCH_PARALLELISM")); err == nil && n > 0 {
		return n
	}
	return 8
}

// goroutines is the number of goroutines RunParallel starts in run.
func goroutines() int { return parallelism() * runtime.GOMAXPROCS(0) }

// benchClient is a client for the server at WAITINGROOM_REDIS_ADDR with a connection for
// every goroutine of RunParallel and as many spare.
func benchClient(b *testing.B) *goredis.Client { return newClient(b, 0, 2*goroutines(), "") }

// benchStore is a store with a prefix of its own, on the server's clock.
func benchStore(b *testing.B) (*goredis.Client, string, *redis.Store) {
	client, prefix := benchClient(b), newPrefix(b)
	b.Cleanup(func() { deleteKeys(b, client, prefix+":*") })
	return client, prefix, newStore(b, client, prefix)
}

// newStore is a store under prefix on the server's clock (TIME), as in production.
func newStore(tb testing.TB, client *goredis.Client, prefix string) *redis.Store {
	st, err := redis.New(client, redis.WithPrefix(prefix))
	if err != nil {
		tb.Fatal(err)
	}
	return st
}

// scriptCounters are the server's counters of library calls (FCALL, or EVALSHA and EVAL):
// calls and their usec. They are server-wide: other clients of the server during a run
// would count too.
type scriptCounters struct{ calls, usec int64 }

func scriptTime(tb testing.TB, client *goredis.Client) scriptCounters {
	sc, err := readScriptTime(client)
	if err != nil {
		tb.Fatal(err)
	}
	return sc
}

// readScriptTime is scriptTime for goroutines other than the test's: it returns its error.
func readScriptTime(client *goredis.Client) (scriptCounters, error) {
	info, err := client.Info(context.Background(), "commandstats").Result()
	if err != nil {
		return scriptCounters{}, err
	}
	var sc scriptCounters
	for name, c := range parseCommandStats(info) {
		if name == "evalsha" || name == "eval" || name == "fcall" {
			sc.calls += c.calls
			sc.usec += c.usec
		}
	}
	return sc, nil
}

type cmdStat struct{ calls, usec int64 }

// commandStats reads INFO commandstats.
func commandStats(tb testing.TB, client *goredis.Client) map[string]cmdStat {
	info, err := client.Info(context.Background(), "commandstats").Result()
	if err != nil {
		tb.Fatal(err)
	}
	return parseCommandStats(info)
}

// parseCommandStats parses INFO commandstats: cmdstat_<name>:calls=..,usec=..,...
func parseCommandStats(info string) map[string]cmdStat {
	stats := map[string]cmdStat{}
	for _, line := range strings.Split(info, "\n") {
		name, fields, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		var c cmdStat
		for _, f := range strings.Split(fields, ",") {
			k, v, _ := strings.Cut(f, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "calls":
				c.calls = n
			case "usec":
				c.usec = n
			}
		}
		stats[strings.TrimPrefix(name, "cmdstat_")] = c
	}
	return stats
}

// newClient connects to WAITINGROOM_REDIS_ADDR, database db, with pool connections named
// name (CLIENT SETNAME), or skips.
func newClient(tb testing.TB, db, pool int, name string) *goredis.Client {
	addr := os.Getenv("WAITINGROOM_REDIS_ADDR")
	if addr == "" {
		tb.Skip("set WAITINGROOM_REDIS_ADDR=127.0.0.1:6379 to run against a real Redis (keys use a prefix of their own)")
	}
	c := goredis.NewClient(&goredis.Options{
		Addr: addr, DB: db, PoolSize: pool, MinIdleConns: pool, ClientName: name, ContextTimeoutEnabled: true,
	})
	tb.Cleanup(func() { c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		tb.Fatalf("WAITINGROOM_REDIS_ADDR=%s: %v", addr, err)
	}
	return c
}

// newPrefix is a key prefix no one else uses.
func newPrefix(tb testing.TB) string {
	b := make([]byte, 6)
	rand.Read(b)
	return "wrbench-" + hex.EncodeToString(b)
}

// deleteKeys removes the keys matching pattern (always under the test's own prefix). SCAN
// is fine in a test; the store never scans.
func deleteKeys(tb testing.TB, client *goredis.Client, pattern string) {
	ctx := context.Background()
	iter := client.Scan(ctx, 0, pattern, 1000).Iterator()
	var batch []string
	flush := func() {
		if len(batch) > 0 {
			if err := client.Unlink(ctx, batch...).Err(); err != nil {
				tb.Errorf("deleting the test's keys: %v", err)
			}
			batch = batch[:0]
		}
	}
	for iter.Next(ctx) {
		if batch = append(batch, iter.Val()); len(batch) == 1000 {
			flush()
		}
	}
	flush()
	if err := iter.Err(); err != nil {
		tb.Errorf("deleting the test's keys: %v", err)
	}
}
