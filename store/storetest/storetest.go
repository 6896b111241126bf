// Package storetest is the conformance suite of store.Store: every implementation must pass
// Run, and Benchmark measures it under parallel load.
//
// A backend's test builds a Harness, a store and the means to move the clock it runs on:
//
//	func newHarness(tb testing.TB) storetest.Harness {
//		clock := storetest.NewClock(time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC))
//		return storetest.Harness{
//			Store:   memory.New(memory.WithClock(clock.Now)),
//			Now:     clock.Now,
//			Advance: clock.Advance,
//		}
//	}
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) storetest.Harness { return newHarness(t) })
//	}
//
//	func BenchmarkStore(b *testing.B) { storetest.Benchmark(b, newHarness) }
//
// The suite moves time only through Harness.Advance and never sleeps on the wall clock, so a
// store whose clock cannot be set (a real Redis server) passes the harness clock to the store
// instead. Subtests run one after another, never in parallel, so a harness may share one store
// and one clock among them; each subtest uses its own room, named after the subtest with a
// random suffix.
//
// Besides the rules of package admission and the contract in package store, the suite holds
// stores to these readings of the model:
//   - Store time has millisecond resolution and is the harness clock: Result.Now, Renewal.Now
//     and Stats.Now equal Harness.Now to the millisecond.
//   - A session or a grant is active while the store's time is before its expiry; at the
//     expiry instant it is over.
//   - An Epoch is never 0, so the zero Ref names no ticket.
//   - Tickets a room issues only grow; a poll of a known ticket answers with that ticket.
//   - Expires is zero unless Admitted (Result) or Active (Renewal); Joined is zero unless the
//     answer issued the ticket (Join, or Poll with Requeued).
//   - Release and Stats grant nothing: only Join and Poll move the admission cursor.
package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
)

// Harness is a store under test and the means to move the clock it runs on.
type Harness struct {
	Store   store.Store
	Now     func() time.Time      // the store's current time
	Advance func(d time.Duration) // move the store's clock forward by d (the suite passes d > 0)
	// Forget makes the store lose every room it holds, as a Redis restart without
	// persistence does. Optional: without it the store-loss tests skip.
	Forget func()
	// Slow says the store is slow to drive (miniredis interprets the script): the long
	// tests run fewer of their cases, the ones another store also runs.
	Slow bool
}

// Run runs every conformance test, each as a subtest. newHarness is called once per subtest
// (the random crowd's per-seed subtests share their parent's) and may return the same store
// and clock each time: room IDs are unique per subtest, so one shared Redis server works.
// The crowd runs seed 1 and a random seed; STORETEST_SEED=n runs seed n alone.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if h.Store == nil || h.Now == nil || h.Advance == nil {
				t.Fatal("storetest: the Harness needs Store, Now and Advance")
			}
			tc.fn(newRoomTest(t, h))
		})
	}
}

