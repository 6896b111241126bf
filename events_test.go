package waitingroom_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/memory"
	"github.com/waitingroom-go/waitingroom/store/redis"
	"github.com/waitingroom-go/waitingroom/store/storetest"
)

// eventRoom is a room on one of the stores, in simulated time, with an app clock that can
// be set apart from the store's.
type eventRoom struct {
	room  *waitingroom.Room
	clock *storetest.Clock // the store's
	skew  time.Duration    // the app's clock minus the store's
	sync  func()           // tells the store the clock moved
	calls *countingStore
}

// backends are the stores the room-level event tests run on: memory and miniredis always,
// a real Redis when WAITINGROOM_REDIS_ADDR names one.
func backends(t *testing.T) map[string]func(t *testing.T, clock *storetest.Clock) (store.Store, func()) {
	b := map[string]func(t *testing.T, clock *storetest.Clock) (store.Store, func()){
		"memory": func(t *testing.T, clock *storetest.Clock) (store.Store, func()) {
			return memory.New(memory.WithClock(clock.Now)), func() {}
		},
		"miniredis": func(t *testing.T, clock *storetest.Clock) (store.Store, func()) {
			m := miniredis.RunT(t)
			m.SetTime(clock.Now())
			m.ClockTTL(true)
			c := goredis.NewClient(&goredis.Options{Addr: m.Addr(), ContextTimeoutEnabled: true})
			t.Cleanup(func() { c.Close() })
			s, err := redis.New(c)
			if err != nil {
				t.Fatal(err)
			}
			return s, func() { m.SetTime(clock.Now()) }
		},
	}
	if addr := os.Getenv("WAITINGROOM_REDIS_ADDR"); addr != "" {
		b["redis"] = func(t *testing.T, clock *storetest.Clock) (store.Store, func()) {
			c := goredis.NewClient(&goredis.Options{Addr: addr, ContextTimeoutEnabled: true})
			t.Cleanup(func() { c.Close() })
			var p [6]byte
			rand.Read(p[:])
			prefix := "wrtest-" + hex.EncodeToString(p[:])
			t.Cleanup(func() {
				ctx := context.Background()
				keys, _ := c.Keys(ctx, prefix+":*").Result() // test cleanup only, never a request path
				if len(keys) > 0 {
					c.Del(ctx, keys...)
				}
			})
			s, err := redis.New(c, redis.WithPrefix(prefix), redis.WithClock(clock.Now))
			if err != nil {
				t.Fatal(err)
			}
			return s, func() {}
		}
	} else {
		t.Log("real Redis skipped: set WAITINGROOM_REDIS_ADDR=127.0.0.1:6379 to run these tests on it too")
	}
	return b
}

func forEachBackend(t *testing.T, test func(t *testing.T, mk func(cfg waitingroom.Config) *eventRoom)) {
	for name, newStore := range backends(t) {
		t.Run(name, func(t *testing.T) {
			test(t, func(cfg waitingroom.Config) *eventRoom {
				e := &eventRoom{clock: newSimClock()}
				s, sync := newStore(t, e.clock)
				e.sync, e.calls = sync, newCountingStore(s)
				r, err := waitingroom.New("room", e.calls, cfg, waitingroom.WithClock(func() time.Time { return e.clock.Now().Add(e.skew) }), simStoreTimeout)
				if err != nil {
					t.Fatal(err)
				}
				e.room = r
				return e
			})
		})
	}
}

func (e *eventRoom) advance(d time.Duration) {
	e.clock.Advance(d)
	e.sync()
}

