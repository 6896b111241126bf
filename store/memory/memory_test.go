package memory_test

import (
	"math"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/memory"
	"github.com/waitingroom-go/waitingroom/store/storetest"
)

var start = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

func newHarness(testing.TB) storetest.Harness {
	clock := storetest.NewClock(start)
	f := storetest.NewForgetful(func() store.Store { return memory.New(memory.WithClock(clock.Now)) })
	return storetest.Harness{
		Store:   f,
		Now:     clock.Now,
		Advance: clock.Advance,
		Forget:  f.Forget,
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness { return newHarness(t) })
}

// TestConformanceShared runs the suite on one store and one clock for all subtests, as a
// shared Redis server would.
func TestConformanceShared(t *testing.T) {
	h := newHarness(t)
	storetest.Run(t, func(*testing.T) storetest.Harness { return h })
}

func BenchmarkMemory(b *testing.B) { storetest.Benchmark(b, newHarness) }

var limits = admission.Limits{
	Capacity: 3, PerMinute: 3, Session: 2 * time.Minute, Renewal: true,
	Hold: 5 * time.Minute, Grace: 40 * time.Second,
}

func ref(res store.Result) store.Ref { return store.Ref{Number: res.Ticket, Epoch: res.Epoch} }

// Rooms with no sessions and no live waiters are dropped once the hold has passed; a room
// keeps its waiters' places and its sessions until then.
func TestIdleRoomsDisappear(t *testing.T) {
	ctx := t.Context()
	clock := storetest.NewClock(start)
	s := memory.New(memory.WithClock(clock.Now))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	// "busy": full, with a waiter; "quiet": one session, released; "peek": only read, which
	// creates nothing.
	var busy []store.Result
	for range 4 {
		res, err := s.Join(ctx, "busy", limits)
		must(err)
		busy = append(busy, res)
	}
	quiet, err := s.Join(ctx, "quiet", limits)
	must(err)
	must(s.Release(ctx, "quiet", ref(quiet)))
	if st, err := s.Stats(ctx, "peek", limits); err != nil || !st.Now.Equal(clock.Now()) || st != (store.Stats{Now: st.Now, Slots: admission.NotCounted}) {
		t.Fatalf("Stats of an unknown room: %+v, %v", st, err)
	}
	if n := s.Rooms(); n != 2 {
		t.Fatalf("Rooms() = %d, want 2", n)
	}

	// A place is held for Hold at least: the room must still be there.
	clock.Advance(limits.Hold)
	if n := s.Rooms(); n != 2 {
		t.Fatalf("Rooms() = %d Hold after the last operation, want 2", n)
	}
	waiter := busy[3]
	res, err := s.Poll(ctx, "busy", ref(waiter), limits)
	must(err)
	if res.Requeued || !res.Admitted {
		// The sessions expired at 2 min, so the waiter is next in.
		t.Fatalf("the waiter Hold after joining: requeued %t, admitted %t, want admitted in place", res.Requeued, res.Admitted)
	}

	// The waiter's session and the hold pass with nobody around: every room goes.
	clock.Advance(limits.Session + limits.Hold + admission.LiveBucket + time.Second)
	if n := s.Rooms(); n != 0 {
		t.Fatalf("Rooms() = %d after the sessions and the hold passed, want 0", n)
	}

	// A new room of the same name is a new epoch: old tickets do not alias new ones.
	again, err := s.Join(ctx, "busy", limits)
	must(err)
	if again.Epoch == waiter.Epoch {
		t.Fatalf("recreated room: epoch %d, same as before", again.Epoch)
	}
	old, err := s.Poll(ctx, "busy", store.Ref{Number: again.Ticket, Epoch: waiter.Epoch}, limits)
	must(err)
	if old.Epoch != waiter.Epoch {
		t.Fatalf("ticket %d of the dropped room's epoch aliased the new one: %+v", again.Ticket, old)
	}
	if rn, err := s.Renew(ctx, "busy", ref(again), limits); err != nil || !rn.Active {
		t.Fatalf("the new epoch's session after the old ticket came: %+v, %v", rn, err)
	}
}

// An idle room keeps its sessions: only a room with none is dropped.
func TestIdleRoomKeepsSessions(t *testing.T) {
	ctx := t.Context()
	clock := storetest.NewClock(start)
	s := memory.New(memory.WithClock(clock.Now))
	l := limits
	l.Session = time.Hour
	res, err := s.Join(ctx, "long", l)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(30 * time.Minute)
	if n := s.Rooms(); n != 1 {
		t.Fatalf("Rooms() = %d with a session open, want 1", n)
	}
	rn, err := s.Renew(ctx, "long", ref(res), l)
	if err != nil || !rn.Active {
		t.Fatalf("Renew after 30 idle minutes: %v, active %t", err, rn.Active)
	}
	clock.Advance(l.Session + l.Hold + admission.LiveBucket + time.Second)
	if n := s.Rooms(); n != 0 {
		t.Fatalf("Rooms() = %d after the session expired, want 0", n)
	}
}

