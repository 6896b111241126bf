package redis_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/memory"
	"github.com/waitingroom-go/waitingroom/store/redis"
	"github.com/waitingroom-go/waitingroom/store/storetest"
)

// TestDifferentialAbandoned holds the Lua script to the engine where admission passes
// whole blocks of abandoned places (admission.Block, Queue.Top): crowds that join and
// never come back, a few who stay and poll, sessions that end, under FIFO, Random and a
// shuffled pre-queue. Every answer must be the same, field for field.
func TestDifferentialAbandoned(t *testing.T) {
	cases := []struct {
		name  string
		setup func(l *admission.Limits, now time.Time)
	}{
		{"fifo", func(*admission.Limits, time.Time) {}},
		{"random", func(l *admission.Limits, _ time.Time) { l.Method = admission.Random }},
		{"shuffled_prequeue", func(l *admission.Limits, now time.Time) {
			at := now.Add(4 * time.Minute)
			l.Events = []admission.Event{{
				Prequeue: now.UnixMilli(), Start: at.UnixMilli(), End: at.Add(time.Hour).UnixMilli(),
				Shuffle: true, Seed: 12345, Capacity: 2, PerMinute: 1000, Session: time.Minute,
			}}
		}},
	}
	for _, c := range cases {
		t.Run(c.name+"/miniredis", func(t *testing.T) { abandonedDiff(t, c.setup, miniTarget(t)) })
		if os.Getenv("WAITINGROOM_REDIS_ADDR") != "" {
			client := realClient(t)
			t.Run(c.name+"/redis", func(t *testing.T) { abandonedDiff(t, c.setup, realTarget(t, client)) })
		}
	}
}