// enter is one request carrying raw, with the store calls it cost.
func (e *eventRoom) enter(t *testing.T, raw string) (waitingroom.Visit, map[string]int) {
	t.Helper()
	e.calls.take()
	v, err := e.room.Enter(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	return v, e.calls.take()
}

func ptr[T any](v T) *T { return &v }

// TestEventPrequeueStartAndEnd walks one event through its phases on every store: the
// pre-queue admits nobody (even when an instance's clock says the event has begun), passes
// from before the start are refused inside the event, the pre-queued go in by ticket order
// under the event's limits, and at the end the room's own settings are back while the
// event's sessions run out.
func TestEventPrequeueStartAndEnd(t *testing.T) {
	forEachBackend(t, func(t *testing.T, mk func(waitingroom.Config) *eventRoom) {
		t0 := newSimClock().Now()
		ev := waitingroom.Event{
			Name: "bookings open", PrequeueStart: t0.Add(time.Minute), Start: t0.Add(5 * time.Minute), End: t0.Add(30 * time.Minute),
			TotalActiveUsers: 3, NewUsersPerMinute: 3, SessionDuration: 30 * time.Minute,
		}
		r := mk(waitingroom.Config{TotalActiveUsers: 100, NewUsersPerMinute: 100, Events: []waitingroom.Event{ev}})

		// Before the pre-queue the room is its own: not busy, so transparent.
		early, _ := r.enter(t, "")
		if early.Outcome != waitingroom.Admitted || early.Pass.Scope != "" || early.Status.EventPrequeueing {
			t.Fatalf("before the pre-queue: %v scope %q", early.Outcome, early.Pass.Scope)
		}

		// The pre-queue: everyone gets a place and the time until the start; the one already
		// in keeps going.
		r.advance(time.Minute)
		var queued []waitingroom.Visit
		for i := range 4 {
			v, c := r.enter(t, "")
			st := v.Status
			if v.Outcome != waitingroom.Waiting || c["join"] != 1 || !st.EventPrequeueing || st.EventActive ||
				st.TimeUntilEventStart != 4*time.Minute || st.Wait.Known || st.UsersAhead != int64(i) {
				t.Fatalf("pre-queue visitor %d: %v %+v", i, v.Outcome, st)
			}
			queued = append(queued, v)
		}
		if v, c := r.enter(t, early.Token); v.Outcome != waitingroom.Admitted || c["join"] != 0 {
			t.Fatalf("a pass from before the pre-queue, in it: %v, calls %v", v.Outcome, c)
		}

		// A second before the start by the store's clock, while this instance's clock runs
		// 30 s ahead: the store decides, and nobody goes in.
		r.advance(4*time.Minute - time.Second)
		r.skew = 30 * time.Second
		for i, q := range queued {
			v, c := r.enter(t, q.Token)
			if v.Outcome != waitingroom.Waiting || c["poll"] != 1 {
				t.Fatalf("pre-queued visitor %d a second before the start: %v, calls %v", i, v.Outcome, c)
			}
			queued[i] = v
		}
		r.skew = 0

		// The start: the pass from before is not valid inside the event, and its holder
		// queues behind the pre-queue; the pre-queued go in by ticket order, three of them.
		r.advance(time.Second)
		again, c := r.enter(t, early.Token)
		if again.Outcome != waitingroom.Waiting || c["join"] != 1 || !again.Status.EventActive || again.Status.TimeUntilEventEnd != 25*time.Minute {
			t.Fatalf("a pass from before the event, inside it: %v %+v, calls %v", again.Outcome, again.Status, c)
		}
		r.advance(20 * time.Second)
		var in []waitingroom.Visit
		for i, q := range queued {
			v, _ := r.enter(t, q.Token)
			if got, want := v.Outcome == waitingroom.Admitted, i < 3; got != want {
				t.Fatalf("pre-queued visitor %d at the start: %v", i, v.Outcome)
			}
			if v.Outcome == waitingroom.Admitted {
				if !strings.HasPrefix(v.Pass.Scope, "event:bookings open@") || !v.Pass.Expires.Equal(r.clock.Now().Add(30*time.Minute)) {
					t.Fatalf("event pass: scope %q, expires %v", v.Pass.Scope, v.Pass.Expires)
				}
				in = append(in, v)
			}
			queued[i] = v
		}
		if v, _ := r.enter(t, again.Token); v.Outcome != waitingroom.Waiting || v.Status.UsersAhead != 1 {
			t.Fatalf("the early visitor after the start: %v, %d ahead; want behind the last pre-queued", v.Outcome, v.Status.UsersAhead)
		} else {
			again = v
		}
		st, err := r.room.Stats(context.Background())
		if err != nil || st.Active != 3 {
			t.Fatalf("inside the event: %d active (%v), want the event's 3 (the early session no longer counts)", st.Active, err)
		}

		// The event's sessions fill it: the other two wait to its end.
		waiting := []string{queued[3].Token, again.Token}
		for range 6 {
			r.advance(4 * time.Minute)
			for i, raw := range waiting {
				v, _ := r.enter(t, raw)
				if v.Outcome != waitingroom.Waiting {
					t.Fatalf("inside the full event: %v", v.Outcome)
				}
				waiting[i] = v.Token
			}
		}

		// The end: the room's own settings again; the event's sessions run out on their passes.
		r.advance(time.Minute)
		if v, c := r.enter(t, in[0].Token); v.Outcome != waitingroom.Admitted || c["join"] != 0 || c["renew"] != 1 {
			t.Fatalf("an event pass after the end: %v, calls %v; want it renewed", v.Outcome, c)
		}
		for _, raw := range waiting {
			if v, c := r.enter(t, raw); v.Outcome != waitingroom.Admitted || v.Pass.Scope != "" || c["poll"] != 1 || c["join"] != 0 {
				t.Fatalf("after the end: %v scope %q, calls %v; want in under the room's settings", v.Outcome, v.Pass.Scope, c)
			}
		}
	})
}

// TestEventShuffleStatus: a shuffled pre-queue tells nobody a place (the order is drawn at
// the start), then each visitor their turn in the drawn order.
func TestEventShuffleStatus(t *testing.T) {
	forEachBackend(t, func(t *testing.T, mk func(waitingroom.Config) *eventRoom) {
		t0 := newSimClock().Now()
		r := mk(waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1, Events: []waitingroom.Event{{
			Name: "e", PrequeueStart: t0, Start: t0.Add(time.Minute), End: t0.Add(time.Hour), ShuffleAtEventStart: true,
		}}})
		var vs []waitingroom.Visit
		for range 20 {
			v, _ := r.enter(t, "")
			if v.Outcome != waitingroom.Waiting || !v.Status.ShuffleAtEventStart || v.Status.UsersAhead != int64(len(vs)) {
				t.Fatalf("pre-queue: %v %+v", v.Outcome, v.Status)
			}
			vs = append(vs, v)
		}
		r.advance(20 * time.Second)
		for i, v := range vs {
			w, _ := r.enter(t, v.Token)
			if w.Status.UsersAhead != 19 {
				t.Fatalf("pre-queue, visitor %d: %d ahead; want 19 (anyone may go first)", i, w.Status.UsersAhead)
			}
			vs[i] = w
		}
		r.advance(40 * time.Second)
		seen := map[int64]bool{}
		admitted := 0
		for _, v := range vs {
			w, _ := r.enter(t, v.Token)
			if w.Outcome == waitingroom.Admitted {
				admitted++
				continue
			}
			if seen[w.Status.UsersAhead] {
				t.Fatalf("two visitors told %d ahead", w.Status.UsersAhead)
			}
			seen[w.Status.UsersAhead] = true
		}
		if admitted != 1 || len(seen) != 19 {
			t.Fatalf("at the start: %d admitted, %d distinct places; want 1 and 19", admitted, len(seen))
		}
		for i := range int64(19) {
			if !seen[i] {
				t.Fatalf("nobody told %d ahead: places are not the turns 0..18", i)
			}
		}
	})
}

