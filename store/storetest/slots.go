package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
)

// Slots left (store.Slots): a count the host sets and takes from, carried by every Join,
// Poll and Stats answer, kept with the room's settings; and a room that closes when none is
// left (admission.SoldOut). A store that does not implement store.Slots skips these.

func (r *roomTest) slotCounter() store.Slots {
	r.t.Helper()
	s, _ := r.h.Store.(store.Slots)
	if !r.countsSlots() {
		r.t.Skip("the store does not implement store.Slots")
	}
	return s
}

func (r *roomTest) setSlots(s store.Slots, room string, n int64) {
	r.t.Helper()
	if err := s.SetSlots(r.ctx, room, n); err != nil {
		r.t.Fatalf("SetSlots(%s, %d): %v", room, n, err)
	}
}

func (r *roomTest) takeSlots(s store.Slots, room string, n, want int64) {
	r.t.Helper()
	left, err := s.TakeSlots(r.ctx, room, n)
	if err != nil || left != want {
		r.t.Fatalf("TakeSlots(%s, %d) = %d, %v; want %d left", room, n, left, err, want)
	}
}

func (r *roomTest) wantSlots(what string, st store.Stats, want int64) {
	r.t.Helper()
	if st.Slots != want {
		r.t.Errorf("%s: Slots %d, want %d", what, st.Slots, want)
	}
}

// The count: not kept until set; set, taken with a floor at 0, given back, capped, stopped;
// seen by every kind of answer; a room's own; kept while the room's visitors' state lapses.
func testSlots(r *roomTest) {
	s := r.slotCounter()
	l := limits()
	r.wantSlots("Stats of a room never counted", r.stats(l), admission.NotCounted)
	r.takeSlots(s, r.room, 1, admission.NotCounted)
	r.wantSlots("Stats after a take from no count", r.stats(l), admission.NotCounted)
	a := r.join(l)
	r.wantSlots("Join, not counted", a.Stats, admission.NotCounted)

	r.setSlots(s, r.room, 5)
	r.wantSlots("Stats after SetSlots(5)", r.stats(l), 5)
	r.fill(l, 2)
	w := r.join(l)
	r.wantWaiting("4th Join", w, 0)
	r.wantSlots("4th Join", w.Stats, 5)
	r.takeSlots(s, r.room, 2, 3)
	r.h.Advance(time.Second)
	r.wantSlots("the waiter's poll after a take", r.poll(refOf(w), l).Stats, 3)
	r.takeSlots(s, r.room, 10, 0) // more than are left: 0, never below
	r.h.Advance(time.Second)
	r.wantSlots("the waiter's poll after taking more than were left", r.poll(refOf(w), l).Stats, 0)
	r.takeSlots(s, r.room, 1, 0)
	r.takeSlots(s, r.room, -2, 2) // two cancellations
	r.takeSlots(s, r.room, 0, 2)
	r.setSlots(s, r.room, admission.MaxSlots+5)
	r.wantSlots("Stats after a count over the cap", r.stats(l), admission.MaxSlots)
	r.takeSlots(s, r.room, -1, admission.MaxSlots)

	// Rooms count apart.
	other := r.room + "-b"
	if len(other) > 64 {
		other = other[len(other)-64:]
	}
	r.setSlots(s, r.room, 4)
	if st, err := r.h.Store.Stats(r.ctx, other, l); err != nil || st.Slots != admission.NotCounted {
		r.t.Errorf("Stats of another room: Slots %d, %v; want not counted", st.Slots, err)
	}
	r.setSlots(s, other, 9)
	r.takeSlots(s, other, 1, 8)
	r.wantSlots("Stats after another room's count changed", r.stats(l), 4)

	// The count belongs to the settings, not to the visitors' state: it stays while every
	// session and place lapses and the room's state goes (an idle room), and the next
	// visitor's answer carries it.
	r.h.Advance(l.Hold + l.Session + 2*rateFree)
	r.wantSlots("Stats of the room gone idle", r.stats(l), 4)
	r.newEpoch()
	j := r.join(l)
	r.wantAdmitted("a visitor after the room went idle", j)
	r.wantSlots("a visitor after the room went idle", j.Stats, 4)

	// Takes are atomic: 40 at once from 30 leave each count from 29 down to 0 once, and
	// ten more zeros.
	r.setSlots(s, r.room, 30)
	var wg sync.WaitGroup
	got := make([]int64, 40)
	for i := range got {
		wg.Go(func() {
			left, err := s.TakeSlots(r.ctx, r.room, 1)
			if err != nil {
				r.t.Errorf("a concurrent TakeSlots: %v", err)
			}
			got[i] = left
		})
	}
	wg.Wait()
	slices.Sort(got)
	for i, v := range got {
		if want := max(int64(i)-10, 0); v != want {
			r.t.Fatalf("40 concurrent takes from 30 left %v; want 0 eleven times, then 1 to 29 once each", got)
		}
	}

	r.setSlots(s, r.room, -1)
	r.wantSlots("Stats after SetSlots(-1)", r.stats(l), admission.NotCounted)
	r.takeSlots(s, r.room, 1, admission.NotCounted)
	r.setSlots(s, r.room, -1) // stopping again is no error

	for _, id := range []string{"", "a b", "{x}"} {
		if err := s.SetSlots(r.ctx, id, 1); !errors.Is(err, store.ErrInvalidRoom) {
			r.t.Errorf("SetSlots(%q): %v, want ErrInvalidRoom", id, err)
		}
		if _, err := s.TakeSlots(r.ctx, id, 1); !errors.Is(err, store.ErrInvalidRoom) {
			r.t.Errorf("TakeSlots(%q): %v, want ErrInvalidRoom", id, err)
		}
	}
	ctx, cancel := context.WithCancel(r.ctx)
	cancel()
	if err := s.SetSlots(ctx, r.room, 1); err == nil {
		r.t.Errorf("SetSlots with a cancelled context: no error")
	}

	// Deleting the settings ends the count.
	if _, ok := r.h.Store.(store.Control); ok {
		c := r.control()
		if _, err := c.PutSettings(r.ctx, r.room, admission.Settings{Limits: l, Doc: []byte(`{}`)}, 0, store.Change{By: "ops", What: "create"}); err != nil {
			r.t.Fatal(err)
		}
		r.setSlots(s, r.room, 6)
		if err := c.DeleteSettings(r.ctx, r.room, store.AnyVersion, store.Change{By: "ops", What: "delete"}); err != nil {
			r.t.Fatal(err)
		}
		r.wantSlots("Stats after the settings were deleted", r.stats(l), admission.NotCounted)
	}
}

