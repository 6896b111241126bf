package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
)

// BenchmarkInterleaved runs redis_rate's Allow, Poll and Join by turns, a slice of time
// each, on the same goroutines, and reports each one's operations per second and Poll's
// and Join's as a share of Allow's, and the server's own time per call of each (INFO
// commandstats read at every turn: the calls in flight at a turn, a few in thousands, count
// to the next). The separate benchmarks run one after another, and this machine's speed
// drifts within minutes (see README.md): taking turns every sliceTime puts the same drift on
// all three. b.N counts the operations of all three. It runs in a FIFO room, a Random one,
// and one with an event running.
func BenchmarkInterleaved(b *testing.B) {
	client := benchClient(b)
	now, err := client.Time(context.Background()).Result()
	if err != nil {
		b.Fatal(err)
	}
	random := limits
	random.Method = admission.Random
	// An event running for the whole run, after one that has ended: the schedule is read
	// on every call, the event's limits replace the room's.
	event := limits
	event.Events = []admission.Event{
		{Prequeue: now.Add(-3 * time.Hour).UnixMilli(), Start: now.Add(-3 * time.Hour).UnixMilli(), End: now.Add(-2 * time.Hour).UnixMilli(),
			Capacity: 1, PerMinute: 1, Session: time.Hour, Renewal: true, Method: admission.FIFO},
		{Prequeue: now.Add(-time.Hour).UnixMilli(), Start: now.Add(-time.Hour).UnixMilli(), End: now.Add(2 * time.Hour).UnixMilli(),
			Capacity: 1, PerMinute: 1, Session: time.Hour, Renewal: true, Method: admission.FIFO},
	}
	for _, c := range []struct {
		name string
		l    admission.Limits
	}{{"fifo", limits}, {"random", random}, {"event", event}} {
		b.Run(c.name, func(b *testing.B) { interleaved(b, c.l) })
	}
}

func interleaved(b *testing.B, limits admission.Limits) {
	const sliceTime = 200 * time.Millisecond
	client, prefix, st := benchStore(b)
	b.Cleanup(func() { deleteKeys(b, client, "rate:"+prefix+":*") })
	limiter := redis_rate.NewLimiter(client)
	_, tickets := fullRoom(b, client, prefix, "poll", limits, goroutines())
	fullRoom(b, client, prefix, "join", limits, 0)
	ctx := context.Background()

	const allow, poll, join = 0, 1, 2
	names := [...]string{"allow", "poll", "join"}
	var phase atomic.Int32
	var ops [3]atomic.Int64
	var spent [3]time.Duration
	var server [3]scriptCounters // the server's script calls and usec in each one's turns
	var serverErr error
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		last := time.Now()
		lastServer, err := readScriptTime(client)
		tick := time.NewTicker(sliceTime)
		defer tick.Stop()
		turn := func(p int32) {
			sc, e := readScriptTime(client)
			if e != nil {
				err = e
			}
			server[p].calls += sc.calls - lastServer.calls
			server[p].usec += sc.usec - lastServer.usec
			lastServer = sc
		}
		for {
			select {
			case <-stop:
				p := phase.Load()
				spent[p] += time.Since(last)
				turn(p)
				serverErr = err
				return
			case now := <-tick.C:
				p := phase.Load()
				spent[p] += now.Sub(last)
				last = now
				phase.Store((p + 1) % 3)
				turn(p)
			}
		}
	}()

	var next atomic.Int64
	b.SetParallelism(parallelism())
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		t := tickets[int(next.Add(1)-1)%len(tickets)]
		for pb.Next() {
			p := phase.Load()
			var err error
			switch p {
			case allow:
				var res *redis_rate.Result
				if res, err = limiter.Allow(ctx, prefix+":allow", redis_rate.PerSecond(1e9)); err == nil && res.Allowed != 1 {
					err = fmt.Errorf("redis_rate refused")
				}
			case poll:
				var r store.Result
				if r, err = st.Poll(ctx, "poll", t, limits); err == nil && (r.Admitted || r.Requeued) {
					err = fmt.Errorf("poll of %v: %+v", t, r)
				}
			case join:
				var r store.Result
				if r, err = st.Join(ctx, "join", limits); err == nil && r.Admitted {
					err = fmt.Errorf("join into a full room admitted: %+v", r)
				}
			}
			if err != nil {
				b.Error(err)
				return
			}
			ops[p].Add(1)
		}
	})
	b.StopTimer()
	close(stop)
	<-done
	var rate [3]float64
	for p := range rate {
		if spent[p] > 0 {
			rate[p] = float64(ops[p].Load()) / spent[p].Seconds()
			b.ReportMetric(rate[p], names[p]+"-ops/s")
		}
	}
	if rate[allow] > 0 {
		b.ReportMetric(100*rate[poll]/rate[allow], "poll-%-of-allow")
		b.ReportMetric(100*rate[join]/rate[allow], "join-%-of-allow")
	}
	if serverErr != nil {
		b.Fatalf("INFO commandstats: %v", serverErr)
	}
	var usec [3]float64
	for p := range usec {
		if server[p].calls > 0 {
			usec[p] = float64(server[p].usec) / float64(server[p].calls)
			b.ReportMetric(usec[p], names[p]+"-redis-µs")
		}
	}
	if usec[allow] > 0 {
		// The yardstick: 8 µs of server time where redis_rate takes 3.2 µs.
		b.ReportMetric(usec[poll]/usec[allow], "poll-redis-x-allow")
		b.ReportMetric(usec[join]/usec[allow], "join-redis-x-allow")
	}
}