// TestEventOverrides: an event replaces the method and renewal; outside it the room's own
// apply.
func TestEventOverrides(t *testing.T) {
	forEachBackend(t, func(t *testing.T, mk func(waitingroom.Config) *eventRoom) {
		t0 := newSimClock().Now()
		r := mk(waitingroom.Config{TotalActiveUsers: 5, NewUsersPerMinute: 5, Events: []waitingroom.Event{
			{Name: "closed", Start: t0.Add(time.Minute), End: t0.Add(2 * time.Minute), QueueingMethod: ptr(waitingroom.Reject)},
			{Name: "one go", Start: t0.Add(10 * time.Minute), End: t0.Add(20 * time.Minute), DisableSessionRenewal: ptr(true), SessionDuration: time.Minute},
		}})
		r.advance(time.Minute)
		if v, c := r.enter(t, ""); v.Outcome != waitingroom.Rejected || calls(c) != 0 || v.Status.RefreshInterval != 0 {
			t.Fatalf("inside a Reject event: %v, calls %v", v.Outcome, c)
		}
		r.advance(time.Minute)
		if v, _ := r.enter(t, ""); v.Outcome != waitingroom.Admitted {
			t.Fatalf("after a Reject event: %v", v.Outcome)
		}
		r.advance(8 * time.Minute)
		v, _ := r.enter(t, "")
		if v.Outcome != waitingroom.Admitted || !v.Pass.Expires.Equal(r.clock.Now().Add(time.Minute)) {
			t.Fatalf("inside an event without renewal: %v, expires %v", v.Outcome, v.Pass.Expires)
		}
		r.advance(50 * time.Second)
		if w, c := r.enter(t, v.Token); w.Outcome != waitingroom.Admitted || calls(c) != 0 {
			t.Fatalf("within the event's session: %v, calls %v; want in without a renewal", w.Outcome, c)
		}
		r.advance(10 * time.Second)
		if w, c := r.enter(t, v.Token); w.Pass.Session == v.Pass.Session || c["join"] != 1 {
			t.Fatalf("after exactly one event session: %v, calls %v; want a new visit", w.Outcome, c)
		}
	})
}

