package wrprom_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/admission"
	wrprom "github.com/waitingroom-go/waitingroom/metrics/prometheus"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/memory"
	"github.com/waitingroom-go/waitingroom/store/storetest"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// flaky is a memory store whose Stats fail while fail is set, or wait for the caller to
// give up while hang is, and whose history reads fail while failHistory is.
type flaky struct {
	*memory.Store
	fail, hang, failHistory atomic.Bool
}

func (f *flaky) Minutes(ctx context.Context, id string, from, to time.Time) ([]store.Minute, error) {
	if f.failHistory.Load() {
		return nil, errors.New("history: connection reset")
	}
	return f.Store.Minutes(ctx, id, from, to)
}

func (f *flaky) Stats(ctx context.Context, id string, l admission.Limits) (store.Stats, error) {
	if f.hang.Load() {
		<-ctx.Done()
		return store.Stats{}, ctx.Err()
	}
	if f.fail.Load() {
		return store.Stats{}, errors.New("connection refused")
	}
	return f.Store.Stats(ctx, id, l)
}

// traffic makes a room of capacity and rate 2 on st at clock's time: four joins (two
// admitted, two waiting), a release, and a waiter's poll 15 s later.
func traffic(t *testing.T, id string, st store.Store, clock *storetest.Clock, opts ...waitingroom.Option) *waitingroom.Room {
	t.Helper()
	rm, err := waitingroom.New(id, st, waitingroom.Config{TotalActiveUsers: 2, NewUsersPerMinute: 2, RefreshInterval: 10 * time.Second},
		append([]waitingroom.Option{waitingroom.WithClock(clock.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var vs []waitingroom.Visit
	for range 4 {
		v, err := rm.Enter(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	if vs[0].Outcome != waitingroom.Admitted || vs[3].Outcome != waitingroom.Waiting {
		t.Fatalf("joins: %v, %v", vs[0].Outcome, vs[3].Outcome)
	}
	if err := rm.Release(ctx, vs[0].Pass); err != nil {
		t.Fatal(err)
	}
	clock.Advance(15 * time.Second)
	if _, err := rm.Enter(ctx, vs[3].Token); err != nil {
		t.Fatal(err)
	}
	return rm
}

// gather scrapes c through a pedantic registry (which checks every metric against its
// description) into values by series: `name{label="value",...}`, histograms as their
// _bucket, _sum and _count series.
func gather(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			key := func(suffix string, extra ...string) string {
				return mf.GetName() + suffix + "{" + strings.Join(append(slices.Clone(ls), extra...), ",") + "}"
			}
			switch mf.GetType() {
			case dto.MetricType_GAUGE:
				out[key("")] = m.GetGauge().GetValue()
			case dto.MetricType_COUNTER:
				out[key("")] = m.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					out[key("_bucket", fmt.Sprintf("le=%q", fmt.Sprint(b.GetUpperBound())))] = float64(b.GetCumulativeCount())
				}
				out[key("_sum")] = h.GetSampleSum()
				out[key("_count")] = float64(h.GetSampleCount())
			default:
				t.Fatalf("%s: unexpected type %v", mf.GetName(), mf.GetType())
			}
		}
	}
	return out
}

// ofRoom is the series of room id in got.
func ofRoom(got map[string]float64, id string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range got {
		if strings.Contains(k, fmt.Sprintf("room=%q", id)) {
			out[k] = v
		}
	}
	return out
}

func fixed(rs ...*waitingroom.Room) func() []*waitingroom.Room {
	return func() []*waitingroom.Room { return rs }
}

func TestLint(t *testing.T) {
	clock := storetest.NewClock(t0)
	mem := memory.New(memory.WithClock(clock.Now))
	busy := traffic(t, "busy", mem, clock, waitingroom.WithFallback(waitingroom.Fallback{Logger: quiet}))
	down := &flaky{Store: mem}
	down.fail.Store(true)
	broken, err := waitingroom.New("broken", down, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1})
	if err != nil {
		t.Fatal(err)
	}
	c, err := wrprom.New(fixed(busy, broken), wrprom.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	// Every metric: the busy room's store gauges, histograms and fallback, the broken
	// room's scrape errors.
	if n := testutil.CollectAndCount(c); n < 30 {
		t.Fatalf("%d series; want every kind", n)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

var quiet = slog.New(slog.DiscardHandler)

// Every value is the room's own, as Snapshot, Settings, Counters and Fallback read them.
func TestValuesMatchTheRoom(t *testing.T) {
	clock := storetest.NewClock(t0)
	mem := memory.New(memory.WithClock(clock.Now))
	queued := traffic(t, "queued", mem, clock)
	open, err := waitingroom.New("open", mem, waitingroom.Config{TotalActiveUsers: 5, NewUsersPerMinute: 5},
		waitingroom.WithClock(clock.Now), waitingroom.WithFallback(waitingroom.Fallback{Logger: quiet}))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := open.Enter(context.Background(), ""); err != nil || v.Outcome != waitingroom.Admitted {
		t.Fatal(v.Outcome, err)
	}
	c, err := wrprom.New(fixed(queued, open))
	if err != nil {
		t.Fatal(err)
	}
	got := gather(t, c)

	for _, rm := range []*waitingroom.Room{queued, open} {
		t.Run(rm.ID(), func(t *testing.T) {
			n := rm.Counters() // before Snapshot's own store call
			s, err := rm.Snapshot(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			cfg, _ := rm.Settings()
			l := fmt.Sprintf("{room=%q}", rm.ID())
			want := map[string]float64{
				"waitingroom_active_sessions" + l:        float64(s.Active),
				"waitingroom_waiting" + l:                float64(s.Waiting),
				"waitingroom_admissions_last_minute" + l: float64(s.Window),
				"waitingroom_longest_wait_seconds" + l:   s.LongestWait.Seconds(),
				"waitingroom_capacity" + l:               float64(cfg.TotalActiveUsers),
				"waitingroom_rate_per_minute" + l:        float64(cfg.NewUsersPerMinute),
				"waitingroom_queue_all" + l:              0,
				"waitingroom_suspended" + l:              0,
				"waitingroom_joins_total" + l:            float64(n.Joins),
				"waitingroom_admissions_total" + l:       float64(n.Admissions),
				"waitingroom_requeues_total" + l:         float64(n.Requeues),
				"waitingroom_abandonments_total" + l:     0, // the first scrape starts it
				"waitingroom_scrape_errors_total" + l:    0,
			}
			if s.Wait.Known {
				want["waitingroom_estimated_wait_seconds"+l] = s.Wait.P50.Seconds()
			}
			for op := range waitingroom.NumStoreOps {
				k := n.Calls[op]
				if k.Count == 0 {
					continue
				}
				ls := fmt.Sprintf("op=%q,room=%q", op, rm.ID())
				var cum int64
				for i, b := range waitingroom.CallBounds {
					cum += k.Buckets[i]
					want[fmt.Sprintf("waitingroom_store_operation_duration_seconds_bucket{%s,le=%q}", ls, fmt.Sprint(b.Seconds()))] = float64(cum)
				}
				want[fmt.Sprintf("waitingroom_store_operation_duration_seconds_sum{%s}", ls)] = k.Total.Seconds()
				want[fmt.Sprintf("waitingroom_store_operation_duration_seconds_count{%s}", ls)] = float64(k.Count)
				want[fmt.Sprintf("waitingroom_store_errors_total{%s}", ls)] = float64(k.Errors)
			}
			if f := rm.Fallback(); f.Instances > 0 {
				want["waitingroom_fallback_local"+l] = 0
				want["waitingroom_fallback_switches_total"+l] = float64(f.Switches)
				want["waitingroom_fallback_admissions_total"+l] = float64(f.Admitted)
				want["waitingroom_fallback_instances"+l] = float64(f.Instances)
			}
			have := ofRoom(got, rm.ID())
			if !maps.Equal(have, want) {
				for _, k := range slices.Sorted(maps.Keys(want)) {
					if v, ok := have[k]; !ok || v != want[k] {
						t.Errorf("%s = %v (present %v), want %v", k, v, ok, want[k])
					}
				}
				for _, k := range slices.Sorted(maps.Keys(have)) {
					if _, ok := want[k]; !ok {
						t.Errorf("unexpected %s = %v", k, have[k])
					}
				}
			}
		})
	}
	// The traffic shows in the figures compared above, not only zeros.
	q := ofRoom(got, "queued")
	if q[`waitingroom_waiting{room="queued"}`] != 2 || q[`waitingroom_longest_wait_seconds{room="queued"}`] != 15 ||
		q[`waitingroom_joins_total{room="queued"}`] != 4 || q[`waitingroom_store_operation_duration_seconds_count{op="join",room="queued"}`] != 4 {
		t.Errorf("queued room: %v", q)
	}
	if v, ok := got[`waitingroom_estimated_wait_seconds{room="open"}`]; !ok || v != 0 {
		t.Errorf("open room's estimated wait: %v, %v; want 0 (straight in)", v, ok)
	}
}

// The counter adds each settled minute of the store's history once, whoever recorded it.
func TestAbandonmentsAccumulate(t *testing.T) {
	clock := storetest.NewClock(t0)
	mem := memory.New(memory.WithClock(clock.Now))
	rm, err := waitingroom.New("room", mem, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1}, waitingroom.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	c, err := wrprom.New(fixed(rm))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const key = `waitingroom_abandonments_total{room="room"}`
	scrape := func() float64 {
		t.Helper()
		v, ok := gather(t, c)[key]
		if !ok {
			t.Fatalf("no %s", key)
		}
		return v
	}
	record := func(m store.Minute) {
		t.Helper()
		m.WaitingAt = m.Start.Add(59 * time.Second)
		if err := mem.Record(ctx, "room", m); err != nil {
			t.Fatal(err)
		}
	}
	// A minute before the collector's first scrape is none of its business.
	record(store.Minute{Start: t0.Add(-3 * time.Minute), Joins: 50})
	if v := scrape(); v != 0 {
		t.Fatalf("first scrape: %v", v)
	}
	// 9:00: 5 joined, 1 admitted, the queue grew by 2: 2 gave up. 9:01: 3 joined, the queue
	// stayed at 2: 3 gave up. Two instances record their shares of 9:01.
	record(store.Minute{Start: t0, Joins: 5, Admissions: 1, Waiting: 2})
	record(store.Minute{Start: t0.Add(time.Minute), Joins: 2, Waiting: 2})
	record(store.Minute{Start: t0.Add(time.Minute), Joins: 1, Waiting: 2})

	steps := []struct {
		at   time.Duration // since 9:00
		want float64
	}{
		{90 * time.Second, 0},  // 9:00 is over, not settled
		{119 * time.Second, 0}, //
		{2 * time.Minute, 2},   // 9:00 settled
		{150 * time.Second, 2}, // again: not twice
		{3 * time.Minute, 5},   // 9:01 settled
		{10 * time.Minute, 5},  // minutes without a record add nothing
	}
	for _, s := range steps {
		clock.Set(t0.Add(s.at))
		if v := scrape(); v != s.want {
			t.Fatalf("at 9:00 + %v: %v, want %v", s.at, v, s.want)
		}
	}
	// The same as the history says of those minutes.
	hs, err := rm.History(ctx, 15)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, h := range hs {
		if !h.Start.Before(t0) {
			sum += h.Abandonments
		}
	}
	if sum != 5 {
		t.Fatalf("history's abandonments: %d (%+v), want 5", sum, hs)
	}
	// A scrape after a gap catches up on the minutes it missed.
	record(store.Minute{Start: t0.Add(30 * time.Minute), Joins: 7})
	clock.Set(t0.Add(45 * time.Minute))
	if v := scrape(); v != 12 {
		t.Fatalf("after a gap: %v, want 12", v)
	}
}

// A room the source stops listing leaves the output, and the collector forgets it.
func TestRoomRemoved(t *testing.T) {
	clock := storetest.NewClock(t0)
	mem := memory.New(memory.WithClock(clock.Now))
	a := traffic(t, "a", mem, clock)
	b := traffic(t, "b", mem, clock)
	var mu sync.Mutex
	listed := []*waitingroom.Room{a, b}
	c, err := wrprom.New(func() []*waitingroom.Room {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(listed)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := gather(t, c); len(ofRoom(got, "a")) == 0 || len(ofRoom(got, "b")) == 0 || wrprom.Tracked(c) != 2 {
		t.Fatalf("both rooms listed: %d series of a, %d of b, %d tracked", len(ofRoom(got, "a")), len(ofRoom(got, "b")), wrprom.Tracked(c))
	}
	mu.Lock()
	listed = listed[:1]
	mu.Unlock()
	got := gather(t, c)
	if n := len(ofRoom(got, "b")); n != 0 || len(ofRoom(got, "a")) == 0 || wrprom.Tracked(c) != 1 {
		t.Fatalf("b removed: %d series of b, %d tracked; want none, 1", n, wrprom.Tracked(c))
	}
}

// A room whose store fails leaves out its store gauges, counts an error and is logged
// once per scrape; the other rooms are unaffected.
func TestStoreFails(t *testing.T) {
	clock := storetest.NewClock(t0)
	mem := memory.New(memory.WithClock(clock.Now))
	down := &flaky{Store: mem}
	bad, err := waitingroom.New("bad", down, waitingroom.Config{TotalActiveUsers: 3, NewUsersPerMinute: 3}, waitingroom.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	good := traffic(t, "good", mem, clock)
	var log bytes.Buffer
	c, err := wrprom.New(fixed(bad, good), wrprom.WithLogger(slog.New(slog.NewTextHandler(&log, nil))))
	if err != nil {
		t.Fatal(err)
	}
	gather(t, c)
	down.fail.Store(true)
	for i := 1; i <= 2; i++ {
		log.Reset()
		got := gather(t, c)
		if _, ok := got[`waitingroom_active_sessions{room="bad"}`]; ok {
			t.Errorf("scrape %d: the failing room's store gauges are in the output", i)
		}
		if v := got[`waitingroom_scrape_errors_total{room="bad"}`]; v != float64(i) {
			t.Errorf("scrape %d: scrape errors %v, want %d", i, v, i)
		}
		if got[`waitingroom_capacity{room="bad"}`] != 3 || got[`waitingroom_waiting{room="good"}`] != 2 || got[`waitingroom_scrape_errors_total{room="good"}`] != 0 {
			t.Errorf("scrape %d: the rest: %v", i, got)
		}
		if n := strings.Count(log.String(), "\n"); n != 1 || !strings.Contains(log.String(), "room=bad") || !strings.Contains(log.String(), "connection refused") {
			t.Errorf("scrape %d logged %q; want one line naming the room and the error", i, log.String())
		}
	}
	down.fail.Store(false)
	log.Reset()
	if got := gather(t, c); got[`waitingroom_active_sessions{room="bad"}`] != 0 || got[`waitingroom_scrape_errors_total{room="bad"}`] != 2 || log.Len() != 0 {
		t.Errorf("store back: %v, logged %q", ofRoom(got, "bad"), log.String())
	}
}

// A failed history read counts an error and is read again at the next scrape.
func TestHistoryFails(t *testing.T) {
	clock := storetest.NewClock(t0)
	mem := memory.New(memory.WithClock(clock.Now))
	st := &flaky{Store: mem}
	rm, err := waitingroom.New("room", st, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1}, waitingroom.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	c, err := wrprom.New(fixed(rm), wrprom.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	gather(t, c)
	if err := mem.Record(context.Background(), "room", store.Minute{Start: t0, Joins: 4, WaitingAt: t0}); err != nil {
		t.Fatal(err)
	}
	clock.Set(t0.Add(2 * time.Minute))
	st.failHistory.Store(true)
	got := gather(t, c)
	if got[`waitingroom_scrape_errors_total{room="room"}`] != 1 || got[`waitingroom_abandonments_total{room="room"}`] != 0 {
		t.Errorf("history failing: %v", got)
	}
	if _, ok := got[`waitingroom_waiting{room="room"}`]; !ok {
		t.Errorf("history failing: the snapshot's gauges are missing")
	}
	st.failHistory.Store(false)
	if got := gather(t, c); got[`waitingroom_abandonments_total{room="room"}`] != 4 || got[`waitingroom_scrape_errors_total{room="room"}`] != 1 {
		t.Errorf("history back: %v", got)
	}
}

// The timeout bounds a scrape's store reads, all rooms together.
func TestTimeout(t *testing.T) {
	clock := storetest.NewClock(t0)
	hang := &flaky{Store: memory.New(memory.WithClock(clock.Now))}
	hang.hang.Store(true)
	var rs []*waitingroom.Room
	for _, id := range []string{"a", "b", "c"} {
		rm, err := waitingroom.New(id, hang, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1}, waitingroom.WithClock(clock.Now))
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, rm)
	}
	var log bytes.Buffer
	c, err := wrprom.New(fixed(rs...), wrprom.WithConcurrency(1), wrprom.WithTimeout(time.Millisecond),
		wrprom.WithLogger(slog.New(slog.NewTextHandler(&log, nil))))
	if err != nil {
		t.Fatal(err)
	}
	got := gather(t, c)
	for _, id := range []string{"a", "b", "c"} {
		if v := got[fmt.Sprintf("waitingroom_scrape_errors_total{room=%q}", id)]; v != 1 {
			t.Errorf("room %s: %v scrape errors, want 1", id, v)
		}
	}
	if !strings.Contains(log.String(), "failed=3") {
		t.Errorf("logged %q", log.String())
	}
}

// Scrapes while visitors come and go: the race detector's business.
func TestScrapeDuringTraffic(t *testing.T) {
	mem := memory.New()
	rm, err := waitingroom.New("room", mem, waitingroom.Config{TotalActiveUsers: 5, NewUsersPerMinute: 5})
	if err != nil {
		t.Fatal(err)
	}
	c, err := wrprom.New(fixed(rm, rm)) // listed twice: counted once
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 20 {
			gather(t, c)
		}
	})
	for range 200 {
		if _, err := rm.Enter(context.Background(), ""); err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
	if v := gather(t, c)[`waitingroom_joins_total{room="room"}`]; v != 200 {
		t.Fatalf("joins: %v", v)
	}
}

func TestOptions(t *testing.T) {
	rs := fixed()
	for _, tc := range []struct {
		name  string
		rooms func() []*waitingroom.Room
		opt   wrprom.Option
	}{
		{"nil rooms", nil, wrprom.WithTimeout(time.Second)},
		{"zero timeout", rs, wrprom.WithTimeout(0)},
		{"zero concurrency", rs, wrprom.WithConcurrency(0)},
		{"nil logger", rs, wrprom.WithLogger(nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := wrprom.New(tc.rooms, tc.opt); err == nil || c != nil {
				t.Fatalf("New: %v, %v; want an error", c, err)
			}
		})
	}
	if _, err := wrprom.New(rs, wrprom.WithTimeout(time.Second), wrprom.WithConcurrency(1), wrprom.WithLogger(quiet)); err != nil {
		t.Fatal(err)
	}
}

// WithStoreCallsByRoom(false) sums the rooms' store calls into one histogram and one error
// counter a kind, with no room label; the rest is per room as before, and it lints.
func TestStoreCallsSummed(t *testing.T) {
	clock := storetest.NewClock(t0)
	mem := memory.New(memory.WithClock(clock.Now))
	a, b := traffic(t, "a", mem, clock), traffic(t, "b", mem, clock)
	c, err := wrprom.New(fixed(a, b), wrprom.WithLogger(quiet), wrprom.WithStoreCallsByRoom(false))
	if err != nil {
		t.Fatal(err)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	ca, cb := a.Counters(), b.Counters()
	for _, mf := range mfs {
		switch mf.GetName() {
		case "waitingroom_store_operation_duration_seconds":
			for _, m := range mf.GetMetric() {
				if len(m.GetLabel()) != 1 || m.GetLabel()[0].GetName() != "op" {
					t.Fatalf("a summed histogram with labels %v", m.GetLabel())
				}
				if m.GetLabel()[0].GetValue() == "join" {
					// The scrape itself makes stats and history calls; joins are traffic's alone.
					if want := uint64(ca.Calls[waitingroom.OpJoin].Count + cb.Calls[waitingroom.OpJoin].Count); m.GetHistogram().GetSampleCount() != want || want == 0 {
						t.Errorf("joins summed: %d, want %d", m.GetHistogram().GetSampleCount(), want)
					}
				}
			}
		case "waitingroom_waiting":
			if len(mf.GetMetric()) != 2 {
				t.Errorf("waiting: %d series, want one per room", len(mf.GetMetric()))
			}
		}
	}
}
