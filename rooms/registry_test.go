package rooms_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/rooms"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/memory"
	"github.com/waitingroom-go/waitingroom/store/storetest"
	"github.com/waitingroom-go/waitingroom/token"
)

func tenant(capacity int) waitingroom.Config {
	return waitingroom.Config{TotalActiveUsers: capacity, NewUsersPerMinute: capacity}
}

// sharedKey is the signing key of every instance in these tests.
var sharedKey = token.HMACKey{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")}

// instances are n registries on one store, as n app instances on one Redis are.
func instances(t testing.TB, s store.Store, clock *storetest.Clock, n int) []*rooms.Registry {
	t.Helper()
	codec, err := token.NewCodec([]token.HMACKey{sharedKey}) // every instance's
	if err != nil {
		t.Fatal(err)
	}
	var out []*rooms.Registry
	for i := range n {
		g, err := rooms.NewRegistry(s,
			rooms.WithRoomOptions(waitingroom.WithClock(clock.Now), waitingroom.WithCodec(codec), waitingroom.WithStoreTimeout(time.Minute)),
			rooms.WithHandler(func(r *waitingroom.Room) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, "%d:%s", i, r.ID()) })
			}),
			rooms.WithFallback(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no tenant", http.StatusTeapot) })))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, g)
	}
	return out
}

func get(h http.Handler, path string) (int, string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Code, rec.Body.String()
}

