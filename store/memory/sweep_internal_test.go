package memory

import (
	"context"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom/admission"
)

// TestSweptBetweenLookupAndLock: an operation that finds its room, then loses it to a sweep
// before it takes the room's lock, looks again and works on the room the map now holds, not
// on the dropped one.
func TestSweptBetweenLookupAndLock(t *testing.T) {
	now := time.UnixMilli(1795683600000)
	s := New(WithClock(func() time.Time { return now }))
	l := admission.Limits{Capacity: 1, PerMinute: 1, Session: time.Minute, Hold: time.Minute, Grace: 10 * time.Second, Refresh: 10 * time.Second}
	ctx := context.Background()
	first, err := s.Join(ctx, "a", l)
	if err != nil || !first.Admitted {
		t.Fatalf("first join: %+v, %v", first, err)
	}
	now = now.Add(time.Hour) // the room is idle: every session and place has lapsed
	var dropped *room
	testHookLookedUp = func(r *room) {
		testHookLookedUp = nil
		dropped = r
		s.mu.Lock()
		s.sweep(now.UnixMilli()) // as another operation's sweep would, at this very moment
		s.mu.Unlock()
	}
	t.Cleanup(func() { testHookLookedUp = nil })
	s.lastSweep.Store(now.UnixMilli()) // no sweep of its own first: the hook runs the sweep
	next, err := s.Join(ctx, "a", l)
	if err != nil {
		t.Fatal(err)
	}
	if dropped == nil || !dropped.gone {
		t.Fatalf("the hook did not see the room swept (%v)", dropped)
	}
	if next.Epoch == first.Epoch || !next.Admitted || next.Ticket != 0 {
		t.Errorf("join after the sweep: %+v; want a new epoch's first ticket, admitted", next)
	}
	if st, _ := s.Stats(ctx, "a", l); st.Active != 1 {
		t.Errorf("the store's room has %d active, want the new session", st.Active)
	}
}