// With CloseWhenSoldOut, no slot left: no place for a newcomer or a poll whose place is
// gone, no ticket used up; the waiters keep their places, are told, and go in as sessions
// end. Without it, or with a slot back, places are given as ever.
func testSoldOut(r *roomTest) {
	s := r.slotCounter()
	l := limits()
	l.CloseWhenSoldOut = true
	r.wantAdmitted("a join, not counted", r.join(l))
	r.setSlots(s, r.room, 2)
	r.fill(l, 2)
	ws := r.queue(l, 2, 0, "behind a full room")
	last := ws[1].Ticket

	r.takeSlots(s, r.room, 2, 0)
	r.h.Advance(time.Second)
	refused := func(what string, res store.Result, err error) {
		r.t.Helper()
		if err != nil {
			r.t.Fatalf("%s: %v", what, err)
		}
		switch {
		case !res.SoldOut || res.Ticket != -1 || res.Requeued || res.Admitted || !res.Joined.IsZero() || !res.NextPoll.IsZero():
			r.t.Errorf("%s: %s sold out %t joined %s, want SoldOut, ticket -1 and nothing else", what, fmtResult(res), res.SoldOut, ts(res.Joined))
		case res.Slots != 0 || res.Waiting != 2 || res.Active != 3:
			r.t.Errorf("%s: slots %d waiting %d active %d, want 0, 2 and 3: the room as it was", what, res.Slots, res.Waiting, res.Active)
		case !sameMs(res.Now, r.h.Now()):
			r.t.Errorf("%s: Now %s, want %s", what, ts(res.Now), ts(r.h.Now()))
		}
	}
	res, err := r.h.Store.Join(r.ctx, r.room, l)
	refused("a join with no slot left", res, err)
	res, err = r.h.Store.Poll(r.ctx, r.room, store.Ref{Number: last + 1000, Epoch: ws[0].Epoch}, l)
	refused("a poll of an unknown ticket with no slot left", res, err)
	for i, w := range ws {
		p := r.poll(refOf(w), l)
		r.wantWaiting(fmt.Sprintf("waiter %d with no slot left", i), p, int64(i))
		if p.SoldOut || p.Slots != 0 {
			r.t.Errorf("waiter %d with no slot left: sold out %t, slots %d; want its place, told 0", i, p.SoldOut, p.Slots)
		}
	}
	r.h.Advance(l.Session + time.Second) // the sessions end: the waiters go in, slots or not
	r.wantAdmitted("the first waiter once sessions ended", r.poll(refOf(ws[0]), l))
	r.wantAdmitted("the second waiter once sessions ended", r.poll(refOf(ws[1]), l))

	open := l
	open.CloseWhenSoldOut = false
	if j := r.join(open); j.SoldOut || j.Ticket != last+1 {
		r.t.Errorf("a join of a room that does not close: %s, want ticket %d (none used up by the refusals)", fmtResult(j), last+1)
	}
	r.takeSlots(s, r.room, -1, 1) // a cancellation
	if j := r.join(l); j.SoldOut || j.Slots != 1 {
		r.t.Errorf("a join with a slot back: %s sold out %t slots %d, want a place", fmtResult(j), j.SoldOut, j.Slots)
	}
	r.setSlots(s, r.room, -1)
	if j := r.join(l); j.SoldOut {
		r.t.Errorf("a join once the room stopped counting: sold out")
	}

	// The setting is a stored one like any other: a caller whose settings are another
	// version runs by the stored ones, and closes.
	if _, ok := r.h.Store.(store.Control); ok {
		c := r.control()
		if _, err := c.PutSettings(r.ctx, r.room, admission.Settings{Limits: l, Doc: []byte(`{"close":true}`)}, 0, store.Change{By: "ops", What: "create"}); err != nil {
			r.t.Fatal(err)
		}
		r.setSlots(s, r.room, 0)
		res, err := r.h.Store.Join(r.ctx, r.room, offered(open, 0, ""))
		if err != nil {
			r.t.Fatal(err)
		}
		if !res.SoldOut || res.Settings == nil || res.Settings.Version != 1 {
			r.t.Errorf("a join by a caller that does not close, the stored settings closing: sold out %t, settings %+v; want SoldOut and version 1", res.SoldOut, res.Settings)
		}
	}
}

// SetSlots implements store.Slots when the store it wraps does.
func (f *Forgetful) SetSlots(ctx context.Context, room string, n int64) error {
	s, ok := f.store().(store.Slots)
	if !ok {
		return errors.ErrUnsupported
	}
	return s.SetSlots(ctx, room, n)
}

// TakeSlots implements store.Slots when the store it wraps does.
func (f *Forgetful) TakeSlots(ctx context.Context, room string, n int64) (int64, error) {
	s, ok := f.store().(store.Slots)
	if !ok {
		return admission.NotCounted, errors.ErrUnsupported
	}
	return s.TakeSlots(ctx, room, n)
}