// TestEventsChangeWhileRunning: events added and removed on a running room apply from the
// next request; a bad one is refused whole.
func TestEventsChangeWhileRunning(t *testing.T) {
	forEachBackend(t, func(t *testing.T, mk func(waitingroom.Config) *eventRoom) {
		r := mk(waitingroom.Config{TotalActiveUsers: 5, NewUsersPerMinute: 5})
		if v, _ := r.enter(t, ""); v.Outcome != waitingroom.Admitted {
			t.Fatalf("no event: %v", v.Outcome)
		}
		now := r.clock.Now()
		if err := r.room.AddEvent(waitingroom.Event{Name: "now", PrequeueStart: now, Start: now.Add(time.Hour), End: now.Add(2 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if v, _ := r.enter(t, ""); v.Outcome != waitingroom.Waiting || !v.Status.EventPrequeueing {
			t.Fatalf("after AddEvent: %v %+v", v.Outcome, v.Status)
		}
		err := r.room.AddEvent(waitingroom.Event{Name: "clash", Start: now.Add(90 * time.Minute), End: now.Add(3 * time.Hour)})
		if !errors.Is(err, waitingroom.ErrConfig) || len(r.room.Events()) != 1 {
			t.Fatalf("an overlapping event: %v, %d events", err, len(r.room.Events()))
		}
		if err := r.room.RemoveEvent("nope"); !errors.Is(err, waitingroom.ErrNoEvent) {
			t.Fatalf("RemoveEvent of an unknown name: %v", err)
		}
		if err := r.room.RemoveEvent("now"); err != nil {
			t.Fatal(err)
		}
		r.advance(time.Second)
		if v, _ := r.enter(t, ""); v.Outcome != waitingroom.Admitted || v.Status.EventPrequeueing {
			t.Fatalf("after RemoveEvent: %v", v.Outcome)
		}
	})
}

// TestQueueAllEndsSessions: with the option, queue-all is as fair as an event's start.
func TestQueueAllEndsSessions(t *testing.T) {
	for _, ends := range []bool{false, true} {
		t.Run(fmt.Sprint("ends=", ends), func(t *testing.T) {
			f := newFixture(t, waitingroom.Config{TotalActiveUsers: 5, NewUsersPerMinute: 5}, 0)
			a, _ := f.enter(t, "")
			cfg := f.room.Config()
			cfg.QueueAll, cfg.QueueAllEndsSessions = true, ends
			if err := f.room.SetConfig(cfg); err != nil {
				t.Fatal(err)
			}
			v, c := f.enter(t, a.Token)
			if ends && (v.Outcome != waitingroom.Waiting || c["join"] != 1) || !ends && (v.Outcome != waitingroom.Admitted || calls(c) != 0) {
				t.Fatalf("a pass under queue-all: %v, calls %v", v.Outcome, c)
			}
		})
	}
}

func TestEventValidation(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ok := waitingroom.Event{Name: "a", PrequeueStart: t0.Add(-10 * time.Minute), Start: t0, End: t0.Add(time.Hour)}
	mod := func(f func(e *waitingroom.Event)) waitingroom.Event { e := ok; f(&e); return e }
	cases := []struct {
		name   string
		events []waitingroom.Event
		want   string
	}{
		{"pre-queue after start", []waitingroom.Event{mod(func(e *waitingroom.Event) { e.PrequeueStart = t0.Add(time.Second) })}, "PrequeueStart"},
		{"end before start", []waitingroom.Event{mod(func(e *waitingroom.Event) { e.End = t0.Add(-time.Hour) })}, "End"},
		{"shorter than a minute", []waitingroom.Event{mod(func(e *waitingroom.Event) { e.End = t0.Add(30 * time.Second) })}, "at least a minute"},
		{"no start", []waitingroom.Event{mod(func(e *waitingroom.Event) { e.Start = time.Time{}; e.PrequeueStart = time.Time{} })}, "required"},
		{"no name", []waitingroom.Event{mod(func(e *waitingroom.Event) { e.Name = "" })}, "name"},
		{"same name", []waitingroom.Event{ok, mod(func(e *waitingroom.Event) {
			e.PrequeueStart, e.Start, e.End = time.Time{}, t0.Add(2*time.Hour), t0.Add(3*time.Hour)
		})}, "name"},
		{"overlap", []waitingroom.Event{ok, mod(func(e *waitingroom.Event) {
			e.Name, e.PrequeueStart = "b", t0.Add(30*time.Minute)
			e.Start, e.End = t0.Add(2*time.Hour), t0.Add(3*time.Hour)
		})}, "overlaps"},
		{"capacity without rate", []waitingroom.Event{mod(func(e *waitingroom.Event) { e.TotalActiveUsers = 10 })}, "together"},
		{"rate above capacity", []waitingroom.Event{mod(func(e *waitingroom.Event) { e.TotalActiveUsers, e.NewUsersPerMinute = 10, 20 })}, "exceeds"},
		{"session too short", []waitingroom.Event{mod(func(e *waitingroom.Event) { e.SessionDuration = time.Second })}, "SessionDuration"},
		{"unknown method", []waitingroom.Event{mod(func(e *waitingroom.Event) { e.QueueingMethod = ptr(waitingroom.Method(9)) })}, "QueueingMethod"},
	}
	for _, c := range cases {
		_, err := waitingroom.New("r", memory.New(), waitingroom.Config{TotalActiveUsers: 50, NewUsersPerMinute: 50, Events: c.events})
		if !errors.Is(err, waitingroom.ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want ErrConfig mentioning %q", c.name, err, c.want)
		}
	}
	// No small cap: a thousand back-to-back events, given in any order, come back sorted.
	var many []waitingroom.Event
	for i := 999; i >= 0; i-- {
		s := t0.Add(time.Duration(i) * time.Hour)
		many = append(many, waitingroom.Event{Name: fmt.Sprint("e", i), Start: s, End: s.Add(time.Hour)})
	}
	r, err := waitingroom.New("r", memory.New(), waitingroom.Config{TotalActiveUsers: 50, NewUsersPerMinute: 50, Events: many})
	if err != nil {
		t.Fatal(err)
	}
	evs := r.Events()
	if len(evs) != 1000 || evs[0].Name != "e0" || evs[999].Name != "e999" {
		t.Fatalf("a thousand events: %d, first %q", len(evs), evs[0].Name)
	}
	// An explicit RenewInterval longer than an event's session is refused; the default (and
	// a value equal to it, as Config returns it) follows the event's session.
	_, err = waitingroom.New("r", memory.New(), waitingroom.Config{TotalActiveUsers: 5, NewUsersPerMinute: 5, RenewInterval: 50 * time.Second,
		Events: []waitingroom.Event{mod(func(e *waitingroom.Event) { e.SessionDuration = 30 * time.Second })}})
	if !errors.Is(err, waitingroom.ErrConfig) {
		t.Errorf("RenewInterval beyond an event's session: %v", err)
	}
}
