package bench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/redis"
)

// memoryDB is the database the memory tests write to, so that a SCAN of their prefix walks
// their keys only. INFO memory is server-wide all the same: run them on an idle server.
const memoryDB = 9

const (
	waiters      = 1_000_000
	waitersLimit = 16_000_000 // bytes for all of them (16 MB)
	idleRooms    = 10_000
	idleLimit    = 2048 // bytes per idle room (2 KB)
	workers      = 32
)

// TestMemoryWaiters queues a million visitors in one full room and measures what the server
// keeps for them.
func TestMemoryWaiters(t *testing.T) {
	m := startMeasurement(t)
	st, ctx := m.store, context.Background()
	const room = "crowd"
	first, err := st.Join(ctx, room, limits)
	if err != nil || !first.Admitted {
		t.Fatalf("first visitor: admitted %v, %v", first.Admitted, err)
	}

	start := time.Now()
	var done, last atomic.Int64
	parallel(t, waiters, func(int) error {
		r, err := st.Join(ctx, room, limits)
		if err == nil && r.Admitted {
			err = fmt.Errorf("join into a full room admitted: %+v", r)
		}
		if err == nil {
			last.Store(r.Ticket)
			done.Add(1)
		}
		return err
	})
	took := time.Since(start)
	// The joins of the last bucket are written together once a word changes: the poll of one
	// of them in the next bucket (a store on a clock a bucket ahead of the server's) makes
	// the server hold every waiter's word, as it would a moment later anyway.
	serverNow, err := m.probe.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	ahead, err := redis.New(m.probe, redis.WithPrefix(m.prefix),
		redis.WithClock(func() time.Time { return serverNow.Add(admission.LiveBucket) }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ahead.Poll(ctx, room, store.Ref{Number: last.Load(), Epoch: first.Epoch}, limits); err != nil {
		t.Fatal(err)
	}
	used := m.stop()
	if t.Failed() {
		return
	}

	stats, err := newStore(t, m.probe, m.prefix).Stats(ctx, room, limits)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Waiting != waiters {
		t.Errorf("Stats.Waiting = %d, want %d", stats.Waiting, waiters)
	}
	keys := roomKeys(t, m.probe, m.prefix, room)
	t.Logf("%d joins by %d goroutines in %v (%.0f joins/s)", done.Load(), workers, took.Round(time.Millisecond),
		float64(done.Load())/took.Seconds())
	t.Logf("used_memory: +%d bytes (%.2f MB) = %.2f bytes per waiter", used, float64(used)/1e6, float64(used)/waiters)
	t.Logf("room keys: %d, MEMORY USAGE sum %d bytes (%.2f per waiter)", len(keys), keys.bytes(), float64(keys.bytes())/waiters)
	t.Logf("largest keys: %s", keys.largest(5))
	if used > waitersLimit {
		t.Errorf("%d waiters take %d bytes, more than the target %d", waiters, used, waitersLimit)
	}
}

// TestMemoryIdleRooms leaves ten thousand rooms idle (one visitor came, was admitted and
// left) and measures what the server keeps for each.
func TestMemoryIdleRooms(t *testing.T) {
	m := startMeasurement(t)
	st, ctx := m.store, context.Background()
	name := func(i int) string { return fmt.Sprintf("idle-%05d", i) }

	parallel(t, idleRooms, func(i int) error {
		r, err := st.Join(ctx, name(i), limits)
		if err != nil {
			return err
		}
		if !r.Admitted {
			return fmt.Errorf("room %s: first visitor not admitted: %+v", name(i), r)
		}
		return st.Release(ctx, name(i), store.Ref{Number: r.Ticket, Epoch: r.Epoch})
	})
	used := m.stop()
	if t.Failed() {
		return
	}

	s, err := newStore(t, m.probe, m.prefix).Stats(ctx, name(0), limits)
	if err != nil {
		t.Fatal(err)
	}
	if s.Active != 0 || s.Waiting != 0 || s.Admissions != 1 {
		t.Errorf("idle room: %+v, want no sessions, no waiters, one admission", s)
	}
	all := scanKeys(t, m.probe, m.prefix+":*")
	sample := roomKeys(t, m.probe, m.prefix, name(0))
	t.Logf("used_memory: +%d bytes for %d idle rooms = %.0f bytes per room", used, idleRooms, float64(used)/idleRooms)
	t.Logf("keys: %d in all, %.2f per room; MEMORY USAGE sum %.0f bytes per room",
		len(all), float64(len(all))/idleRooms, float64(all.bytes())/idleRooms)
	t.Logf("an idle room's keys (room %s):", name(0))
	for _, k := range sample {
		t.Logf("  %-44s %-7s %5d bytes  TTL %v", k.name, k.kind, k.bytes, k.ttl)
	}
	if per := used / idleRooms; per > idleLimit {
		t.Errorf("an idle room takes %d bytes, more than the target %d", per, idleLimit)
	}
}

// measurement reads the growth of used_memory around a test's work. The work runs on
// connections of its own, opened after the first reading and closed before the second, so
// that their buffers never count as the rooms' memory.
type measurement struct {
	t       *testing.T
	probe   *goredis.Client // one connection: INFO, SCAN and the readings after the work
	prefix  string
	before  int64
	name    string // the workers' connection name
	workers *goredis.Client
	store   *redis.Store // on workers
}

// startMeasurement takes the first reading and opens the workers' connections on database
// memoryDB; their keys use a prefix of their own and are deleted at the end. It skips
// unless WAITINGROOM_BENCH_MEMORY=1.
func startMeasurement(t *testing.T) *measurement {
	if os.Getenv("WAITINGROOM_BENCH_MEMORY") != "1" {
		t.Skip("set WAITINGROOM_BENCH_MEMORY=1 (and WAITINGROOM_REDIS_ADDR) to measure memory; it takes a minute or two")
	}
	m := &measurement{t: t, probe: newClient(t, memoryDB, 1, ""), prefix: newPrefix(t)}
	t.Cleanup(func() { deleteKeys(t, m.probe, m.prefix+":*") })
	// Load the script before the first reading: Stats of an unknown room writes nothing.
	if _, err := newStore(t, m.probe, m.prefix).Stats(context.Background(), "warmup", limits); err != nil {
		t.Fatal(err)
	}
	m.before = usedMemory(t, m.probe)
	m.name = m.prefix + "-workers"
	m.workers = newClient(t, memoryDB, workers, m.name)
	m.store = newStore(t, m.workers, m.prefix)
	return m
}

// stop closes the workers' connections, waits until the server has let them go and returns
// the growth of used_memory.
func (m *measurement) stop() int64 {
	m.workers.Close()
	ctx := context.Background()
	for i := 0; ; i++ {
		list, err := m.probe.ClientList(ctx).Result()
		if err != nil {
			m.t.Fatal(err)
		}
		if !strings.Contains(list, " name="+m.name+" ") {
			break
		}
		if i == 10000 {
			m.t.Fatal("the server keeps the closed connections")
		}
	}
	return usedMemory(m.t, m.probe) - m.before
}

// parallel runs f(0..n-1) on workers goroutines and stops at the first error.
func parallel(t *testing.T, n int, f func(i int) error) {
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					failed.Store(true)
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
}

func usedMemory(t *testing.T, client *goredis.Client) int64 {
	info, err := client.Info(context.Background(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("INFO memory has no used_memory")
	return 0
}

type keyInfo struct {
	name, kind string
	bytes      int64
	ttl        time.Duration
}

type keyList []keyInfo

func (l keyList) bytes() int64 {
	var n int64
	for _, k := range l {
		n += k.bytes
	}
	return n
}

func (l keyList) largest(n int) string {
	s := slices.Clone(l)
	slices.SortFunc(s, func(a, b keyInfo) int { return int(b.bytes - a.bytes) })
	var parts []string
	for _, k := range s[:min(n, len(s))] {
		parts = append(parts, fmt.Sprintf("%s %s %d B", k.name, k.kind, k.bytes))
	}
	return strings.Join(parts, "; ")
}

// roomKeys lists a room's keys: prefix:{room}:...
func roomKeys(t *testing.T, client *goredis.Client, prefix, room string) keyList {
	return scanKeys(t, client, prefix+":{"+room+"}:*")
}

// scanKeys lists the keys matching pattern with their type, MEMORY USAGE and TTL. SCAN is
// for tests only; the store never scans.
func scanKeys(t *testing.T, client *goredis.Client, pattern string) keyList {
	ctx := context.Background()
	var names []string
	iter := client.Scan(ctx, 0, pattern, 1000).Iterator()
	for iter.Next(ctx) {
		names = append(names, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	var list keyList
	for batch := range slices.Chunk(names, 1000) {
		pipe := client.Pipeline()
		kinds := make([]*goredis.StatusCmd, len(batch))
		sizes := make([]*goredis.IntCmd, len(batch))
		ttls := make([]*goredis.DurationCmd, len(batch))
		for i, k := range batch {
			kinds[i] = pipe.Type(ctx, k)
			sizes[i] = pipe.MemoryUsage(ctx, k, 0) // 0: all elements, not a sample
			ttls[i] = pipe.PTTL(ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		for i, k := range batch {
			list = append(list, keyInfo{name: k, kind: kinds[i].Val(), bytes: sizes[i].Val(), ttl: ttls[i].Val()})
		}
	}
	return list
}