func abandonedDiff(t *testing.T, setup func(*admission.Limits, time.Time), newTarget func(*storetest.Clock) target) {
	seed := rand.Uint64()
	if s := os.Getenv("DIFF_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	rng := rand.New(rand.NewPCG(seed, 3))
	clock := storetest.NewClock(start)
	mem := memory.New(memory.WithClock(clock.Now))
	tg := newTarget(clock)
	ctx := context.Background()
	room := fmt.Sprintf("abandoned-%d", seed%1e6)
	l := admission.Limits{
		Capacity: 2, PerMinute: 1000, Session: time.Minute, Renewal: true,
		Hold: time.Minute, Grace: 20 * time.Second, Refresh: 10 * time.Second,
	}
	setup(&l, clock.Now())
	var stayers, in []store.Ref
	step := 0
	var history []string
	same := func(what string, a, b any, err error) {
		t.Helper()
		step++
		history = append(history, fmt.Sprintf("%d %s: %s", step, what, show(a)))
		if os.Getenv("DIFF_HISTORY") != "" && (err != nil || show(a) != show(b)) {
			for _, h := range history {
				if strings.Contains(h, os.Getenv("DIFF_HISTORY")) {
					t.Log(h)
				}
			}
		}
		if err != nil {
			t.Fatalf("seed %d, step %d, %s: redis: %v", seed, step, what, err)
		}
		if show(a) != show(b) {
			if tg.client != nil {
				t.Log(dumpRoom(tg.client, "wr", room))
			}
			t.Fatalf("seed %d, step %d, %s differs:\n memory: %s\n redis:  %s", seed, step, what, show(a), show(b))
		}
	}
	answer := func(res store.Result) {
		ref := store.Ref{Number: res.Ticket, Epoch: res.Epoch}
		if res.Admitted {
			in = append(in, ref)
		} else {
			stayers = append(stayers, ref)
		}
	}
	for round := range 4 {
		crowd := 50 + rng.IntN(3*admission.Block)
		for range crowd {
			a, _ := mem.Join(ctx, room, l)
			b, err := tg.store.Join(ctx, room, l)
			same(fmt.Sprintf("round %d: a join of the crowd", round), a, b, err)
			if rng.IntN(300) == 0 {
				answer(a) // a few stay
			}
		}
		for range 4 + rng.IntN(12) {
			clock.Advance(time.Duration(5+rng.IntN(10)) * time.Second)
			if tg.setNow != nil {
				tg.setNow(clock.Now())
			}
			if len(in) > 0 && rng.IntN(3) == 0 {
				i := rng.IntN(len(in))
				mem.Release(ctx, room, in[i])
				err := tg.store.Release(ctx, room, in[i])
				same("a release", nil, nil, err)
				in = append(in[:i], in[i+1:]...)
			}
			polled := stayers
			stayers = nil
			for _, ref := range polled {
				a, _ := mem.Poll(ctx, room, ref, l)
				b, err := tg.store.Poll(ctx, room, ref, l)
				same(fmt.Sprintf("round %d: a poll of %+v", round, ref), a, b, err)
				if !a.Requeued || rng.IntN(2) == 0 {
					answer(a)
				}
			}
			a, _ := mem.Stats(ctx, room, l)
			b, err := tg.store.Stats(ctx, room, l)
			same(fmt.Sprintf("round %d: stats", round), a, b, err)
		}
	}
}

// BenchmarkAbandonedRunRedis measures, on a real Redis, the server time of the one join
// that passes a run of n abandoned places (the room is full: it waits behind them), and of
// its poll once a slot frees, which admits it: the operations a run costs most. The time
// is the server's (INFO commandstats), so nothing else should use that Redis meanwhile. Its setup is a million joins at
// most: go test -run X -bench AbandonedRunRedis -benchtime 1x ./store/redis/
func BenchmarkAbandonedRunRedis(b *testing.B) {
	client := realClient(b)
	for _, n := range []int{0, 20_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ctx := context.Background()
			l := admission.Limits{
				Capacity: 1, PerMinute: 1000, Session: time.Hour, Renewal: true,
				Hold: time.Minute, Grace: 20 * time.Second, Refresh: 10 * time.Second,
			}
			var join, poll int64
			for range b.N {
				b.StopTimer()
				clock := storetest.NewClock(time.Now())
				prefix := "wrbench-" + randomHex(6)
				rs, err := redis.New(client, redis.WithPrefix(prefix), redis.WithClock(clock.Now))
				if err != nil {
					b.Fatal(err)
				}
				in, err := rs.Join(ctx, "r", l)
				if err != nil {
					b.Fatal(err)
				}
				joinMany(b, rs, l, n)
				clock.Advance(l.Hold + 2*admission.LiveBucket)
				b.StartTimer()
				u0 := fcallMicros(b, client)
				w, err := rs.Join(ctx, "r", l) // passes the run, and waits: the room is full
				join += fcallMicros(b, client) - u0
				b.StopTimer()
				if err != nil || w.Admitted {
					b.Fatalf("join: %v, admitted %v", err, w.Admitted)
				}
				rs.Release(ctx, "r", store.Ref{Number: in.Ticket, Epoch: in.Epoch})
				clock.Advance(time.Second)
				b.StartTimer()
				u0 = fcallMicros(b, client)
				p, err := rs.Poll(ctx, "r", store.Ref{Number: w.Ticket, Epoch: w.Epoch}, l)
				poll += fcallMicros(b, client) - u0
				b.StopTimer()
				if err != nil || !p.Admitted {
					b.Fatalf("poll: %v, admitted %v", err, p.Admitted)
				}
				deletePrefix(b, client, prefix)
			}
			b.ReportMetric(float64(join)/float64(b.N), "join-server-µs")
			b.ReportMetric(float64(poll)/float64(b.N), "poll-server-µs")
		})
	}
}

// joinMany joins n visitors to room "r" from 16 connections at once.
func joinMany(tb testing.TB, rs *redis.Store, l admission.Limits, n int) {
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 16 {
				if _, err := rs.Join(context.Background(), "r", l); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
}

// fcallMicros returns the server time Redis has spent in FCALL and EVALSHA so far.
func fcallMicros(tb testing.TB, client *goredis.Client) int64 {
	info, err := client.Info(context.Background(), "commandstats").Result()
	if err != nil {
		tb.Fatal(err)
	}
	var total int64
	for _, line := range strings.Split(info, "\n") {
		if !strings.HasPrefix(line, "cmdstat_fcall:") && !strings.HasPrefix(line, "cmdstat_evalsha:") {
			continue
		}
		for _, f := range strings.Split(strings.TrimSpace(line[strings.IndexByte(line, ':')+1:]), ",") {
			if v, ok := strings.CutPrefix(f, "usec="); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				total += n
			}
		}
	}
	return total
}