func TestRegistryFollowsTheStore(t *testing.T) {
	clock := storetest.NewClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	s := memory.New(memory.WithClock(clock.Now))
	gs := instances(t, s, clock, 2)
	a, b := gs[0], gs[1]
	ctx := context.Background()

	if _, _, err := a.Put(ctx, "city-001", tenant(5), 0, store.Change{By: "ops", What: "create"}); err != nil {
		t.Fatal(err)
	}
	if code, body := get(a, "/city-001/form"); code != 200 || body != "0:city-001" {
		t.Errorf("A: %d %q", code, body)
	}
	if code, _ := get(b, "/city-001/form"); code != http.StatusTeapot {
		t.Errorf("B before its refresh: %d, want the fallback", code)
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if code, body := get(b, "/city-001/form"); code != 200 || body != "1:city-001" {
		t.Errorf("B after its refresh: %d %q", code, body)
	}
	if code, _ := get(b, "/city-0012/"); code != http.StatusTeapot {
		t.Errorf("a longer ID is another tenant: %d", code)
	}

	// A change on A: B's room follows at its next refresh, without traffic.
	rb, _ := b.Room("city-001")
	if _, _, err := a.Put(ctx, "city-001", tenant(9), 1, store.Change{By: "ops", What: "replace"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Put(ctx, "city-001", tenant(7), 1, store.Change{By: "ops", What: "replace"}); !errors.Is(err, store.ErrVersion) {
		t.Errorf("a change at a stale version: %v, want ErrVersion", err)
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if rb.Version() != 2 || rb.Config().TotalActiveUsers != 9 {
		t.Errorf("B's room at version %d, capacity %d; want 2 and 9", rb.Version(), rb.Config().TotalActiveUsers)
	}

	// Bad settings and IDs change nothing.
	if _, _, err := a.Put(ctx, "city-002", tenant(0), 0, store.Change{}); !errors.Is(err, waitingroom.ErrConfig) {
		t.Errorf("capacity 0: %v", err)
	}
	if _, _, err := a.Put(ctx, "city 2", tenant(1), 0, store.Change{}); !errors.Is(err, waitingroom.ErrInvalidRoom) {
		t.Errorf("a bad ID: %v", err)
	}
	if a.Len() != 1 {
		t.Errorf("%d rooms after refused creations, want 1", a.Len())
	}

	// Ensure keeps what is stored.
	r, err := b.Ensure(ctx, "city-001", tenant(2))
	if err != nil || r != rb || r.Config().TotalActiveUsers != 9 {
		t.Errorf("Ensure of an existing room: %v, capacity %d", err, r.Config().TotalActiveUsers)
	}

	// A deletion on B: gone from A at its next refresh.
	if err := b.Delete(ctx, "city-001", 1, store.Change{By: "ops", What: "delete"}); !errors.Is(err, store.ErrVersion) {
		t.Errorf("a deletion at a stale version: %v", err)
	}
	if err := b.Delete(ctx, "city-001", store.AnyVersion, store.Change{By: "ops", What: "delete"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "city-001", store.AnyVersion, store.Change{By: "ops", What: "delete"}); !errors.Is(err, rooms.ErrNoRoom) {
		t.Errorf("deleting it again: %v, want ErrNoRoom", err)
	}
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Room("city-001"); ok || a.Len() != 0 {
		t.Errorf("A still holds the deleted room")
	}
	if code, _ := get(a, "/city-001/form"); code != http.StatusTeapot {
		t.Errorf("A serves the deleted room: %d", code)
	}
}

// Ensure of a room a Room's code seeded but nobody listed lists it as it stands.
func TestEnsureListsASeededRoom(t *testing.T) {
	clock := storetest.NewClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	s := memory.New(memory.WithClock(clock.Now))
	ctx := context.Background()
	r, err := waitingroom.New("booking", s, tenant(4), waitingroom.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Enter(ctx, ""); err != nil { // seeds the settings
		t.Fatal(err)
	}
	g := instances(t, s, clock, 1)[0]
	got, err := g.Ensure(ctx, "booking", tenant(40))
	if err != nil {
		t.Fatal(err)
	}
	if got.Config().TotalActiveUsers != 4 || got.Version() != 2 {
		t.Errorf("capacity %d at version %d, want the seeded 4, listed as version 2", got.Config().TotalActiveUsers, got.Version())
	}
	if _, listed, _ := s.ListRooms(ctx); listed["booking"] != 2 {
		t.Errorf("listed: %v", listed)
	}
}

// The targets: 10,000 idle rooms in a process within 20 MB of heap, loaded by one
// refresh; the room of a request found without allocating.
func TestTenThousandRooms(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 rooms")
	}
	clock := storetest.NewClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	s := memory.New(memory.WithClock(clock.Now))
	ctx := context.Background()
	writer := instances(t, s, clock, 1)[0]
	const n = 10_000
	for i := range n {
		if _, _, err := writer.Put(ctx, fmt.Sprintf("city-%05d", i), tenant(100), 0, store.Change{By: "ops", What: "create"}); err != nil {
			t.Fatal(err)
		}
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	g := instances(t, s, clock, 1)[0]
	if err := g.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	used := heap() - before
	if g.Len() != n {
		t.Fatalf("%d rooms loaded, want %d", g.Len(), n)
	}
	t.Logf("10,000 idle rooms: %.1f MB of heap (%d B a room)", float64(used)/1e6, used/n)
	if used > 20<<20 {
		t.Errorf("10,000 idle rooms take %d bytes of heap, over 20 MB", used)
	}
	req := httptest.NewRequest("GET", "/city-05000/form/step2", nil)
	if a := testing.AllocsPerRun(100, func() {
		if g.Lookup(req) == nil {
			t.Fatal("no room")
		}
	}); a != 0 {
		t.Errorf("Lookup allocates %.0f times, want 0", a)
	}
	runtime.KeepAlive(g)
}

func BenchmarkRegistryLookup(b *testing.B) {
	clock := storetest.NewClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	s := memory.New(memory.WithClock(clock.Now))
	g := instances(b, s, clock, 1)[0]
	ctx := context.Background()
	for i := range 10_000 {
		if _, _, err := g.Put(ctx, fmt.Sprintf("city-%05d", i), tenant(100), 0, store.Change{}); err != nil {
			b.Fatal(err)
		}
	}
	req := httptest.NewRequest("GET", "/city-05000/form/step2", nil)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if g.Lookup(req) == nil {
			b.Fatal("no room")
		}
	}
}

// A room deleted and created again between two refreshes of an instance: versions go on
// rising, so the instance takes the new settings.
func TestRoomCreatedAgain(t *testing.T) {
	clock := storetest.NewClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	s := memory.New(memory.WithClock(clock.Now))
	gs := instances(t, s, clock, 2)
	a, b := gs[0], gs[1]
	ctx := context.Background()
	for _, c := range []int{5, 6, 7} {
		if _, _, err := a.Put(ctx, "city-001", tenant(c), store.AnyVersion, store.Change{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(ctx, "city-001", store.AnyVersion, store.Change{}); err != nil {
		t.Fatal(err)
	}
	cfg := tenant(2)
	cfg.Suspended = true
	if _, v, err := a.Put(ctx, "city-001", cfg, 0, store.Change{}); err != nil || v != 4 {
		t.Fatalf("created again: version %d, %v; want 4", v, err)
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	r, _ := b.Room("city-001")
	if c, v := r.Settings(); v != 4 || !c.Suspended || c.TotalActiveUsers != 2 {
		t.Errorf("B: version %d, %+v; want the new room's settings", v, c)
	}
}