// A clock that goes backwards is taken as standing still: no answer goes back in time, no
// session or rate slot comes back to life, and time resumes when the clock catches up.
func TestClockBackwards(t *testing.T) {
	ctx := t.Context()
	clock := storetest.NewClock(start)
	s := memory.New(memory.WithClock(clock.Now))
	l := limits
	l.Capacity, l.PerMinute = 3, 1 // the rate window is what keeps the waiter out
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	wantNow := func(what string, got, want time.Time) {
		t.Helper()
		if !got.Equal(want) {
			t.Errorf("%s: Now %v, want %v", what, got.UTC(), want.UTC())
		}
	}

	x, err := s.Join(ctx, "room", l)
	must(err)
	if !x.Admitted {
		t.Fatal("first Join not admitted")
	}
	clock.Advance(30 * time.Second)
	high := start.Add(30 * time.Second)
	st, err := s.Stats(ctx, "room", l)
	must(err)
	wantNow("Stats", st.Now, high)

	clock.Advance(-10 * time.Minute)
	st, err = s.Stats(ctx, "room", l)
	must(err)
	wantNow("Stats after the clock went back", st.Now, high)
	if st.Active != 1 || st.Window != 1 {
		t.Errorf("after the clock went back: Active %d, Window %d, want 1, 1", st.Active, st.Window)
	}
	w, err := s.Join(ctx, "room", l)
	must(err)
	wantNow("Join after the clock went back", w.Now, high)
	if !w.Joined.Equal(high) || w.Admitted {
		t.Errorf("Join after the clock went back: joined %v, admitted %t; want joined %v and waiting (rate spent)", w.Joined.UTC(), w.Admitted, high.UTC())
	}
	rn, err := s.Renew(ctx, "room", ref(x), l)
	must(err)
	wantNow("Renew after the clock went back", rn.Now, high)
	if !rn.Active || !rn.Expires.Equal(high.Add(l.Session)) {
		t.Errorf("Renew after the clock went back: active %t, expires %v, want %v", rn.Active, rn.Expires.UTC(), high.Add(l.Session).UTC())
	}

	// Still behind: still standing.
	clock.Advance(9 * time.Minute)
	p, err := s.Poll(ctx, "room", ref(w), l)
	must(err)
	wantNow("Poll while the clock is still behind", p.Now, high)
	if p.Admitted || p.Requeued {
		t.Errorf("Poll while the clock is still behind: admitted %t, requeued %t; want waiting", p.Admitted, p.Requeued)
	}

	// The clock passes the mark: time moves again, and the rate window opens at 61 s.
	clock.Advance(time.Minute + 31*time.Second) // start + 61 s
	p, err = s.Poll(ctx, "room", ref(w), l)
	must(err)
	wantNow("Poll after the clock caught up", p.Now, start.Add(61*time.Second))
	if !p.Admitted {
		t.Errorf("Poll 61 s after the first grant: not admitted")
	}

	// A session that ended stays ended when the clock goes back again.
	clock.Advance(l.Session) // past x's renewed expiry (high + Session)
	if rn, err := s.Renew(ctx, "room", ref(x), l); err != nil || rn.Active {
		t.Fatalf("Renew after expiry: %v, active %t", err, rn.Active)
	}
	clock.Advance(-time.Hour)
	if rn, err := s.Renew(ctx, "room", ref(x), l); err != nil || rn.Active {
		t.Errorf("Renew of an expired session after the clock went back: %v, active %t", err, rn.Active)
	}
}

// TestRandomOrderIsIndependentAtScale: 3,000 waiters let in 10 at a time under Random; the
// rank correlation between ticket order and admission order stays within four standard
// deviations of zero (1/sqrt(n-1) under independence).
func TestRandomOrderIsIndependentAtScale(t *testing.T) {
	const n = 3000
	rho := storetest.RandomRankCorrelation(t, newHarness(t), "random", n, 10)
	t.Logf("rank correlation over %d waiters: %.4f", n, rho)
	if limit := 4 / math.Sqrt(n-1); math.Abs(rho) > limit {
		t.Errorf("rank correlation %.4f, want within ±%.4f", rho, limit)
	}
}

// TestShuffleIsIndependentAtScale: 3,000 visitors pre-queued for a shuffled event, let in 60
// at a time from its start; the rank correlation between ticket order and admission order
// stays within four standard deviations of zero.
func TestShuffleIsIndependentAtScale(t *testing.T) {
	const n = 3000
	rho := storetest.ShuffleRankCorrelation(t, newHarness(t), "shuffle", n, 60, 0x2545F4914F6C)
	t.Logf("rank correlation over %d pre-queued visitors: %.4f", n, rho)
	if limit := 4 / math.Sqrt(n-1); math.Abs(rho) > limit {
		t.Errorf("rank correlation %.4f, want within ±%.4f", rho, limit)
	}
}

// An instance that said nothing for store.PresenceWindow no longer counts, and rooms whose
// instances all went quiet are forgotten.
func TestPresenceWindow(t *testing.T) {
	clock := storetest.NewClock(start)
	s := memory.New(memory.WithClock(clock.Now))
	ctx := t.Context()
	s.Present(ctx, "r", "a")
	s.Present(ctx, "gone", "x")
	clock.Advance(store.PresenceWindow - time.Millisecond)
	if n, _ := s.Present(ctx, "r", "b"); n != 2 {
		t.Errorf("just inside the window: %d, want 2", n)
	}
	clock.Advance(time.Millisecond)
	if n, _ := s.Present(ctx, "r", "b"); n != 1 {
		t.Errorf("a's window over: %d, want 1", n)
	}
	if n, _ := s.Present(ctx, "gone", "y"); n != 1 {
		t.Errorf("a room whose instances went quiet: %d, want 1 (the new one)", n)
	}
}
