package admission

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

var base = Limits{Capacity: 10, PerMinute: 5, Session: time.Minute, Renewal: true, Hold: 5 * time.Minute, Grace: 40 * time.Second}

func TestAllowance(t *testing.T) {
	with := func(f func(*Limits)) Limits { l := base; f(&l); return l }
	tests := []struct {
		name string
		s    State
		l    Limits
		want int64
	}{
		{"empty room: the rate binds", State{}, base, 5},
		{"capacity binds", State{Active: 8}, base, 2},
		{"window binds", State{Active: 1, Window: 4}, base, 1},
		{"full", State{Active: 10}, base, 0},
		{"over capacity after a limit was lowered", State{Active: 12}, base, 0},
		{"window spent", State{Window: 5}, base, 0},
		{"queue all", State{}, with(func(l *Limits) { l.QueueAll = true }), 0},
		{"reject", State{}, with(func(l *Limits) { l.Method = Reject }), 0},
		{"passthrough ignores limits", State{Active: 99, Window: 99}, with(func(l *Limits) { l.Method = Passthrough }), math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Allowance(tt.s, tt.l); got != tt.want {
				t.Errorf("Allowance(%+v) = %d, want %d", tt.s, got, tt.want)
			}
		})
	}
}

func TestLive(t *testing.T) {
	hold := HoldBuckets(base) // 5 min in 5 s buckets
	if hold != 60 {
		t.Fatalf("HoldBuckets = %d, want 60", hold)
	}
	tests := []struct {
		seen, now int64
		want      bool
	}{
		{0, 10, false},          // gone
		{Taken | 10, 10, false}, // taken
		{10, 10, true},
		{10, 70, true},
		{10, 71, false},
	}
	for _, tt := range tests {
		if got := Live(tt.seen, tt.now, base); got != tt.want {
			t.Errorf("Live(%d, %d) = %v, want %v", tt.seen, tt.now, got, tt.want)
		}
	}
	odd := base
	odd.Hold = 7 * time.Second // rounds up to two buckets: a place is never dropped early
	if HoldBuckets(odd) != 2 {
		t.Errorf("HoldBuckets(7s) = %d, want 2", HoldBuckets(odd))
	}
}

func TestUsersAhead(t *testing.T) {
	tests := []struct {
		name                  string
		n, cursor, next, live int64
		want                  int64
	}{
		{"head of the queue", 5, 5, 10, 5, 0},
		{"nobody left: exact", 8, 5, 10, 5, 3},
		{"last of ten", 9, 0, 10, 10, 9},
		{"half abandoned: gaps spread evenly", 9, 0, 10, 5, 4},
		{"everyone else gone", 9, 0, 10, 1, 0},
		{"alone", 0, 0, 1, 1, 0},
		{"never more than the live others", 99, 0, 100, 3, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := UsersAhead(tt.n, tt.cursor, tt.next, tt.live); got != tt.want {
				t.Errorf("UsersAhead(%d, %d, %d, %d) = %d, want %d", tt.n, tt.cursor, tt.next, tt.live, got, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		f    func(*Limits)
		want error
	}{
		{"ok", func(*Limits) {}, nil},
		{"zero capacity", func(l *Limits) { l.Capacity = 0 }, ErrCapacity},
		{"zero rate", func(l *Limits) { l.PerMinute = 0 }, ErrRate},
		{"no session", func(l *Limits) { l.Session = 0 }, ErrDuration},
		{"no hold", func(l *Limits) { l.Hold = 0 }, ErrDuration},
		{"no grace", func(l *Limits) { l.Grace = -time.Second }, ErrDuration},
		{"random", func(l *Limits) { l.Method = Random }, nil},
		{"unknown method", func(l *Limits) { l.Method = 9 }, ErrMethod},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := base
			tt.f(&l)
			if err := l.Validate(); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Validate() = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestMethodText(t *testing.T) {
	for m := FIFO; m <= Reject; m++ {
		b, _ := m.MarshalText()
		var back Method
		if err := back.UnmarshalText(b); err != nil || back != m {
			t.Errorf("%v: round trip gave %v, %v", m, back, err)
		}
	}
	if _, err := ParseMethod("lifo"); err == nil {
		t.Error("ParseMethod(lifo) succeeded")
	}
}

func TestBucket(t *testing.T) {
	ms := time.Date(2026, 11, 26, 9, 0, 9, 999e6, time.UTC).UnixMilli()
	if Bucket(ms) != Bucket(ms-4999) || Bucket(ms) == Bucket(ms+1) || Bucket(ms) == Bucket(ms-5000) {
		t.Errorf("Bucket does not cut at 5 s boundaries")
	}
}

func TestPick(t *testing.T) {
	// Every offset in range, spread evenly: a chi-squared test over 10 cells.
	const n, cells = 20000, 10
	var count [cells]int
	for i := range int64(n) {
		p := Pick(1795683600000, i, 0, 1000)
		if p < 0 || p >= 1000 {
			t.Fatalf("Pick out of range: %d", p)
		}
		count[p/100]++
	}
	var chi float64
	for _, c := range count {
		d := float64(c) - n/cells
		chi += d * d / (n / cells)
	}
	if chi > 27.9 { // p = 0.001 with 9 degrees of freedom
		t.Errorf("Pick is not uniform: chi-squared %.1f over %v", chi, count)
	}
	// Consecutive grants independent: a chi-squared test over the 10x10 cells of pairs, for
	// consecutive counts and for consecutive attempts (a congruential step fails both).
	for _, next := range []func(i int64) (int64, int64){
		func(i int64) (int64, int64) {
			return Pick(1795683600000, i, 0, 1000), Pick(1795683600000, i+1, 0, 1000)
		},
		func(i int64) (int64, int64) {
			return Pick(1795683600000, 7, i, 1000), Pick(1795683600000, 7, i+1, 1000)
		},
	} {
		var pairs [cells][cells]int
		for i := range int64(n) {
			a, b := next(i)
			pairs[a/100][b/100]++
		}
		var chi float64
		for _, row := range pairs {
			for _, c := range row {
				d := float64(c) - n/(cells*cells)
				chi += d * d / (n / (cells * cells))
			}
		}
		if chi > 148.2 { // p = 0.001 with 99 degrees of freedom
			t.Errorf("consecutive picks are not independent: chi-squared %.1f", chi)
		}
	}
	if Pick(1, 2, 3, 1000) != Pick(1, 2, 3, 1000) || Pick(1, 2, 3, 1000) == Pick(1, 2, 4, 1000) && Pick(1, 2, 3, 1000) == Pick(1, 2, 5, 1000) {
		t.Error("Pick is not a function of its arguments, or ignores the attempt")
	}
}

func TestPollingProblem(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		refresh, hold, grace time.Duration
		want                 string // a word of the problem; "" for none
	}{
		{20 * s, 300 * s, 40 * s, ""},
		{s, 2 * s, s, ""},
		{s / 2, 300 * s, 40 * s, "RefreshInterval"},
		{6 * time.Minute, time.Hour, 10 * time.Minute, "RefreshInterval"},
		{20 * s, 39 * s, 20 * s, "QueueHold"},
		{20 * s, 300 * s, 19 * s, "ArrivalGrace"},
		{20 * s, 300 * s, 301 * s, "ArrivalGrace"},
	} {
		got := PollingProblem(tc.refresh, tc.hold, tc.grace)
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("PollingProblem(%v, %v, %v) = %q, want %q", tc.refresh, tc.hold, tc.grace, got, tc.want)
		}
	}
}