// Benchmark runs parallel benchmarks (b.RunParallel) of Join, Poll and a mix of every
// operation with a moving clock; run with -race, they double as a race finder.
//
// newHarness takes a testing.TB so that one constructor serves both: a backend passes it
// here as is, and to Run wrapped as func(t *testing.T) Harness { return newHarness(t) }.
// It is called once per sub-benchmark run.
func Benchmark(b *testing.B, newHarness func(tb testing.TB) Harness) {
	l := admission.Limits{
		Capacity: 1000, PerMinute: 1000, Session: 2 * time.Minute, Renewal: true,
		Hold: 5 * time.Minute, Grace: 40 * time.Second,
	}
	ctx := context.Background()

	// Join: visitors arriving at one busy room; after the first Capacity, everyone queues.
	b.Run("Join", func(b *testing.B) {
		h, room := newHarness(b), roomID(b)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := h.Store.Join(ctx, room, l); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})

	// Poll: each goroutine is one visitor refreshing its page; some hold sessions, most wait.
	b.Run("Poll", func(b *testing.B) {
		h, room := newHarness(b), roomID(b)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			res, err := h.Store.Join(ctx, room, l)
			if err != nil {
				b.Error(err)
				return
			}
			ref := refOf(res)
			for pb.Next() {
				res, err := h.Store.Poll(ctx, room, ref, l)
				if err != nil {
					b.Error(err)
					return
				}
				ref = refOf(res)
			}
		})
	})

	// Mixed: every operation, with the clock moving so that sessions, grants and places
	// expire while other goroutines work on the room.
	b.Run("Mixed", func(b *testing.B) {
		h, room := newHarness(b), roomID(b)
		small := l
		small.Capacity, small.PerMinute = 50, 50
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			var ref store.Ref
			for i := 0; pb.Next(); i++ {
				var (
					res store.Result
					err error
				)
				switch {
				case i%8 == 0:
					res, err = h.Store.Join(ctx, room, small)
				default:
					res, err = h.Store.Poll(ctx, room, ref, small)
				}
				if err != nil {
					b.Error(err)
					return
				}
				ref = refOf(res)
				if res.Admitted {
					if i%3 == 0 {
						err = h.Store.Release(ctx, room, ref)
					} else {
						_, err = h.Store.Renew(ctx, room, ref, small)
					}
				}
				if err == nil && i%16 == 0 {
					_, err = h.Store.Stats(ctx, room, small)
					h.Advance(100 * time.Millisecond)
				}
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// Clock is a settable clock for harnesses: the memory store's harness passes clock.Now to
// memory.WithClock, a Redis harness passes clock.Now() to each script. The zero value is not
// usable; call NewClock. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock that reads start until it is advanced.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock by d. The suite only moves it forward; a store's own tests may pass
// a negative d to make time jump backwards.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set moves the clock to t, for simulations that step through instants.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Forgetful is a store that can lose everything on demand, as a Redis restart without
// persistence does: Forget replaces the store with a fresh one. It serves harnesses and
// store-loss tests of stores that cannot be wiped from outside (the memory store).
type Forgetful struct {
	fresh func() store.Store
	mu    sync.Mutex
	cur   store.Store
}

// NewForgetful returns a Forgetful that starts with fresh() and calls it again on Forget.
func NewForgetful(fresh func() store.Store) *Forgetful {
	return &Forgetful{fresh: fresh, cur: fresh()}
}

// Forget drops every room: the next operation finds a new, empty store.
func (f *Forgetful) Forget() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cur = f.fresh()
}

func (f *Forgetful) store() store.Store {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur
}

// Join implements store.Store.
func (f *Forgetful) Join(ctx context.Context, room string, l admission.Limits) (store.Result, error) {
	return f.store().Join(ctx, room, l)
}

// Poll implements store.Store.
func (f *Forgetful) Poll(ctx context.Context, room string, t store.Ref, l admission.Limits) (store.Result, error) {
	return f.store().Poll(ctx, room, t, l)
}

// Renew implements store.Store.
func (f *Forgetful) Renew(ctx context.Context, room string, s store.Ref, l admission.Limits) (store.Renewal, error) {
	return f.store().Renew(ctx, room, s, l)
}

// Revive implements store.Store.
func (f *Forgetful) Revive(ctx context.Context, room string, s store.Ref, l admission.Limits) (store.Renewal, error) {
	return f.store().Revive(ctx, room, s, l)
}

// Release implements store.Store.
func (f *Forgetful) Release(ctx context.Context, room string, s store.Ref) error {
	return f.store().Release(ctx, room, s)
}

// Present implements store.Presence, where the store does.
func (f *Forgetful) Present(ctx context.Context, room, instance string) (int, error) {
	p, ok := f.store().(store.Presence)
	if !ok {
		return 0, errors.New("storetest: the store does not implement store.Presence")
	}
	return p.Present(ctx, room, instance)
}

// Claim implements store.Once, where the store does.
func (f *Forgetful) Claim(ctx context.Context, room, key string, ttl time.Duration) (store.Claim, error) {
	o, ok := f.store().(store.Once)
	if !ok {
		return store.Claim{}, errors.New("storetest: the store does not implement store.Once")
	}
	return o.Claim(ctx, room, key, ttl)
}

// Unclaim implements store.Once, where the store does.
func (f *Forgetful) Unclaim(ctx context.Context, room, key string, at time.Time) error {
	o, ok := f.store().(store.Once)
	if !ok {
		return errors.New("storetest: the store does not implement store.Once")
	}
	return o.Unclaim(ctx, room, key, at)
}

// Stats implements store.Store.
func (f *Forgetful) Stats(ctx context.Context, room string, l admission.Limits) (store.Stats, error) {
	return f.store().Stats(ctx, room, l)
}

// tests lists the conformance subtests in the order Run runs them.
var tests = []struct {
	name string
	fn   func(*roomTest)
}{
	{"clock", testClock},
	{"transparent_when_not_busy", testTransparent},
	{"capacity_is_strict", testCapacity},
	{"rate_is_strict", testRate},
	{"rate_window_boundary", testRateBoundary},
	{"fifo_pending_grant", testFIFO},
	{"fifo_grants_in_order", testFIFOInOrder},
	{"abandonment_does_not_stall", testAbandonment},
	{"abandoned_run_passed_at_once", testAbandonedRun},
	{"liveness_boundary", testLiveness},
	{"grace_reclaims_unclaimed_grant", testGrace},
	{"release_frees_slot", testRelease},
	{"release_unclaimed_grant", testReleaseGrant},
	{"renew_extends", testRenewExtends},
	{"renew_disabled", testRenewDisabled},
	{"renew_unknown", testRenewUnknown},
	{"renew_pending_grant", testRenewPending},
	{"revive_ended_session", testRevive},
	{"session_expiry", testSessionExpiry},
	{"queue_all", testQueueAll},
	{"method_reject", testReject},
	{"method_passthrough", testPassthrough},
	{"unknown_tickets_requeued", testUnknownTickets},
	{"lost_place_stays_lost", testLostPlace},
	{"users_ahead_exact", testUsersAheadExact},
	{"users_ahead_abandoned", testUsersAheadAbandoned},
	{"invalid_room", testInvalidRoom},
	{"cancelled_context", testCancelledContext},
	{"concurrent_join_poll", testConcurrency},
	{"random_crowd", testRandomCrowd},
	{"burst_at_full_rate", testBurstAtFullRate},
	{"epoch", testEpoch},
	{"store_loss_keeps_order", testStoreLoss},
	{"store_loss_noticed_by_a_ticket", testStoreLossNoticed},
	{"store_loss_keeps_the_rate", testStoreLossRate},
	{"recount_a_pass_issued_alone", testRecount},
	{"presence", testPresence},
	{"once", testOnce},
	{"idle_room_is_no_loss", testIdleRoomNoLoss},
	{"random_order_is_independent", testRandomOrder},
	{"random_then_fifo_keeps_order", testRandomThenFIFO},
	{"prequeue_admits_nobody", testPrequeue},
	{"event_start_drops_earlier_sessions", testEventDropsSessions},
	{"event_limits_then_base", testEventLimits},
	{"shuffle_at_start", testShuffleAtStart},
	{"shuffle_is_uniform", testShuffleUniform},
	{"shuffle_skips_abandoned", testShuffleAbandoned},
	{"event_ends_with_pending_shuffle", testShuffleOutlivesEvent},
	{"stored_settings_win", testStoredSettingsWin},
	{"settings_change_applies", testSettingsChange},
	{"settings_overwrite", testSettingsOverwrite},
	{"settings_trail", testSettingsTrail},
	{"settings_after_deletion", testSettingsAfterDeletion},
	{"history", testHistory},
	{"room_keys", testRoomKeys},
	{"revocations", testRevocations},
	{"slots", testSlots},
	{"sold_out_closes_to_newcomers", testSoldOut},
}

// limits are the suite's usual settings: small enough to fill, long enough to watch.
func limits() admission.Limits {
	return admission.Limits{
		Capacity: 3, PerMinute: 3, Session: 2 * time.Minute, Renewal: true,
		Hold: 5 * time.Minute, Grace: 40 * time.Second, Refresh: 20 * time.Second,
	}
}

// rateFree is how long after an admission it no longer counts in the rate window.
const rateFree = admission.RateWindow

// expiry is when a session or grant that starts at t and lasts d ends: stores round it up
// to a whole second of store time (see admission.Room).
func expiry(t time.Time, d time.Duration) time.Time {
	ms := t.Add(d).UnixMilli()
	return time.UnixMilli((ms + 999) / 1000 * 1000)
}

func testClock(r *roomTest) {
	l := limits()
	s0 := r.stats(l)
	r.h.Advance(90 * time.Second)
	s1 := r.stats(l)
	if d := s1.Now.Sub(s0.Now); d != 90*time.Second {
		r.t.Errorf("Advance(90s) moved the store's clock by %v", d)
	}
	res := r.join(l)
	rn := r.renew(refOf(res), l)
	if !sameMs(rn.Now, r.h.Now()) {
		r.t.Errorf("Renew: Now %s, want the harness clock %s", ts(rn.Now), ts(r.h.Now()))
	}
}

// 1. A room that is not busy is invisible: the first visitor goes straight in.
func testTransparent(r *roomTest) {
	l := limits()
	a := r.join(l)
	r.wantAdmitted("first Join", a)
	r.wantExpires("first Join", a.Expires, expiry(a.Now, l.Session))
	r.wantStats("first Join", a.Stats, 1, 0, 1, 1)
	if a.UsersAhead != 0 || a.Requeued {
		r.t.Errorf("first Join: %s", fmtResult(a))
	}

	r.h.Advance(time.Second)
	b := r.join(l)
	r.wantAdmitted("second Join", b)
	r.wantStats("second Join", b.Stats, 2, 0, 2, 2)

	// A poll of an admitted session answers Admitted and does not extend it.
	r.h.Advance(10 * time.Second)
	p := r.poll(refOf(b), l)
	r.wantAdmitted("poll of an admitted session", p)
	r.wantExpires("poll of an admitted session", p.Expires, b.Expires)
	r.wantStats("poll of an admitted session", p.Stats, 2, 0, 2, 2)
}

// 2. Never more active sessions than Capacity.
func testCapacity(r *roomTest) {
	l := limits()
	r.fill(l, 3)
	w1 := r.join(l)
	r.wantWaiting("4th Join", w1, 0)
	r.wantStats("4th Join", w1.Stats, 3, 1, 3, 3)
	w2 := r.join(l)
	r.wantWaiting("5th Join", w2, 1)
	r.wantStats("5th Join", w2.Stats, 3, 2, 3, 3)

	// The rate window clears; capacity alone keeps the waiters out.
	r.h.Advance(rateFree)
	p1 := r.poll(refOf(w1), l)
	r.wantWaiting("4th visitor, rate window clear", p1, 0)
	p2 := r.poll(refOf(w2), l)
	r.wantWaiting("5th visitor, rate window clear", p2, 1)
	r.wantStats("rate window clear", p2.Stats, 3, 2, 3, 0)
}

// 3. Never more than PerMinute grants in a window, with room to spare.
func testRate(r *roomTest) {
	l := limits()
	l.Capacity, l.PerMinute = 10, 2
	t0 := r.h.Now()
	r.wantAdmitted("1st Join", r.join(l))
	r.wantAdmitted("2nd Join", r.join(l))
	c := r.join(l)
	r.wantWaiting("3rd Join, rate spent", c, 0)
	r.wantStats("3rd Join", c.Stats, 2, 1, 2, 2)

	r.h.Advance(59 * time.Second)
	p := r.poll(refOf(c), l)
	r.wantWaiting("3rd visitor 59 s later", p, 0)
	r.wantStats("59 s later", p.Stats, 2, 1, 2, 2)
	// The window frees its slot in a second: that is when to poll, not 20 s from now.
	if want := t0.Add(rateFree); !sameMs(p.NextPoll, want) {
		r.t.Errorf("59 s later: NextPoll %s, want %s, when the rate window frees a slot", ts(p.NextPoll), ts(want))
	}

	r.advanceTo(p.NextPoll)
	p = r.poll(refOf(c), l)
	r.wantAdmitted("3rd visitor 60 s later", p)
	r.wantStats("60 s later", p.Stats, 3, 0, 3, 1)
}

// 3b. An admission counts in the rate window for exactly RateWindow, to the millisecond.
func testRateBoundary(r *roomTest) {
	l := limits()
	l.Capacity, l.PerMinute = 10, 2
	t0 := r.align(time.Second, 500*time.Millisecond) // mid-second: no rounding to whole seconds
	r.wantAdmitted("1st Join", r.join(l))
	r.wantAdmitted("2nd Join", r.join(l))
	c := r.join(l)
	r.wantWaiting("3rd Join", c, 0)

	r.advanceTo(t0.Add(rateFree - time.Millisecond))
	st := r.stats(l)
	r.wantStats("last instant of the window", st, 2, 1, 2, 2)
	p := r.poll(refOf(c), l)
	r.wantWaiting("3rd visitor at the last instant of the window", p, 0)
	if want := p.Now.Add(admission.MinPollGap); !sameMs(p.NextPoll, want) {
		r.t.Errorf("last instant of the window: NextPoll %s, want %s (the slot frees sooner than MinPollGap)", ts(p.NextPoll), ts(want))
	}

	// 1 ms later the admissions have left the window.
	r.h.Advance(time.Millisecond)
	st = r.stats(l)
	r.wantStats("first instant after the window", st, 2, 1, 2, 0)
	p = r.poll(refOf(c), l)
	r.wantAdmitted("3rd visitor at the first instant after the window", p)
	r.wantStats("after the window", p.Stats, 3, 0, 3, 1)
}

// 4. A free slot goes to the earliest live waiter, whoever's poll finds it.
func testFIFO(r *roomTest) {
	l := limits()
	x := r.fill(l, 3)
	a := r.join(l)
	b := r.join(l)
	r.h.Advance(rateFree)
	r.release(refOf(x[0]))

	pb := r.poll(refOf(b), l)
	r.wantWaiting("B polls first", pb, 0)
	r.wantStats("B polls first: A granted", pb.Stats, 3, 1, 3, 1)

	r.h.Advance(5 * time.Second)
	pa := r.poll(refOf(a), l)
	r.wantAdmitted("A claims its grant", pa)
	r.wantExpires("A claims its grant", pa.Expires, expiry(pa.Now, l.Session))
	r.wantStats("A claims its grant", pa.Stats, 3, 1, 4, 1)

	r.h.Advance(5 * time.Second)
	r.wantWaiting("B while the room is full", r.poll(refOf(b), l), 0)
	r.release(refOf(x[1]))
	pb = r.poll(refOf(b), l)
	r.wantAdmitted("B after a second release", pb)
	r.wantStats("B admitted", pb.Stats, 3, 0, 5, 2)
}

// 4b. One operation grants every slot it may, in ticket order.
func testFIFOInOrder(r *roomTest) {
	l := limits()
	x := r.fill(l, 3)
	a, b, c := r.join(l), r.join(l), r.join(l)
	r.h.Advance(rateFree)
	r.release(refOf(x[0]))
	r.release(refOf(x[1]))

	pc := r.poll(refOf(c), l)
	r.wantWaiting("C polls with two free slots", pc, 0)
	r.wantStats("C polls with two free slots", pc.Stats, 3, 1, 3, 2)
	r.wantAdmitted("B", r.poll(refOf(b), l))
	r.wantAdmitted("A", r.poll(refOf(a), l))
	r.wantWaiting("C again", r.poll(refOf(c), l), 0)
}

// 5. A waiter who left does not hold up the queue, and costs no grant.
func testAbandonment(r *roomTest) {
	l := limits()
	l.Session = time.Hour // the room stays full while A's place runs out
	x := r.fill(l, 3)
	a := r.join(l)
	b := r.join(l)
	for elapsed := time.Duration(0); elapsed < l.Hold+admission.LiveBucket; elapsed += 20 * time.Second {
		r.h.Advance(20 * time.Second)
		r.wantWaiting("B keeps polling", r.poll(refOf(b), l), -1)
	}
	p := r.poll(refOf(b), l)
	r.wantWaiting("B after A's hold", p, 0)
	r.wantStats("B after A's hold", p.Stats, 3, 1, 3, 0)

	r.release(refOf(x[0]))
	p = r.poll(refOf(b), l)
	r.wantAdmitted("B after a release", p)
	r.wantStats("B admitted, A skipped", p.Stats, 3, 0, 4, 1)

	pa := r.poll(refOf(a), l)
	r.wantRequeued("A returns", pa, b.Ticket)
}

// 5a. A free slot goes to the first live waiter at its next poll, however many abandoned
// places stand before it (more than one operation may pass one at a time: a block at a time,
// admission.Block), and joins and polls stay correct meanwhile.
func testAbandonedRun(r *roomTest) {
	l := limits()
	l.Session = time.Hour
	x := r.fill(l, 3)
	const n = 2*admission.MaxScan + admission.Block // more than two operations pass one by one
	for range n {
		r.join(l) // and never comes back
	}
	r.h.Advance(l.Hold + 2*admission.LiveBucket) // every one of their places has lapsed
	a := r.join(l)
	r.wantWaiting("A, behind the lapsed places, in a full room", a, 0)
	r.release(refOf(x[0]))
	r.wantAdmitted("A at its first poll after a slot freed", r.poll(refOf(a), l))
	b := r.join(l)
	r.wantWaiting("B, after A took the slot", b, 0)
	r.release(refOf(x[1]))
	r.wantAdmitted("B", r.poll(refOf(b), l))
}

// 5b. A place is held for at least Hold, and lost when the LiveBucket after Hold ends:
// exactly at the start of bucket Bucket(last poll)+HoldBuckets+1.
func testLiveness(r *roomTest) {
	l := limits()
	l.Session = time.Hour
	r.fill(l, 3)
	t0 := r.align(admission.LiveBucket, admission.LiveBucket/2)
	a, b, c := r.join(l), r.join(l), r.join(l)

	r.advanceTo(t0.Add(l.Hold))
	r.wantWaiting("A exactly Hold after its last poll", r.poll(refOf(a), l), 0)

	lost := time.UnixMilli((admission.Bucket(t0.UnixMilli()) + admission.HoldBuckets(l) + 1) * admission.LiveBucket.Milliseconds())
	r.advanceTo(lost.Add(-time.Millisecond))
	st := r.stats(l)
	r.wantStats("last instant B and C are live", st, 3, 3, 3, 0)
	r.wantWaiting("B at the last instant of its place", r.poll(refOf(b), l), 1)

	r.h.Advance(time.Millisecond)
	st = r.stats(l)
	r.wantStats("C's place just ran out", st, 3, 2, 3, 0)
	r.wantRequeued("C at the first instant after its place", r.poll(refOf(c), l), b.Ticket)
}

// 6. An unclaimed grant is reclaimed after Grace; its holder starts again at the back.
func testGrace(r *roomTest) {
	l := limits()
	x := r.fill(l, 3)
	a := r.join(l)
	b := r.join(l)
	r.h.Advance(rateFree)
	r.release(refOf(x[0]))

	pb := r.poll(refOf(b), l)
	granted := pb.Now
	r.wantWaiting("B's poll grants A", pb, 0)
	r.wantStats("A granted", pb.Stats, 3, 1, 3, 1)

	r.advanceTo(expiry(granted, l.Grace).Add(-time.Millisecond))
	r.wantStats("last instant of A's grace", r.stats(l), 3, 1, 3, 1)
	r.h.Advance(time.Millisecond)
	r.wantStats("A's grace over", r.stats(l), 2, 1, 3, 0)

	pb = r.poll(refOf(b), l)
	r.wantAdmitted("B after A's grace", pb)
	r.wantStats("B admitted", pb.Stats, 3, 0, 4, 1)

	pa := r.poll(refOf(a), l)
	r.wantRequeued("A polls after its grace", pa, b.Ticket)
	if pa.Admitted || pa.UsersAhead != 0 {
		r.t.Errorf("A requeued into a full room: %s, want waiting first in line", fmtResult(pa))
	}
}

// 7. Release frees a slot at once; releasing what is not a session changes nothing.
func testRelease(r *roomTest) {
	l := limits()
	x := r.fill(l, 3)
	w := r.join(l)
	r.h.Advance(rateFree)

	r.release(refOf(x[0]))
	st := r.stats(l)
	r.wantStats("after Release", st, 2, 1, 3, 0)
	if again := r.stats(l); !sameStats(again, st) {
		r.t.Errorf("Stats changed the room: %+v, then %+v", st, again)
	}
	p := r.poll(refOf(w), l)
	r.wantAdmitted("waiter after a Release", p)
	r.wantStats("waiter admitted", p.Stats, 3, 0, 4, 1)

	for _, ref := range []store.Ref{
		refOf(x[0]), // already released
		{Number: x[1].Ticket, Epoch: x[1].Epoch + 1},
		{Number: w.Ticket + 100, Epoch: w.Epoch},
		{Number: -1, Epoch: w.Epoch},
		{},
	} {
		r.release(ref)
	}
	r.wantStats("after releasing unknown sessions", r.stats(l), 3, 0, 4, 1)
	for _, s := range []store.Result{x[1], x[2], p} {
		if rn := r.renew(refOf(s), l); !rn.Active {
			r.t.Errorf("session %d ended by a Release of another session", s.Ticket)
		}
	}
	if err := r.h.Store.Release(r.ctx, roomID(r.t), store.Ref{Number: 1, Epoch: 1}); err != nil {
		r.t.Errorf("Release in a room never used: %v", err)
	}

	r.wantRequeued("poll of a released session", r.poll(refOf(x[0]), l), p.Ticket)
}

// 7b. Releasing an unclaimed grant frees its slot too.
func testReleaseGrant(r *roomTest) {
	l := limits()
	x := r.fill(l, 3)
	a := r.join(l)
	b := r.join(l)
	r.h.Advance(rateFree)
	r.release(refOf(x[0]))
	r.wantWaiting("B's poll grants A", r.poll(refOf(b), l), 0)

	r.release(refOf(a))
	r.wantStats("A's grant released", r.stats(l), 2, 1, 3, 0)
	pa := r.poll(refOf(a), l)
	r.wantRequeued("A after its grant was released", pa, b.Ticket)
	r.wantAdmitted("B", r.poll(refOf(b), l))
}

// 8. Renew extends an active session to now+Session.
func testRenewExtends(r *roomTest) {
	l := limits()
	x := r.join(l)
	r.h.Advance(30 * time.Second)
	rn := r.renew(refOf(x), l)
	r.wantActive("Renew 30 s in", rn, expiry(r.h.Now(), l.Session))

	// Past the first expiry: the renewal holds.
	r.advanceTo(x.Expires.Add(10 * time.Second))
	r.wantStats("after the original expiry", r.stats(l), 1, 0, 1, -1)
	rn = r.renew(refOf(x), l)
	r.wantActive("Renew after the original expiry", rn, expiry(r.h.Now(), l.Session))
	p := r.poll(refOf(x), l)
	r.wantAdmitted("poll after renewals", p)
	r.wantExpires("poll after renewals", p.Expires, rn.Expires)
}

// 8b. Without Renewal a session lasts exactly Session from its claim.
func testRenewDisabled(r *roomTest) {
	l := limits()
	l.Renewal = false
	x := r.join(l)
	r.h.Advance(30 * time.Second)
	rn := r.renew(refOf(x), l)
	r.wantActive("Renew with Renewal off", rn, x.Expires)

	r.advanceTo(x.Expires)
	if rn := r.renew(refOf(x), l); rn.Active {
		r.t.Errorf("Renew at Expires with Renewal off: still active")
	}
	r.wantStats("session over", r.stats(l), 0, 0, 1, -1)
}

// 8c. Renew of anything but an active session is an answer, not an error: Active false.
func testRenewUnknown(r *roomTest) {
	l := limits()
	x := r.fill(l, 3)
	w := r.join(l)
	for _, tc := range []struct {
		name string
		ref  store.Ref
	}{
		{"next ticket", store.Ref{Number: w.Ticket + 1, Epoch: w.Epoch}},
		{"far future ticket", store.Ref{Number: w.Ticket + 1000, Epoch: w.Epoch}},
		{"negative ticket", store.Ref{Number: -1, Epoch: w.Epoch}},
		{"other epoch", store.Ref{Number: x[0].Ticket, Epoch: x[0].Epoch + 1}},
		{"zero Ref", store.Ref{}},
		{"waiting ticket", refOf(w)},
	} {
		if rn := r.renew(tc.ref, l); rn.Active {
			r.t.Errorf("Renew of a %s (%+v): Active", tc.name, tc.ref)
		}
	}
	r.wantStats("after renewing unknown sessions", r.stats(l), 3, 1, 3, 3)
	r.wantWaiting("the waiter", r.poll(refOf(w), l), 0)
}

// 8d. A grant is not a session until its holder claims it by polling; Renew neither claims
// nor drops it.
func testRenewPending(r *roomTest) {
	l := limits()
	x := r.fill(l, 3)
	a := r.join(l)
	b := r.join(l)
	r.h.Advance(rateFree)
	r.release(refOf(x[0]))
	r.wantWaiting("B's poll grants A", r.poll(refOf(b), l), 0)

	if rn := r.renew(refOf(a), l); rn.Active {
		r.t.Errorf("Renew of an unclaimed grant: Active")
	}
	r.wantStats("after Renew of the grant", r.stats(l), 3, 1, 3, 1)
	r.h.Advance(time.Second)
	pa := r.poll(refOf(a), l)
	r.wantAdmitted("A claims its grant after the Renew", pa)
	r.wantExpires("A claims", pa.Expires, expiry(pa.Now, l.Session))
}

// 8e. A session ends at its expiry instant; its slot is free and Renew cannot revive it.
func testSessionExpiry(r *roomTest) {
	l := limits()
	x := r.fill(l, 3)
	w := r.join(l)

	r.advanceTo(x[0].Expires.Add(-time.Millisecond))
	r.wantStats("last instant of the sessions", r.stats(l), 3, 1, 3, 0)
	r.wantWaiting("waiter before the expiry", r.poll(refOf(w), l), 0)

	r.h.Advance(time.Millisecond)
	if rn := r.renew(refOf(x[0]), l); rn.Active {
		r.t.Errorf("Renew at Expires: still active (Expires %s)", ts(rn.Expires))
	}
	r.wantStats("sessions expired", r.stats(l), 0, 1, 3, 0)
	p := r.poll(refOf(w), l)
	r.wantAdmitted("waiter after the expiry", p)
	r.wantStats("waiter admitted", p.Stats, 1, 0, 4, 1)
	r.wantRequeued("poll of an expired session", r.poll(refOf(x[1]), l), p.Ticket)
}

// 9a. QueueAll admits nobody, whatever the room; lifting it admits in ticket order.
func testQueueAll(r *roomTest) {
	l := limits()
	l.QueueAll = true
	ws := r.queue(l, 5, 0, "under QueueAll")
	r.h.Advance(time.Second)
	r.stillWaiting(l, ws, "under QueueAll")
	r.wantStats("QueueAll", r.stats(l), 0, 5, 0, 0)

	l.QueueAll = false
	p := r.poll(refOf(ws[4]), l)
	r.wantWaiting("the last waiter polls first after QueueAll", p, 1)
	r.wantStats("QueueAll lifted", p.Stats, 3, 2, 0, 3)
	for i := range 3 {
		r.wantAdmitted(fmt.Sprintf("waiter %d after QueueAll", i), r.poll(refOf(ws[i]), l))
	}
	r.wantWaiting("waiter 3 after QueueAll", r.poll(refOf(ws[3]), l), 0)
}

// 9b. Reject admits nobody, even into an empty room.
func testReject(r *roomTest) {
	l := limits()
	l.Method = admission.Reject
	ws := r.queue(l, 3, 0, "under Reject")
	r.h.Advance(rateFree)
	r.stillWaiting(l, ws, "under Reject")
	r.wantStats("Reject", r.stats(l), 0, 3, 0, 0)
}

// 9c. Passthrough admits everyone, past capacity and rate, and still counts them.
func testPassthrough(r *roomTest) {
	l := limits()
	r.fill(l, 3)
	w1, w2 := r.join(l), r.join(l)
	r.wantWaiting("2nd waiter before Passthrough", w2, 1)

	l.Method = admission.Passthrough
	r.wantAdmitted("waiter 2 under Passthrough", r.poll(refOf(w2), l))
	r.wantAdmitted("waiter 1 under Passthrough", r.poll(refOf(w1), l))
	for i := range 8 {
		r.wantAdmitted(fmt.Sprintf("Join %d under Passthrough", i), r.join(l))
	}
	st := r.stats(l)
	r.wantStats("Passthrough", st, 13, 0, 13, -1)
}

// 10a. A ticket the room does not know is replaced by a fresh one at the back.
func testUnknownTickets(r *roomTest) {
	l := limits()
	l.Session = time.Hour
	r.fill(l, 3)
	w := r.join(l)
	last := w.Ticket
	for _, tc := range []struct {
		name string
		ref  store.Ref
	}{
		{"next ticket", store.Ref{Number: w.Ticket + 1, Epoch: w.Epoch}},
		{"future ticket", store.Ref{Number: w.Ticket + 1000, Epoch: w.Epoch}},
		{"negative ticket", store.Ref{Number: -1, Epoch: w.Epoch}},
		{"other epoch", store.Ref{Number: w.Ticket, Epoch: w.Epoch + 1}},
		{"zero Ref", store.Ref{}},
	} {
		p := r.poll(tc.ref, l)
		r.wantRequeued("poll of a "+tc.name, p, last)
		last = p.Ticket
	}
	p := r.poll(refOf(w), l)
	r.wantWaiting("the real ticket after the unknown ones", p, 0)
	r.wantStats("after requeues", p.Stats, 3, 6, 3, 3)
}

// 10b. A place lost by not polling is gone for good; its holder goes to the back.
func testLostPlace(r *roomTest) {
	l := limits()
	l.Session = time.Hour
	x := r.fill(l, 3)
	a := r.join(l)
	b := r.join(l)
	for elapsed := time.Duration(0); elapsed < l.Hold+admission.LiveBucket; elapsed += 20 * time.Second {
		r.h.Advance(20 * time.Second)
		r.wantWaiting("B keeps polling", r.poll(refOf(b), l), -1)
	}
	pa := r.poll(refOf(a), l)
	r.wantRequeued("A after its hold", pa, b.Ticket)
	if pa.Admitted || pa.UsersAhead != 1 {
		r.t.Errorf("A after its hold: %s, want waiting behind B", fmtResult(pa))
	}
	r.wantStats("A requeued", pa.Stats, 3, 2, 3, 0)

	again := r.poll(refOf(a), l)
	r.wantRequeued("A's old ticket again", again, pa.Ticket)

	// A free slot does not revive the old ticket: B is next.
	r.release(refOf(x[0]))
	old := r.poll(refOf(a), l)
	r.wantRequeued("A's old ticket with a free slot", old, again.Ticket)
	if old.Admitted {
		r.t.Errorf("A's old ticket admitted ahead of B")
	}
	r.wantAdmitted("B", r.poll(refOf(b), l))
	r.wantWaiting("A's first new ticket", r.poll(refOf(pa), l), 0)
}

// 11a. With nobody abandoning, UsersAhead is each waiter's exact position.
func testUsersAheadExact(r *roomTest) {
	l := limits()
	l.Session = time.Hour
	x := r.fill(l, 3)
	ws := r.queue(l, 10, 0, "behind a full room")
	r.h.Advance(10 * time.Second)
	for i, w := range ws {
		p := r.poll(refOf(w), l)
		r.wantWaiting(fmt.Sprintf("waiter %d", i), p, int64(i))
		r.wantStats(fmt.Sprintf("waiter %d", i), p.Stats, 3, 10, 3, 3)
	}

	r.h.Advance(rateFree)
	r.release(refOf(x[0]))
	r.wantAdmitted("waiter 0 after a release", r.poll(refOf(ws[0]), l))
	for i, w := range ws[1:] {
		r.wantWaiting(fmt.Sprintf("waiter %d after a release", i+1), r.poll(refOf(w), l), int64(i))
	}
}

// 11b. With abandoned places in the queue, UsersAhead is an estimate, but it never exceeds the
// live waiters minus one, and it grows with the ticket number.
func testUsersAheadAbandoned(r *roomTest) {
	l := limits()
	l.Session = time.Hour
	r.fill(l, 3)
	var ws []store.Result
	for range 10 {
		ws = append(ws, r.join(l))
	}
	gone := map[int]bool{1: true, 4: true, 5: true, 8: true}
	round := func(what string) []int64 {
		var ahead []int64
		for i, w := range ws {
			if gone[i] {
				continue
			}
			p := r.poll(refOf(w), l)
			r.wantWaiting(fmt.Sprintf("%s: waiter %d", what, i), p, -1)
			ahead = append(ahead, p.UsersAhead)
		}
		if !slices.IsSorted(ahead) {
			r.t.Errorf("%s: UsersAhead in ticket order %v, want non-decreasing", what, ahead)
		}
		return ahead
	}
	for elapsed := time.Duration(0); elapsed < l.Hold+admission.LiveBucket; elapsed += 20 * time.Second {
		r.h.Advance(20 * time.Second)
		round(fmt.Sprintf("%v in", elapsed+20*time.Second))
	}
	r.h.Advance(20 * time.Second)
	ahead := round("after the hold")
	st := r.stats(l)
	r.wantStats("after the hold", st, 3, 6, 3, 0)
	if ahead[0] != 0 {
		r.t.Errorf("first live waiter: UsersAhead %d, want 0", ahead[0])
	}
	if n := ahead[len(ahead)-1]; n > 5 || n < 1 {
		r.t.Errorf("last live waiter: UsersAhead %d, want 1 to 5 (6 live waiters)", n)
	}
}

// 12a. Every method refuses a room ID a key or a cookie cannot carry.
func testInvalidRoom(r *roomTest) {
	l := limits()
	ref := store.Ref{Number: 0, Epoch: 1}
	for _, id := range []string{"", "a b", strings.Repeat("a", 65), "x/y", "{x}", "é", "a:b", "a\x00"} {
		_, errJoin := r.h.Store.Join(r.ctx, id, l)
		_, errPoll := r.h.Store.Poll(r.ctx, id, ref, l)
		_, errRenew := r.h.Store.Renew(r.ctx, id, ref, l)
		errRelease := r.h.Store.Release(r.ctx, id, ref)
		_, errStats := r.h.Store.Stats(r.ctx, id, l)
		for _, e := range []struct {
			op  string
			err error
		}{{"Join", errJoin}, {"Poll", errPoll}, {"Renew", errRenew}, {"Release", errRelease}, {"Stats", errStats}} {
			if !errors.Is(e.err, store.ErrInvalidRoom) {
				r.t.Errorf("%s(%q): error %v, want store.ErrInvalidRoom", e.op, id, e.err)
			}
		}
	}
	// The longest valid ID works.
	long := (r.room + strings.Repeat("x", 64))[:64]
	if res, err := r.h.Store.Join(r.ctx, long, l); err != nil || !res.Admitted {
		r.t.Errorf("Join(%q) (64 characters): %v, admitted %t", long, err, res.Admitted)
	}
}

// 12b. A cancelled context is a system failure: an error from every method, no panic.
func testCancelledContext(r *roomTest) {
	l := limits()
	res := r.join(l)
	ctx, cancel := context.WithCancel(r.ctx)
	cancel()
	_, errJoin := r.h.Store.Join(ctx, r.room, l)
	_, errPoll := r.h.Store.Poll(ctx, r.room, refOf(res), l)
	_, errRenew := r.h.Store.Renew(ctx, r.room, refOf(res), l)
	errRelease := r.h.Store.Release(ctx, r.room, refOf(res))
	_, errStats := r.h.Store.Stats(ctx, r.room, l)
	for _, e := range []struct {
		op  string
		err error
	}{{"Join", errJoin}, {"Poll", errPoll}, {"Renew", errRenew}, {"Release", errRelease}, {"Stats", errStats}} {
		if e.err == nil {
			r.t.Errorf("%s with a cancelled context: no error", e.op)
		}
	}
}

// 13. Concurrent operations on one room never admit more than the limits allow.
func testConcurrency(r *roomTest) {
	l := limits()
	l.Capacity, l.PerMinute = 5, 5
	const (
		goroutines = 32
		joins      = 10 // per goroutine
		polls      = 10 // per join
	)
	var (
		mu       sync.Mutex
		tickets  = map[int64]bool{}
		admitted = map[int64]bool{}
		wg       sync.WaitGroup
	)
	check := func(op string, res store.Result, err error) bool {
		if err != nil {
			r.t.Errorf("%s: %v", op, err)
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		if op == "Join" {
			if tickets[res.Ticket] {
				r.t.Errorf("Join: ticket %d issued twice", res.Ticket)
			}
			tickets[res.Ticket] = true
		}
		if res.Requeued {
			r.t.Errorf("%s at a fixed clock: requeued: %s", op, fmtResult(res))
		}
		if res.Admitted {
			admitted[res.Ticket] = true
		}
		if res.Active > l.Capacity || res.Window > l.PerMinute {
			r.t.Errorf("%s: %s exceeds the limits", op, fmtResult(res))
		}
		return true
	}
	for range goroutines {
		wg.Go(func() {
			for range joins {
				res, err := r.h.Store.Join(r.ctx, r.room, l)
				if !check("Join", res, err) {
					return
				}
				ref := refOf(res)
				for range polls {
					res, err := r.h.Store.Poll(r.ctx, r.room, ref, l)
					if !check("Poll", res, err) {
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if len(admitted) > int(l.Capacity) {
		r.t.Errorf("%d distinct tickets admitted, capacity %d", len(admitted), l.Capacity)
	}
	if len(admitted) != int(l.Capacity) {
		r.t.Errorf("%d distinct tickets admitted, want %d (the first joiners)", len(admitted), l.Capacity)
	}
	r.wantStats("after the crowd", r.stats(l), 5, goroutines*joins-5, 5, 5)
}

// 14. A crowd in simulated time: the invariants hold at every step, whatever the seed.
func testRandomCrowd(r *roomTest) {
	seeds := []uint64{1, rand.Uint64()}
	if s := os.Getenv("STORETEST_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			r.t.Fatalf("STORETEST_SEED: %v", err)
		}
		seeds = []uint64{seed}
	}
	for _, seed := range seeds {
		r.t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("seed %d; rerun it with STORETEST_SEED=%d", seed, seed)
				}
			})
			simulateCrowd(newRoomTest(t, r.h), seed)
		})
	}
}

// 15. A room's answers carry one non-zero epoch, and Refs with it work.
func testEpoch(r *roomTest) {
	l := limits()
	a := r.join(l)
	if a.Epoch == 0 {
		r.t.Fatalf("Join: Epoch 0")
	}
	b := r.join(l)
	if b.Epoch != a.Epoch {
		r.t.Errorf("second Join: Epoch %d, first %d", b.Epoch, a.Epoch)
	}
	r.h.Advance(time.Second)
	p := r.poll(store.Ref{Number: a.Ticket, Epoch: a.Epoch}, l)
	r.wantAdmitted("poll with the Join's epoch", p)
	if rn := r.renew(store.Ref{Number: b.Ticket, Epoch: b.Epoch}, l); !rn.Active {
		r.t.Errorf("Renew with the Join's epoch: not active")
	}
	if rn := r.renew(store.Ref{Number: b.Ticket, Epoch: b.Epoch + 1}, l); rn.Active {
		r.t.Errorf("Renew with another epoch: active")
	}
	q := r.poll(store.Ref{Number: a.Ticket, Epoch: a.Epoch + 1}, l)
	r.wantRequeued("poll with another epoch", q, b.Ticket)
	r.wantStats("after a poll with another epoch", q.Stats, 3, 0, 3, 3)
}

// 16a. The store loses the room mid-queue (a Redis restart). The first visitor after the loss
// comes from an instance that saw the room: the store starts it in recovery and admits nobody
// for Limits.Recovery. Admitted visitors are counted again as they renew; queued visitors
// retake their places, in their old order, ahead of everyone the new epoch queues.
func testStoreLoss(r *roomTest) {
	if r.h.Forget == nil {
		r.t.Skip("the harness cannot make the store lose its rooms")
	}
	l := limits()
	l.Recovery = 30 * time.Second
	l.Session = time.Hour // slots free only by release here
	x := r.fill(l, 3)
	var w []store.Result
	for range 4 {
		w = append(w, r.join(l))
	}
	old := x[0].Epoch
	r.h.Advance(10 * time.Second)
	r.h.Forget()
	r.h.Advance(time.Second)

	l.LastEpoch = old
	r.newEpoch()
	n := r.join(l)
	if n.Epoch == old || n.Admitted {
		r.t.Fatalf("first Join after the loss: %s, want a new epoch and no admission during recovery", fmtResult(n))
	}
	// Waiters come back in any order; each retakes its place, ahead of the newcomer.
	for _, i := range []int{2, 0, 3} {
		p := r.poll(refOf(w[i]), l)
		if p.Requeued || p.Admitted || p.Epoch != old || p.Ticket != w[i].Ticket {
			r.t.Fatalf("waiter %d after the loss: %s, want its old place", i, fmtResult(p))
		}
	}
	if p := r.poll(refOf(w[3]), l); p.UsersAhead != 2 {
		r.t.Errorf("waiter 3 after waiters 0 and 2 came back: %d ahead, want 2", p.UsersAhead)
	}
	if p := r.poll(refOf(n), l); p.UsersAhead != 3 || p.Admitted {
		r.t.Errorf("the newcomer: %s, want 3 ahead (the returning waiters)", fmtResult(p))
	}
	// Two of the three admitted renew: they are active again, and so counted.
	for _, i := range []int{0, 1} {
		if rn := r.renew(refOf(x[i]), l); !rn.Active || !sameMs(rn.Expires, expiry(rn.Now, l.Session)) {
			r.t.Fatalf("admitted %d renewing after the loss: %+v, want active again", i, rn)
		}
	}
	if st := r.stats(l); st.Active != 2 || st.Waiting != 4 {
		r.t.Errorf("after the returns: active %d waiting %d, want 2 and 4", st.Active, st.Waiting)
	}
	// Nobody is admitted during recovery, even with a slot free.
	if p := r.poll(refOf(w[0]), l); p.Admitted {
		r.t.Fatalf("admitted during recovery: %s", fmtResult(p))
	}
	// Waiter 1 comes back late, still within its hold: its place is still ahead of 2.
	r.h.Advance(l.Recovery)
	if p := r.poll(refOf(w[1]), l); p.Epoch != old || p.Admitted || p.UsersAhead != 0 {
		// The poll also ran admission: waiter 0 got the one free slot, so 1 is next.
		r.t.Errorf("waiter 1 returning after recovery: %s, want next in line", fmtResult(p))
	}
	if p := r.poll(refOf(w[0]), l); !p.Admitted || p.Epoch != old {
		r.t.Fatalf("waiter 0 after recovery: %s, want admitted", fmtResult(p))
	}
	// Then the rest in their old order, and the newcomer last.
	order := []store.Result{w[1], w[2], w[3], n}
	prev := x[0]
	for i, next := range order {
		r.release(refOf(prev))
		prev = next
		r.h.Advance(rateFree)
		for _, later := range order[i+1:] {
			if p := r.poll(refOf(later), l); p.Admitted {
				r.t.Fatalf("ticket %d (epoch %d) admitted before ticket %d", later.Ticket, later.Epoch, next.Ticket)
			}
		}
		if p := r.poll(refOf(next), l); !p.Admitted {
			r.t.Fatalf("ticket %d (epoch %d) not admitted in turn: %s", next.Ticket, next.Epoch, fmtResult(p))
		}
	}
}

// A store that implements store.Presence counts the distinct instances that said they serve
// a room within the window, each room apart.
func testPresence(r *roomTest) {
	p, ok := r.h.Store.(store.Presence)
	if !ok {
		r.t.Skip("the store does not implement store.Presence")
	}
	other := r.room + "-other"
	for i, step := range []struct {
		room, instance string
		want           int
	}{
		{r.room, "a", 1}, {r.room, "b", 2}, {r.room, "a", 2}, {other, "a", 1}, {r.room, "c", 3},
	} {
		n, err := p.Present(r.ctx, step.room, step.instance)
		if err != nil {
			r.t.Fatalf("Present %d: %v", i, err)
		}
		if n != step.want {
			r.t.Errorf("Present %d (%s in %s): %d instances, want %d", i, step.instance, step.room, n, step.want)
		}
	}
	if _, err := p.Present(r.ctx, "bad room id\n", "a"); !errors.Is(err, store.ErrInvalidRoom) {
		r.t.Errorf("Present with an invalid room: %v, want ErrInvalidRoom", err)
	}
}

// A store that implements store.Once records a key once per room until it lapses, at the
// store's time, and removes it only for the claim it names.
func testOnce(r *roomTest) {
	o, ok := r.h.Store.(store.Once)
	if !ok {
		r.t.Skip("the store does not implement store.Once")
	}
	claim := func(room, key string, ttl time.Duration) store.Claim {
		r.t.Helper()
		c, err := o.Claim(r.ctx, room, key, ttl)
		if err != nil {
			r.t.Fatalf("Claim %s %s: %v", room, key, err)
		}
		return c
	}
	t0 := r.h.Now().Truncate(time.Millisecond)
	a := claim(r.room, "q", time.Minute)
	if !a.First || !a.At.Equal(t0) || !a.Now.Equal(t0) {
		r.t.Fatalf("first claim: %+v, want first at %v", a, t0)
	}
	r.h.Advance(10 * time.Second)
	b := claim(r.room, "q", time.Minute)
	if b.First || !b.At.Equal(t0) || !b.Now.Equal(t0.Add(10*time.Second)) {
		r.t.Fatalf("second claim: %+v, want not first, at %v, now 10 s on", b, t0)
	}
	if c := claim(r.room+"-other", "q", time.Minute); !c.First {
		r.t.Fatalf("another room's claim of the same key: %+v, want first", c)
	}
	if c := claim(r.room, "q:1", time.Minute); !c.First {
		r.t.Fatalf("another key's claim: %+v, want first", c)
	}
	r.h.Advance(51 * time.Second) // a minute after the first claim: it lapsed
	c := claim(r.room, "q", time.Minute)
	if !c.First || !c.At.Equal(t0.Add(61*time.Second)) {
		r.t.Fatalf("claim after the first lapsed: %+v, want first, at now", c)
	}
	if err := o.Unclaim(r.ctx, r.room, "q", t0); err != nil {
		r.t.Fatal(err)
	}
	if d := claim(r.room, "q", time.Minute); d.First {
		r.t.Fatalf("unclaiming the lapsed claim removed the new one: %+v", d)
	}
	if err := o.Unclaim(r.ctx, r.room, "q", c.At); err != nil {
		r.t.Fatal(err)
	}
	if d := claim(r.room, "q", time.Minute); !d.First {
		r.t.Fatalf("claim after unclaiming: %+v, want first", d)
	}
	for _, bad := range []struct {
		room, key string
		ttl       time.Duration
	}{
		{"bad room\n", "q", time.Minute}, {r.room, "", time.Minute}, {r.room, "a b", time.Minute},
		{r.room, strings.Repeat("k", 129), time.Minute}, {r.room, "q", 0}, {r.room, "q", store.MaxOnceTTL + time.Millisecond},
	} {
		if _, err := o.Claim(r.ctx, bad.room, bad.key, bad.ttl); err == nil {
			r.t.Errorf("Claim(%q, %q, %v) succeeded, want an error", bad.room, bad.key, bad.ttl)
		}
	}
}

// A pass an instance issued alone while the store was unreachable (admission.Limits.
// Recount) names its ticket: the store counts its session when it comes back, takes the
// ticket's place out of the queue, and counts the admission in the rate window. Without
// Recount the same reference is no session.
func testRecount(r *roomTest) {
	l := limits()
	l.Session, l.Capacity = time.Hour, 5
	r.fill(l, 3) // the rate spent
	a, b := r.join(l), r.join(l)
	r.h.Advance(rateFree) // nobody polls meanwhile: A and B still wait
	la := l
	la.Admitted = r.h.Now().UnixMilli()
	if rn := r.renew(refOf(a), l); rn.Active {
		r.t.Fatalf("a waiting ticket renewed as a session without Recount: %+v", rn)
	}
	la.Recount = true
	if rn := r.renew(refOf(a), la); !rn.Active {
		r.t.Fatalf("a pass issued alone, renewed with Recount: %+v, want active", rn)
	}
	r.wantStats("after the recount", r.stats(l), 4, 1, 4, 1)
	r.wantAdmitted("A's ticket, polled again: its session", r.poll(refOf(a), l))
	if rn := r.renew(refOf(a), la); !rn.Active {
		r.t.Fatalf("the counted session renewed: %+v", rn)
	}
	r.wantStats("after a second renewal", r.stats(l), 4, 1, 4, 1)
	r.wantAdmitted("B, the one left waiting", r.poll(refOf(b), l))
}

// A store that lost the room rebuilds the rate window from the passes that come back: each
// carries its admission time, and one within the last minute counts again (at the moment it
// comes back, never less). So admissions after a loss do not go past the rate over any 60
// seconds that span it (a loss used to empty the window: 163 admissions in 60 s at 100).
func testStoreLossRate(r *roomTest) {
	if r.h.Forget == nil {
		r.t.Skip("the harness cannot make the store lose its rooms")
	}
	l := limits()
	l.Capacity, l.Recovery, l.Session = 10, 20*time.Second, time.Hour
	x := r.fill(l, 3) // the whole rate, admitted at once
	r.h.Advance(10 * time.Second)
	old := x[0].Epoch
	r.h.Forget()
	r.h.Advance(time.Second)
	l.LastEpoch = old
	r.newEpoch()
	for i, v := range x {
		la := l
		la.Admitted = v.Now.UnixMilli()
		if i == 2 {
			la.Admitted = 0 // a pass of an older version: no admission time, not counted
		}
		if rn := r.renew(refOf(v), la); !rn.Active {
			r.t.Fatalf("admitted %d renewing after the loss: %+v, want active again", i, rn)
		}
	}
	st := r.stats(l)
	r.wantStats("after two passes with their admission times came back", st, 3, 0, 2, 2)
	r.h.Advance(l.Recovery) // recovery is over; the window holds the two for 40 s more
	r.wantAdmitted("a newcomer after recovery, with one admission of the rate left", r.join(l))
	b := r.join(l)
	r.wantWaiting("the next newcomer: the rate is spent", b, 0)
	r.h.Advance(40*time.Second - time.Millisecond)
	r.wantWaiting("the next newcomer, the instant before the two leave the window", r.poll(refOf(b), l), 0)
	r.h.Advance(time.Millisecond)
	r.wantAdmitted("the next newcomer once they left", r.poll(refOf(b), l))
}

// 16b. A loss shows also when the first visitor after it knew nothing (say, every app
// instance restarted too) and a valid ticket of the old epoch turns up in the young room.
func testStoreLossNoticed(r *roomTest) {
	if r.h.Forget == nil {
		r.t.Skip("the harness cannot make the store lose its rooms")
	}
	l := limits()
	l.Recovery = 30 * time.Second
	r.fill(l, 3)
	w := r.join(l)
	r.h.Advance(10 * time.Second)
	r.h.Forget()
	r.h.Advance(time.Second)
	r.newEpoch()
	n := r.join(l) // no LastEpoch: nothing to tell it from a new room
	r.wantAdmitted("a visitor to what looks like a new room", n)
	p := r.poll(refOf(w), l)
	if p.Requeued || p.Epoch != w.Epoch {
		r.t.Fatalf("the old waiter: %s, want its old place", fmtResult(p))
	}
	if p.Admitted {
		r.t.Fatalf("the old waiter admitted while the loss is being recovered: %s", fmtResult(p))
	}
	r.h.Advance(l.Recovery)
	r.wantAdmitted("the old waiter after recovery", r.poll(refOf(w), l))
}

// 16c. A room that went idle and expired is no loss: a caller's old LastEpoch (seen longer
// than the hold ago, which callers do not pass) or an expired ticket changes nothing.
func testIdleRoomNoLoss(r *roomTest) {
	l := limits()
	l.Recovery = 30 * time.Second
	a := r.join(l)
	r.release(refOf(a))
	r.h.Advance(l.Hold + 2*time.Minute)
	r.newEpoch()
	b := r.join(l)
	r.wantAdmitted("first visitor to a room that expired", b)
	r.h.Advance(l.Hold + 2*time.Minute)
	r.newEpoch()
	c := r.join(l)
	r.wantAdmitted("later visitor", c)
}

// 17a. Random gives each free slot to whoever polls first once it frees, and spreads the
// waiters' polls at random: the order in which waiters get in is independent of their
// ticket order (Spearman's rank correlation near zero; under independence it is about
// normal with deviation 1/sqrt(n-1), and the test allows four).
func testRandomOrder(r *roomTest) {
	const n = 120
	rho := RandomRankCorrelation(r.t, r.h, r.room, n, 4)
	r.t.Logf("rank correlation of admission and ticket order over %d waiters: %.3f", n, rho)
	if limit := 4 / math.Sqrt(n-1); math.Abs(rho) > limit {
		r.t.Errorf("rank correlation of admission and ticket order %.3f, want within ±%.3f", rho, limit)
	}
}

// RandomRankCorrelation fills room with waiters under Random, all joining at one instant,
// and lets them in perRound at a time: each waiter polls when its last answer says
// (Result.NextPoll), and once perRound are in, their sessions end. It returns Spearman's
// rank correlation between ticket order and the order they got in. It serves the suite and
// stores' own larger runs.
func RandomRankCorrelation(t *testing.T, h Harness, room string, waiters, perRound int) float64 {
	t.Helper()
	r := &roomTest{t: t, h: h, ctx: t.Context(), room: room}
	l := limits()
	l.Capacity, l.PerMinute, l.Session = int64(perRound), 1_000_000, time.Hour
	l.Method = admission.Random
	in := r.fill(l, perRound)
	queue := make([]store.Result, waiters)
	for i := range queue {
		queue[i] = r.join(l)
	}
	order := make([]int, waiters)
	for seq := 1; seq <= waiters; {
		if len(in) == perRound || len(in) > 0 && seq > waiters-len(in) {
			for _, s := range in {
				r.release(refOf(s))
			}
			in = in[:0]
		}
		i := -1 // the waiter due first
		for j, w := range queue {
			if order[j] == 0 && (i < 0 || w.NextPoll.Before(queue[i].NextPoll)) {
				i = j
			}
		}
		if queue[i].NextPoll.After(r.h.Now()) {
			r.advanceTo(queue[i].NextPoll)
		}
		p := r.poll(refOf(queue[i]), l)
		if p.Requeued {
			t.Fatalf("waiter %d lost its place: %s", i, fmtResult(p))
		}
		if p.Admitted {
			order[i], in = seq, append(in, p)
			seq++
			continue
		}
		queue[i].NextPoll = p.NextPoll
	}
	return spearman(order)
}

// spearman is the rank correlation of x with its own index, ties taking their mean rank.
func spearman(x []int) float64 {
	n := len(x)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(x[a], x[b]) })
	rank := make([]float64, n)
	for i := 0; i < n; {
		j := i
		for j < n && x[idx[j]] == x[idx[i]] {
			j++
		}
		for k := i; k < j; k++ {
			rank[idx[k]] = float64(i+j-1) / 2
		}
		i = j
	}
	mean := float64(n-1) / 2
	var sxy, sxx, syy float64
	for i := range n {
		dx, dy := float64(i)-mean, rank[i]-mean
		sxy, sxx, syy = sxy+dx*dy, sxx+dx*dx, syy+dy*dy
	}
	return sxy / math.Sqrt(sxx*syy)
}

// 17b. Switching Random back to FIFO lets the rest in by ticket order.
func testRandomThenFIFO(r *roomTest) {
	l := limits()
	l.Capacity, l.PerMinute, l.Session = 1, 1_000, time.Hour
	x := r.fill(l, 1)
	var queue []store.Result
	for range 12 {
		queue = append(queue, r.join(l))
	}
	l.Method = admission.Random
	in := x[0]
	admitted := map[int64]bool{}
	for range 4 { // four random admissions
		r.release(refOf(in))
		for _, w := range queue {
			if admitted[w.Ticket] {
				continue
			}
			if p := r.poll(refOf(w), l); p.Admitted {
				admitted[w.Ticket], in = true, p
				break
			}
		}
	}
	l.Method = admission.FIFO
	last := int64(-1)
	for len(admitted) < len(queue) {
		r.release(refOf(in))
		got := false
		for _, w := range queue {
			if admitted[w.Ticket] {
				continue
			}
			p := r.poll(refOf(w), l)
			if !p.Admitted {
				continue
			}
			if w.Ticket < last {
				r.t.Fatalf("after switching back to FIFO, ticket %d got in after %d", w.Ticket, last)
			}
			admitted[w.Ticket], in, last, got = true, p, w.Ticket, true
			break
		}
		if !got {
			r.t.Fatal("nobody got in after a release")
		}
	}
}

// visitor is one person in simulateCrowd.
type visitor struct {
	arrive  time.Time
	quitAt  time.Time     // gives up waiting then; zero: stays until admitted
	stay    time.Duration // on the site once admitted
	release bool          // ends the session by Release, else lets it expire

	ref       store.Ref
	gaveUp    bool
	admitted  bool
	released  bool
	ended     bool
	lastPoll  time.Time
	nextPoll  time.Time
	lastWait  int // operation number of the last answer that said wait (0: none)
	admitSeq  int // operation number of the first Admitted answer
	endAt     time.Time
	expires   time.Time
	nextRenew time.Time
}

// simulateCrowd lets 300 visitors arrive over three minutes at a room of 20 sessions and
// 30 admissions a minute; they poll when told (every 20 s, or when a slot is due), a tenth give up, sessions end by Release or
// expiry. After every operation and every clock step it checks the limits, the rate window
// and FIFO order; at the end, that everyone who stayed got in.
func simulateCrowd(r *roomTest, seed uint64) {
	const (
		crowd      = 300
		arrivals   = 3 * time.Minute
		pollEvery  = 20 * time.Second
		renewEvery = time.Minute
		giveUp     = 10 // percent
		deadline   = 2 * time.Hour
	)
	l := admission.Limits{
		Capacity: 20, PerMinute: 30, Session: 2 * time.Minute, Renewal: true,
		Hold: time.Minute, Grace: 40 * time.Second, Refresh: pollEvery,
	}
	rng := rand.New(rand.NewPCG(seed, 0x5741_4954_494e_4721))
	start := r.h.Now()
	vs := make([]*visitor, crowd)
	for i := range vs {
		v := &visitor{
			arrive:  start.Add(time.Duration(rng.Int64N(int64(arrivals)))),
			stay:    5*time.Second + time.Duration(rng.Int64N(int64(145*time.Second))),
			release: rng.IntN(2) == 0,
		}
		if rng.IntN(100) < giveUp {
			v.quitAt = v.arrive.Add(time.Duration(rng.Int64N(int64(2 * time.Minute))))
		}
		vs[i] = v
	}
	slices.SortFunc(vs, func(a, b *visitor) int { return a.arrive.Compare(b.arrive) })

	var (
		seq          int
		lastAdmitted int64
		admissions   []time.Time // when each admission was seen: it happens in the answer that shows it
	)
	// observe accounts for the admissions an answer reveals and checks the limits and the
	// window: at most PerMinute admissions within any RateWindow, to the millisecond.
	observe := func(what string, st store.Stats) {
		r.t.Helper()
		if st.Admissions < lastAdmitted {
			r.t.Fatalf("%s: Admissions went from %d to %d", what, lastAdmitted, st.Admissions)
		}
		for ; lastAdmitted < st.Admissions; lastAdmitted++ {
			admissions = append(admissions, st.Now)
		}
		var window int64
		for _, at := range admissions {
			if st.Now.Sub(at) < admission.RateWindow {
				window++
			}
		}
		if window > l.PerMinute {
			r.t.Fatalf("%s at %s: %d admissions in the last %v, limit %d", what, ts(st.Now), window, admission.RateWindow, l.PerMinute)
		}
		if st.Window < window || st.Window > l.PerMinute {
			r.t.Fatalf("%s at %s: Stats.Window %d, but %d admissions were seen in the last %v (limit %d)", what, ts(st.Now), st.Window, window, admission.RateWindow, l.PerMinute)
		}
		if st.Active > l.Capacity {
			r.t.Fatalf("%s at %s: Active %d, capacity %d", what, ts(st.Now), st.Active, l.Capacity)
		}
	}
	answer := func(what string, v *visitor, res store.Result) {
		r.t.Helper()
		seq++
		observe(what, res.Stats)
		if res.Requeued {
			r.t.Fatalf("%s: a visitor polling every %v lost its place: %s", what, pollEvery, fmtResult(res))
		}
		v.ref, v.lastPoll = refOf(res), res.Now
		if !res.Admitted {
			v.lastWait, v.nextPoll = seq, res.NextPoll
			return
		}
		v.admitted, v.admitSeq = true, seq
		v.endAt, v.expires, v.nextRenew = res.Now.Add(v.stay), res.Expires, res.Now.Add(renewEvery)
	}

	joined, steps := 0, 0
	for ; ; steps++ {
		now := r.h.Now()
		for joined < len(vs) && !vs[joined].arrive.After(now) {
			answer(fmt.Sprintf("Join of visitor %d", joined), vs[joined], r.join(l))
			joined++
		}
		for i, v := range vs[:joined] {
			switch {
			case v.gaveUp || v.ended:
			case !v.admitted:
				if !v.quitAt.IsZero() && !now.Before(v.quitAt) {
					v.gaveUp = true
				} else if !now.Before(v.nextPoll) {
					answer(fmt.Sprintf("Poll of visitor %d", i), v, r.poll(v.ref, l))
				}
			case !now.Before(v.endAt):
				v.ended = true
				if v.release {
					r.release(v.ref)
					v.released = true
					observe(fmt.Sprintf("Release by visitor %d", i), r.stats(l))
				}
			case !now.Before(v.nextRenew):
				rn := r.renew(v.ref, l)
				r.wantActive(fmt.Sprintf("Renew by visitor %d", i), rn, expiry(now, l.Session))
				v.expires, v.nextRenew = rn.Expires, now.Add(renewEvery)
				observe(fmt.Sprintf("Renew by visitor %d", i), r.stats(l))
			}
		}

		st := r.stats(l)
		observe("step", st)
		var sessions, polling, mayLive int64
		stayersIn := true
		for _, v := range vs[:joined] {
			if v.admitted && !v.released && now.Before(v.expires) {
				sessions++
			}
			if !v.admitted && !v.gaveUp {
				polling++
				stayersIn = false
			}
			if !v.admitted && now.Sub(v.lastPoll) < l.Hold+admission.LiveBucket {
				mayLive++
			}
		}
		switch {
		case st.Active < sessions:
			r.t.Fatalf("at %s: Active %d, but %d admitted visitors hold unexpired sessions", ts(now), st.Active, sessions)
		case st.Waiting > mayLive:
			r.t.Fatalf("at %s: Waiting %d, but only %d unadmitted visitors polled within Hold+LiveBucket", ts(now), st.Waiting, mayLive)
		case st.Waiting+st.Active-sessions < polling:
			// Each visitor still polling is either a live waiter or holds an unclaimed grant.
			r.t.Fatalf("at %s: Waiting %d + grants %d, but %d visitors are still polling", ts(now), st.Waiting, st.Active-sessions, polling)
		}
		if joined == len(vs) && stayersIn {
			break
		}
		if now.Sub(start) > deadline {
			r.t.Fatalf("after %v of simulated time, %d visitors still wait", deadline, polling)
		}
		r.h.Advance(time.Duration(1000+rng.IntN(4000)) * time.Millisecond)
	}

	// FIFO: once a visitor is admitted, no earlier visitor who stayed is told to wait again.
	var stayers []*visitor
	admittedVisitors := int64(0)
	for _, v := range vs {
		if !v.gaveUp {
			stayers = append(stayers, v)
		}
		if v.admitted {
			admittedVisitors++
		}
	}
	slices.SortFunc(stayers, func(a, b *visitor) int { return cmp.Compare(a.ref.Number, b.ref.Number) })
	latest, violations := 0, 0
	var latestTicket int64
	for _, v := range stayers {
		if v.admitSeq <= latest {
			if violations++; violations <= 5 {
				r.t.Errorf("ticket %d admitted at operation %d, but earlier ticket %d was told to wait at operation %d", v.ref.Number, v.admitSeq, latestTicket, latest)
			}
		}
		if v.lastWait > latest {
			latest, latestTicket = v.lastWait, v.ref.Number
		}
	}
	if violations > 5 {
		r.t.Errorf("%d visitors in all admitted ahead of an earlier visitor", violations)
	}
	if lastAdmitted < admittedVisitors {
		r.t.Errorf("Stats.Admissions %d, but %d visitors were admitted", lastAdmitted, admittedVisitors)
	}
	r.t.Logf("%d visitors (%d stayed) in %v of simulated time, %d steps, %d joins and polls, %d admissions",
		crowd, len(stayers), r.h.Now().Sub(start).Round(time.Second), steps, seq, lastAdmitted)
}

// roomTest is one subtest's room and the checks every answer from it must pass.
type roomTest struct {
	t    *testing.T
	h    Harness
	ctx  context.Context
	room string

	epoch      int64 // of the room's first answer
	lastTicket int64 // the latest ticket issued
	issued     bool  // whether lastTicket is set
}

func newRoomTest(t *testing.T, h Harness) *roomTest {
	return &roomTest{t: t, h: h, ctx: t.Context(), room: roomID(t)}
}

// newEpoch tells the checks that the room starts again (after a loss or expiry).
func (r *roomTest) newEpoch() { r.epoch, r.issued = 0, false }

func (r *roomTest) join(l admission.Limits) store.Result {
	r.t.Helper()
	res, err := r.h.Store.Join(r.ctx, r.room, l)
	if err != nil {
		r.t.Fatalf("Join: %v", err)
	}
	if res.Requeued {
		r.t.Errorf("Join: Requeued")
	}
	r.checkResult("Join", res, bound(l), true)
	return res
}

func (r *roomTest) poll(ref store.Ref, l admission.Limits) store.Result {
	r.t.Helper()
	res, err := r.h.Store.Poll(r.ctx, r.room, ref, l)
	if err != nil {
		r.t.Fatalf("Poll(%+v): %v", ref, err)
	}
	if !res.Requeued && res.Ticket != ref.Number {
		r.t.Errorf("Poll(%+v): ticket %d without Requeued", ref, res.Ticket)
	}
	r.checkResult(fmt.Sprintf("Poll(%+v)", ref), res, bound(l), res.Requeued)
	return res
}

func (r *roomTest) renew(ref store.Ref, l admission.Limits) store.Renewal {
	r.t.Helper()
	rn, err := r.h.Store.Renew(r.ctx, r.room, ref, l)
	if err != nil {
		r.t.Fatalf("Renew(%+v): %v", ref, err)
	}
	if !sameMs(rn.Now, r.h.Now()) {
		r.t.Errorf("Renew(%+v): Now %s, want the harness clock %s", ref, ts(rn.Now), ts(r.h.Now()))
	}
	switch {
	case rn.Active && !rn.Expires.After(rn.Now):
		r.t.Errorf("Renew(%+v): Active, but Expires %s is not after Now %s", ref, ts(rn.Expires), ts(rn.Now))
	case !rn.Active && !rn.Expires.IsZero():
		r.t.Errorf("Renew(%+v): not Active, but Expires %s", ref, ts(rn.Expires))
	}
	return rn
}

func (r *roomTest) revive(ref store.Ref, l admission.Limits) store.Renewal {
	r.t.Helper()
	rn, err := r.h.Store.Revive(r.ctx, r.room, ref, l)
	if err != nil {
		r.t.Fatalf("Revive(%+v): %v", ref, err)
	}
	if !sameMs(rn.Now, r.h.Now()) {
		r.t.Errorf("Revive(%+v): Now %s, want the harness clock %s", ref, ts(rn.Now), ts(r.h.Now()))
	}
	if rn.Active != !rn.Expires.IsZero() {
		r.t.Errorf("Revive(%+v): active %t, expires %s", ref, rn.Active, ts(rn.Expires))
	}
	return rn
}

func (r *roomTest) release(ref store.Ref) {
	r.t.Helper()
	if err := r.h.Store.Release(r.ctx, r.room, ref); err != nil {
		r.t.Fatalf("Release(%+v): %v", ref, err)
	}
}

func (r *roomTest) stats(l admission.Limits) store.Stats {
	r.t.Helper()
	st, err := r.h.Store.Stats(r.ctx, r.room, l)
	if err != nil {
		r.t.Fatalf("Stats: %v", err)
	}
	r.checkStats("Stats", st, bound(l))
	return st
}

// fill joins n visitors who must all be admitted at once.
func (r *roomTest) fill(l admission.Limits, n int) []store.Result {
	r.t.Helper()
	var out []store.Result
	for i := range n {
		res := r.join(l)
		r.wantAdmitted(fmt.Sprintf("Join %d of %d filling the room", i+1, n), res)
		out = append(out, res)
	}
	return out
}

// queue joins n visitors who must all wait, the first with ahead before it, each next one
// behind the last; what names them in failures.
func (r *roomTest) queue(l admission.Limits, n int, ahead int64, what string) []store.Result {
	r.t.Helper()
	var out []store.Result
	for i := range n {
		res := r.join(l)
		r.wantWaiting(fmt.Sprintf("Join %d %s", i, what), res, ahead+int64(i))
		out = append(out, res)
	}
	return out
}

// stillWaiting polls ws, which must all still wait in the same order, the first with
// nobody ahead.
func (r *roomTest) stillWaiting(l admission.Limits, ws []store.Result, what string) {
	r.t.Helper()
	for i, w := range ws {
		r.wantWaiting(fmt.Sprintf("poll %d %s", i, what), r.poll(refOf(w), l), int64(i))
	}
}

// checkResult holds every answer of Join and Poll to the contract; issued says whether it
// gave out a new ticket.
func (r *roomTest) checkResult(op string, res store.Result, l admission.Limits, issued bool) {
	r.t.Helper()
	r.checkStats(op, res.Stats, l)
	switch {
	case res.Epoch == 0:
		r.t.Errorf("%s: Epoch 0", op)
	case r.epoch == 0:
		r.epoch = res.Epoch
	case res.Epoch != r.epoch && (issued || res.Epoch > r.epoch):
		// (An existing ticket of an earlier epoch keeps its epoch: see store_loss_keeps_order.)
		r.t.Errorf("%s: Epoch %d, the room's is %d", op, res.Epoch, r.epoch)
	}
	if issued {
		if !sameMs(res.Joined, res.Now) {
			r.t.Errorf("%s: new ticket %d Joined %s, want Now %s", op, res.Ticket, ts(res.Joined), ts(res.Now))
		}
		if res.Ticket < 0 || r.issued && res.Ticket <= r.lastTicket {
			r.t.Errorf("%s: new ticket %d, but ticket %d was issued before", op, res.Ticket, r.lastTicket)
		}
		r.lastTicket, r.issued = res.Ticket, true
	} else if !res.Joined.IsZero() {
		r.t.Errorf("%s: existing ticket %d, but Joined %s", op, res.Ticket, ts(res.Joined))
	}
	if res.Admitted {
		if !res.Expires.After(res.Now) || res.UsersAhead != 0 || !res.NextPoll.IsZero() {
			r.t.Errorf("%s: admitted with %s", op, fmtResult(res))
		}
		return
	}
	if !res.Expires.IsZero() {
		r.t.Errorf("%s: waiting, but Expires %s", op, ts(res.Expires))
	}
	// The next poll: from MinPollGap to a refresh interval away (under Random, spread up to
	// one and a half).
	latest := res.Now.Add(max(l.Refresh, admission.MinPollGap))
	if l.Method == admission.Random || slices.ContainsFunc(l.Events, func(e admission.Event) bool { return e.Method == admission.Random }) {
		latest = res.Now.Add(l.Refresh * 3 / 2)
	}
	if res.NextPoll.Before(res.Now.Add(admission.MinPollGap)) || res.NextPoll.After(latest) {
		r.t.Errorf("%s: waiting, NextPoll %s, want from %v to %v after Now: %s", op, ts(res.NextPoll), admission.MinPollGap, latest.Sub(res.Now), fmtResult(res))
	}
	if res.Waiting < 1 || res.UsersAhead < 0 || res.UsersAhead > res.Waiting-1 {
		// The waiter itself was just counted live, so Waiting includes it.
		r.t.Errorf("%s: waiting with %s, want 0 <= UsersAhead < Waiting", op, fmtResult(res))
	}
}

func (r *roomTest) checkStats(op string, st store.Stats, l admission.Limits) {
	r.t.Helper()
	if !sameMs(st.Now, r.h.Now()) {
		r.t.Errorf("%s: Now %s, want the harness clock %s", op, ts(st.Now), ts(r.h.Now()))
	}
	// The window holds admissions of the last minute and pending grants (part of Active).
	if st.Active < 0 || st.Waiting < 0 || st.Window < 0 || st.Window > st.Admissions+st.Active {
		r.t.Errorf("%s: inconsistent %+v", op, st)
	}
	if l.Method != admission.Passthrough && (st.Active > l.Capacity || st.Window > l.PerMinute) {
		r.t.Errorf("%s: Active %d, Window %d beyond capacity %d, rate %d", op, st.Active, st.Window, l.Capacity, l.PerMinute)
	}
	// A store that keeps no count of slots says so: a zero would tell the queue none is left.
	if st.Slots < admission.NotCounted || st.Slots > admission.MaxSlots || !r.countsSlots() && st.Slots != admission.NotCounted {
		r.t.Errorf("%s: Slots %d; want NotCounted (-1) from a store that keeps no count (store.Slots), else 0 to MaxSlots", op, st.Slots)
	}
}

// countsSlots reports whether the store keeps a count of slots (store.Slots).
func (r *roomTest) countsSlots() bool {
	if f, wraps := r.h.Store.(*Forgetful); wraps {
		_, ok := f.store().(store.Slots)
		return ok
	}
	_, ok := r.h.Store.(store.Slots)
	return ok
}

func (r *roomTest) wantAdmitted(what string, res store.Result) {
	r.t.Helper()
	if !res.Admitted {
		r.t.Fatalf("%s: not admitted: %s", what, fmtResult(res))
	}
}

// wantWaiting checks res waits in its place with ahead users ahead (ahead < 0: any number).
func (r *roomTest) wantWaiting(what string, res store.Result, ahead int64) {
	r.t.Helper()
	if res.Admitted || res.Requeued {
		r.t.Fatalf("%s: want waiting in place: %s", what, fmtResult(res))
	}
	if ahead >= 0 && res.UsersAhead != ahead {
		r.t.Errorf("%s: UsersAhead %d, want %d", what, res.UsersAhead, ahead)
	}
}

// wantRequeued checks res is a new place issued after ticket after.
func (r *roomTest) wantRequeued(what string, res store.Result, after int64) {
	r.t.Helper()
	if !res.Requeued || res.Ticket <= after {
		r.t.Fatalf("%s: want Requeued with a ticket after %d: %s", what, after, fmtResult(res))
	}
}

func (r *roomTest) wantActive(what string, rn store.Renewal, expires time.Time) {
	r.t.Helper()
	if !rn.Active {
		r.t.Fatalf("%s: not active", what)
	}
	r.wantExpires(what, rn.Expires, expires)
}

func (r *roomTest) wantExpires(what string, got, want time.Time) {
	r.t.Helper()
	if !sameMs(got, want) {
		r.t.Errorf("%s: Expires %s, want %s", what, ts(got), ts(want))
	}
}

// wantStats checks the counters; a negative want is not checked.
func (r *roomTest) wantStats(what string, st store.Stats, active, waiting, admitted, window int64) {
	r.t.Helper()
	for _, c := range []struct {
		name      string
		got, want int64
	}{{"Active", st.Active, active}, {"Waiting", st.Waiting, waiting}, {"Admitted", st.Admissions, admitted}, {"Window", st.Window, window}} {
		if c.want >= 0 && c.got != c.want {
			r.t.Errorf("%s: %s %d, want %d (at %s)", what, c.name, c.got, c.want, ts(st.Now))
		}
	}
}

// advanceTo moves the clock to t, which must not be in the past.
func (r *roomTest) advanceTo(t time.Time) {
	r.t.Helper()
	d := t.Sub(r.h.Now())
	if d < 0 {
		r.t.Fatalf("advanceTo %s: the clock is already at %s", ts(t), ts(r.h.Now()))
	}
	if d > 0 {
		r.h.Advance(d)
	}
}

// align moves the clock to the next instant offset past a multiple of unit in Unix time, so
// that a test can place events in rate slots and liveness buckets, and returns it.
func (r *roomTest) align(unit, offset time.Duration) time.Time {
	r.t.Helper()
	u := unit.Milliseconds()
	t := time.UnixMilli((r.h.Now().UnixMilli()/u+1)*u + offset.Milliseconds())
	r.advanceTo(t)
	return t
}

// roomID is a valid room ID unique to tb: its name, sanitized, and a random suffix.
func roomID(tb testing.TB) string {
	suffix := fmt.Sprintf("-%016x", rand.Uint64())
	name := []byte(tb.Name())
	for i, c := range name {
		if !store.ValidRoom(string(c)) {
			name[i] = '-'
		}
	}
	if n := 64 - len(suffix); len(name) > n {
		name = name[len(name)-n:] // the end of a subtest name is the specific part
	}
	id := string(name) + suffix
	if !store.ValidRoom(id) {
		tb.Fatalf("storetest: made an invalid room ID %q", id)
	}
	return id
}

func sameStats(a, b store.Stats) bool {
	a.Now, b.Now = time.UnixMilli(a.Now.UnixMilli()), time.UnixMilli(b.Now.UnixMilli())
	return a == b
}

func refOf(res store.Result) store.Ref { return store.Ref{Number: res.Ticket, Epoch: res.Epoch} }

func sameMs(a, b time.Time) bool { return a.UnixMilli() == b.UnixMilli() }

func ts(t time.Time) string {
	if t.IsZero() {
		return "zero"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func fmtResult(res store.Result) string {
	return fmt.Sprintf("ticket %d epoch %d requeued %t admitted %t expires %s ahead %d next poll %s (now %s active %d waiting %d admissions %d window %d)",
		res.Ticket, res.Epoch, res.Requeued, res.Admitted, ts(res.Expires), res.UsersAhead, ts(res.NextPoll),
		ts(res.Now), res.Active, res.Waiting, res.Admissions, res.Window)
}

// testBurstAtFullRate: a crowd that arrives at once and polls as told gets in at the
// configured rate, measured where the protected site would see it: at most PerMinute
// admissions in any 60 seconds, and at least 98% of PerMinute a minute over ten minutes,
// for refresh intervals from 5 s to 60 s, and with polls that come up to 150 ms late.
func testBurstAtFullRate(r *roomTest) {
	const visitors, rate = 180, 18 // ten waves
	cases := []struct{ refresh, late time.Duration }{
		{20 * time.Second, 150 * time.Millisecond}, {5 * time.Second, 0}, {20 * time.Second, 0}, {time.Minute, 0},
	}
	if r.h.Slow {
		cases = cases[:1]
	}
	for _, c := range cases {
		r.t.Run(fmt.Sprintf("refresh=%v,late=%v", c.refresh, c.late), func(t *testing.T) {
			b := BurstThroughput(t, r.h, roomID(t), visitors, rate, c.refresh, c.late)
			t.Logf("%d admitted in %v: %.2f a minute (%.1f%% of the rate); busiest 60 s: %d",
				b.Admitted, b.Span.Round(time.Millisecond), b.PerMinute, 100*b.PerMinute/rate, b.Busiest)
			if b.Busiest > rate {
				t.Errorf("%d admissions within 60 s, limit %d", b.Busiest, rate)
			}
			if b.PerMinute < 0.98*rate {
				t.Errorf("%.2f admissions a minute, want at least 98%% of %d", b.PerMinute, rate)
			}
		})
	}
}

// Burst is what BurstThroughput measured.
type Burst struct {
	Admitted  int
	Span      time.Duration // from the first admission to the last, plus the 60 s the last one counts
	PerMinute float64       // Admitted over Span
	Busiest   int           // the most admissions within any 60 s, [t, t+60 s)
}

// BurstThroughput lets n visitors join room at one instant, a room whose capacity never
// binds and whose rate is perMinute, each then polling at the NextPoll of its last answer
// plus a random lateness up to late, and measures the admissions (the answers that admit:
// the first request the site lets through) on the harness clock.
func BurstThroughput(t *testing.T, h Harness, room string, n int, perMinute int64, refresh, late time.Duration) Burst {
	t.Helper()
	l := admission.Limits{
		Capacity: 100 * int64(n), PerMinute: perMinute, Session: time.Hour, Renewal: true,
		Hold: max(5*time.Minute, 2*refresh), Grace: 2 * refresh, Refresh: refresh,
	}
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(uint64(n), uint64(refresh)))
	type due struct {
		at  time.Time
		ref store.Ref
	}
	var queue []due // by time
	push := func(d due) {
		i, _ := slices.BinarySearchFunc(queue, d.at, func(e due, at time.Time) int { return e.at.Compare(at) })
		for i < len(queue) && !queue[i].at.After(d.at) {
			i++ // ties in the order pushed
		}
		queue = slices.Insert(queue, i, d)
	}
	var admitted []time.Time
	answer := func(res store.Result) {
		switch {
		case res.Requeued:
			t.Fatalf("a visitor polling as told lost its place: %s", fmtResult(res))
		case res.Admitted:
			admitted = append(admitted, res.Now)
		default:
			at := res.NextPoll
			if late > 0 {
				at = at.Add(time.Duration(rng.Int64N(int64(late))))
			}
			push(due{at, refOf(res)})
		}
	}
	for range n {
		res, err := h.Store.Join(ctx, room, l)
		if err != nil {
			t.Fatal(err)
		}
		answer(res)
	}
	deadline := h.Now().Add(time.Duration(n/int(perMinute)+3) * time.Minute)
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if d.at.After(deadline) {
			t.Fatalf("%d of %d still waiting after %v", len(queue)+1, n, deadline.Sub(admitted[0]))
		}
		if d.at.After(h.Now()) {
			h.Advance(d.at.Sub(h.Now()))
		}
		res, err := h.Store.Poll(ctx, room, d.ref, l)
		if err != nil {
			t.Fatal(err)
		}
		answer(res)
	}
	b := Burst{Admitted: len(admitted)}
	b.Span = admitted[len(admitted)-1].Sub(admitted[0]) + admission.RateWindow
	b.PerMinute = float64(b.Admitted) / b.Span.Minutes()
	j := 0
	for i := range admitted {
		for j < len(admitted) && admitted[j].Sub(admitted[i]) < admission.RateWindow {
			j++
		}
		b.Busiest = max(b.Busiest, j-i)
	}
	return b
}

// 8f. Revive brings back a session that ended, while the room has room for it, without
// counting an admission or taking a slot granted to someone else; never one of another
// epoch, nor while the room admits nobody.
func testRevive(r *roomTest) {
	l := limits()
	x := r.fill(l, 3)
	w := r.join(l)
	r.wantWaiting("the waiter", w, 0)

	// Active: Revive renews it, as Renew does.
	r.h.Advance(10 * time.Second)
	rv := r.revive(refOf(x[0]), l)
	r.wantActive("Revive of an active session", rv, expiry(r.h.Now(), l.Session))

	// Every session ends; the waiter polls first and is granted a slot (not yet claimed).
	r.advanceTo(rv.Expires)
	r.h.Advance(time.Second)
	pw := r.poll(refOf(w), l)
	r.wantAdmitted("the waiter after the sessions ended", pw)
	st := r.stats(l)
	r.wantStats("one session", st, 1, 0, 4, -1)

	// Two slots are free: two ended sessions come back, the third finds none.
	for i := range 2 {
		rv := r.revive(refOf(x[i]), l)
		r.wantActive(fmt.Sprintf("Revive %d with room", i), rv, expiry(r.h.Now(), l.Session))
	}
	if rv := r.revive(refOf(x[2]), l); rv.Active {
		r.t.Errorf("Revive in a full room: active until %s", ts(rv.Expires))
	}
	r.wantStats("after the revivals", r.stats(l), 3, 0, 4, -1) // no admission counted

	// Never another epoch's or a ticket never issued; never while the room admits nobody.
	r.release(refOf(x[0]))
	for _, ref := range []store.Ref{
		{Number: x[0].Ticket, Epoch: x[0].Epoch + 1},
		{Number: w.Ticket + 10, Epoch: w.Epoch},
		{Number: -1, Epoch: w.Epoch},
	} {
		if rv := r.revive(ref, l); rv.Active {
			r.t.Errorf("Revive of %+v: active", ref)
		}
	}
	q := l
	q.QueueAll = true
	if rv := r.revive(refOf(x[0]), q); rv.Active {
		r.t.Error("Revive under QueueAll: active")
	}
	r.wantActive("Revive after QueueAll is lifted", r.revive(refOf(x[0]), l), expiry(r.h.Now(), l.Session))
	if _, err := r.h.Store.Revive(r.ctx, roomID(r.t), refOf(x[0]), l); err != nil {
		r.t.Errorf("Revive in a room never used: %v", err)
	}

	// In recovery (a caller saw the room's lost epoch) nobody is revived, unless the room
	// lets everyone through: Passthrough admits in recovery too (admission.Allowance).
	rec := l
	rec.LastEpoch, rec.Recovery = r.h.Now().Add(-time.Minute).UnixMilli(), time.Minute
	lost := roomID(r.t) // a room of its own, as a store that lost it finds it
	j, err := r.h.Store.Join(r.ctx, lost, rec)
	if err != nil || j.Admitted {
		r.t.Fatalf("Join in recovery: admitted %t, %v", j.Admitted, err)
	}
	if rv, err := r.h.Store.Revive(r.ctx, lost, refOf(j), rec); err != nil || rv.Active {
		r.t.Errorf("Revive in recovery: active %t, %v", rv.Active, err)
	}
	rec.Method = admission.Passthrough
	if rv, err := r.h.Store.Revive(r.ctx, lost, refOf(j), rec); err != nil || !rv.Active {
		r.t.Errorf("Revive in recovery, Passthrough: active %t, %v; want active", rv.Active, err)
	}
}
