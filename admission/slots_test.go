package admission

import (
	"math"
	"testing"
	"time"
)

func TestSetAndTakeSlots(t *testing.T) {
	sets := []struct {
		name    string
		n, want int64
	}{
		{"a count", 12, 12},
		{"none left", 0, 0},
		{"stop counting", -1, NotCounted},
		{"any negative stops counting", math.MinInt64, NotCounted},
		{"capped", math.MaxInt64, MaxSlots},
	}
	for _, tt := range sets {
		t.Run("set/"+tt.name, func(t *testing.T) {
			if got := SetSlots(tt.n); got != tt.want {
				t.Errorf("SetSlots(%d) = %d, want %d", tt.n, got, tt.want)
			}
		})
	}
	takes := []struct {
		name          string
		have, n, want int64
	}{
		{"one", 5, 1, 4},
		{"the last", 1, 1, 0},
		{"more than are left: floor at 0", 3, 10, 0},
		{"from none", 0, 1, 0},
		{"nothing", 7, 0, 7},
		{"a cancellation gives one back", 0, -1, 1},
		{"given back up to the cap", MaxSlots - 1, -5, MaxSlots},
		{"the most negative", 3, math.MinInt64, MaxSlots},
		{"the most positive", 3, math.MaxInt64, 0},
		{"not counted stays so", NotCounted, 1, NotCounted},
		{"not counted, given back", NotCounted, -3, NotCounted},
	}
	for _, tt := range takes {
		t.Run("take/"+tt.name, func(t *testing.T) {
			if got := TakeSlots(tt.have, tt.n); got != tt.want {
				t.Errorf("TakeSlots(%d, %d) = %d, want %d", tt.have, tt.n, got, tt.want)
			}
		})
	}
}

// A room that closes when sold out gives no place once no slot is left, to a newcomer or
// to a poll whose place is gone; its waiters keep theirs and go in as slots free up; a
// room that does not close, or does not count, goes on as ever.
func TestSoldOutJoin(t *testing.T) {
	const t0 = 1_795_683_600_000
	l := Limits{Capacity: 1, PerMinute: 10, Session: time.Minute, Renewal: true, Hold: time.Minute, Grace: 20 * time.Second, Refresh: 10 * time.Second, Slots: 3, CloseWhenSoldOut: true}
	r := Open(t0, new(MemQueue), l)
	in := r.Join(t0, l)
	w := r.Join(t0, l)
	if !in.Admitted || w.Admitted || w.SoldOut || in.Slots != 3 || w.Slots != 3 {
		t.Fatalf("two joins with 3 slots left: %+v, %+v", in, w)
	}

	l.Slots = 0
	next := r.Join(t0+1000, l)
	if !next.SoldOut || next.Ticket != -1 || next.Requeued || next.Admitted || !next.Joined.IsZero() || next.Slots != 0 {
		t.Fatalf("join with no slot left: %+v, want SoldOut without a ticket", next)
	}
	if next.Waiting != 1 || next.Active != 1 {
		t.Errorf("join with no slot left: waiting %d active %d, want the room as it was (1, 1)", next.Waiting, next.Active)
	}
	gone := r.Poll(Ref{Number: 99, Epoch: r.Epoch()}, t0+2000, l)
	if !gone.SoldOut || gone.Requeued || gone.Ticket != -1 {
		t.Fatalf("poll of an unknown ticket with no slot left: %+v, want SoldOut, not requeued", gone)
	}
	p := r.Poll(Ref{Number: w.Ticket, Epoch: w.Epoch}, t0+3000, l)
	if p.SoldOut || p.Ticket != w.Ticket || p.Admitted {
		t.Fatalf("the waiter's poll with no slot left: %+v, want its place", p)
	}
	r.Release(Ref{Number: in.Ticket, Epoch: in.Epoch}, t0+4000)
	if p := r.Poll(Ref{Number: w.Ticket, Epoch: w.Epoch}, t0+5000, l); !p.Admitted {
		t.Fatalf("the waiter once a session ended, no slot left: %+v, want admitted", p)
	}

	for _, tt := range []struct {
		name string
		f    func(*Limits)
	}{
		{"not closing", func(l *Limits) { l.CloseWhenSoldOut = false }},
		{"not counting", func(l *Limits) { l.Slots = NotCounted }},
		{"a slot back", func(l *Limits) { l.Slots = 1 }},
	} {
		m := l
		tt.f(&m)
		if res := r.Join(t0+6000, m); res.SoldOut || res.Ticket < 0 {
			t.Errorf("%s: join %+v, want a place", tt.name, res)
		}
	}
	if st := r.Stats(t0+7000, l); st.Slots != 0 {
		t.Errorf("Stats.Slots = %d, want the store's 0", st.Slots)
	}
}
