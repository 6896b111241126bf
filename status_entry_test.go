package waitingroom_test

import (
	"context"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom"
)

// TestStatusEntry checks what a progress bar reads: the time the visitor took its place and
// the people ahead then, kept through counted and early polls while the line moves, and
// none under Random, where there is no line to move along.
func TestStatusEntry(t *testing.T) {
	f := newFixture(t, waitingroom.Config{TotalActiveUsers: 2, NewUsersPerMinute: 2, SessionDuration: 5 * time.Minute}, 0)
	a, _ := f.enter(t, "")
	f.enter(t, "")
	f.clock.Advance(10 * time.Second)
	joined := f.clock.Now()
	first, _ := f.enter(t, "") // waits with nobody ahead
	c, _ := f.enter(t, "")
	if c.Outcome != waitingroom.Waiting || c.Status.UsersAhead != 1 || c.Status.AheadAtEntry != 1 || !c.Status.Joined.Equal(joined) {
		t.Fatalf("at join: %v, %d ahead, %d at entry, joined %v; want waiting, 1, 1, %v",
			c.Outcome, c.Status.UsersAhead, c.Status.AheadAtEntry, c.Status.Joined, joined)
	}
	if err := f.room.Release(context.Background(), a.Pass); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute) // the rate window lets one more in
	if v, _ := f.enter(t, first.Token); v.Outcome != waitingroom.Admitted {
		t.Fatalf("the first waiter: %v, want admitted", v.Outcome)
	}
	v, _ := f.enter(t, c.Token)
	if v.Outcome != waitingroom.Waiting || v.Status.UsersAhead != 0 || v.Status.AheadAtEntry != 1 || !v.Status.Joined.Equal(joined) {
		t.Fatalf("after the line moved: %v, %d ahead, %d at entry, joined %v; want waiting, 0, 1, %v",
			v.Outcome, v.Status.UsersAhead, v.Status.AheadAtEntry, v.Status.Joined, joined)
	}
	f.clock.Advance(time.Second)
	early, calls := f.enter(t, v.Token)
	if len(calls) != 0 || early.Status.AheadAtEntry != 1 || !early.Status.Joined.Equal(joined) {
		t.Fatalf("early poll: calls %v, %d at entry, joined %v", calls, early.Status.AheadAtEntry, early.Status.Joined)
	}

	r := newFixture(t, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1, QueueingMethod: waitingroom.Random}, 0)
	r.enter(t, "")
	r.enter(t, "")
	w, _ := r.enter(t, "")
	if w.Outcome != waitingroom.Waiting || w.Status.UsersAhead != 1 || w.Status.AheadAtEntry != 0 || w.Status.Joined.IsZero() {
		t.Fatalf("random: %v, %d others, %d at entry, joined %v; want waiting, 1, 0, set", w.Outcome, w.Status.UsersAhead, w.Status.AheadAtEntry, w.Status.Joined)
	}
}
