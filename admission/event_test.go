package admission

import (
	"errors"
	"math"
	"reflect"
	"testing"
	"time"
)

// eventBase is a valid room without events; tests copy it and add a schedule.
var eventBase = Limits{
	Capacity: 10, PerMinute: 5, Session: time.Minute, Renewal: true,
	Hold: 5 * time.Minute, Grace: 40 * time.Second, Recovery: 30 * time.Second, LastEpoch: 7,
}

var permuteSeeds = []int64{0, 1, 2, 42, pickP - 1, pickP, 1<<40 + 12345, MaxSeed - 1}

// checkBijection fails unless Permute(seed, n, ·) maps [0, n) onto [0, n) and
// PermuteIndex(seed, n, ·) undoes it.
func checkBijection(t *testing.T, seed, n int64) {
	t.Helper()
	seen := make([]bool, n)
	for k := range n {
		i := Permute(seed, n, k)
		if i < 0 || i >= n {
			t.Fatalf("Permute(%d, %d, %d) = %d, outside [0, %d)", seed, n, k, i, n)
		}
		if seen[i] {
			t.Fatalf("Permute(%d, %d, ·) hits %d twice (again at k=%d)", seed, n, i, k)
		}
		seen[i] = true
		if back := PermuteIndex(seed, n, i); back != k {
			t.Fatalf("PermuteIndex(%d, %d, Permute(…, %d) = %d) = %d, want %d", seed, n, k, i, back, k)
		}
	}
}

func TestPermuteBijection(t *testing.T) {
	for n := int64(1); n <= 300; n++ {
		for _, seed := range permuteSeeds {
			checkBijection(t, seed, n)
		}
	}
	for _, n := range []int64{1000, 1024, 4096, 4097, 100003} {
		for _, seed := range permuteSeeds[:4] {
			checkBijection(t, seed, n)
		}
	}
}

func TestPermuteIndexOnly(t *testing.T) {
	// PermuteIndex alone must be a bijection too (not only the inverse on Permute's image).
	for _, n := range []int64{1, 2, 3, 7, 99, 1000} {
		seen := make([]bool, n)
		for i := range n {
			k := PermuteIndex(5, n, i)
			if k < 0 || k >= n || seen[k] {
				t.Fatalf("PermuteIndex(5, %d, %d) = %d: out of range or repeated", n, i, k)
			}
			seen[k] = true
			if Permute(5, n, k) != i {
				t.Fatalf("Permute(5, %d, PermuteIndex(5, %d, %d)) != %d", n, n, i, i)
			}
		}
	}
}

// chiSquaredQuantile approximates the upper quantile of the chi-squared distribution with
// dof degrees of freedom whose standard normal quantile is z (Wilson–Hilferty).
func chiSquaredQuantile(dof, z float64) float64 {
	h := 2 / (9 * dof)
	return dof * math.Pow(1-h+z*math.Sqrt(h), 3)
}

func TestPermuteUniformCells(t *testing.T) {
	const n, seeds = 8, 20000
	var counts [n][n]int
	for seed := range int64(seeds) {
		for k := range int64(n) {
			counts[k][Permute(seed, n, k)]++
		}
	}
	// Every row and column of the table sums to seeds exactly (each seed gives a
	// permutation), so the statistic has (n-1)^2 = 49 degrees of freedom.
	// The p = 0.001 upper quantile: z = 3.0902 (normal upper 0.1%); Wilson–Hilferty gives
	// 49·(1 − 2/441 + 3.0902·√(2/441))³ ≈ 85.43, the exact value is 85.35.
	const dof = (n - 1) * (n - 1)
	threshold := chiSquaredQuantile(dof, 3.0902)
	if threshold < 85 || threshold > 86 {
		t.Fatalf("threshold %.2f, want about 85.4", threshold)
	}
	expected := float64(seeds) / n
	chi2 := 0.0
	for k := range n {
		for i := range n {
			d := float64(counts[k][i]) - expected
			chi2 += d * d / expected
		}
	}
	t.Logf("chi-squared = %.2f over %d dof (threshold %.2f)", chi2, dof, threshold)
	if chi2 > threshold {
		t.Errorf("chi-squared %.2f > %.2f: Permute(seed, 8, k) is not uniform over seeds; counts %v", chi2, threshold, counts)
	}
}

func TestPermuteSpearman(t *testing.T) {
	const n = 2000
	bound := 4 / math.Sqrt(n-1) // about 0.0895; rho·√(n−1) is about standard normal
	for _, seed := range []int64{0, 1, 2, 3, 99, 123456789, MaxSeed - 1} {
		// k and Permute(seed, n, k) are both ranks 0..n-1, so rho = 1 − 6Σd²/(n(n²−1)).
		var sumD2 float64
		for k := range int64(n) {
			d := float64(Permute(seed, n, k) - k)
			sumD2 += d * d
		}
		rho := 1 - 6*sumD2/(float64(n)*(float64(n)*n-1))
		if math.Abs(rho) > bound {
			t.Errorf("seed %d: Spearman rho(k, Permute) = %.4f, want |rho| <= %.4f", seed, rho, bound)
		}
	}
}

func TestPermuteSeedsDiffer(t *testing.T) {
	const n = 2000
	seeds := []int64{0, 1, 2, 3, 4, 5, pickP - 1, pickP, pickP + 1, 2 * pickP, MaxSeed - 2, MaxSeed - 1}
	perms := make([][]int64, len(seeds))
	for s, seed := range seeds {
		perms[s] = make([]int64, n)
		for k := range int64(n) {
			perms[s][k] = Permute(seed, n, k)
		}
	}
	for a := range seeds {
		for b := a + 1; b < len(seeds); b++ {
			// Two independent permutations agree at about one place (Poisson(1));
			// 20 or more is essentially impossible by chance.
			same := 0
			for k := range n {
				if perms[a][k] == perms[b][k] {
					same++
				}
			}
			if same >= 20 {
				t.Errorf("seeds %d and %d: permutations agree at %d of %d places", seeds[a], seeds[b], same, n)
			}
		}
	}
}

func TestLimitsAt(t *testing.T) {
	l := eventBase
	l.Events = []Event{
		{Prequeue: 1000, Start: 2000, End: 3000, Shuffle: true, Seed: 11,
			Capacity: 100, PerMinute: 50, Session: 2 * time.Minute, Renewal: false, Method: Random},
		// Back to back, its pre-queue opening at the first's end.
		{Prequeue: 3000, Start: 3500, End: 4000,
			Capacity: 200, PerMinute: 60, Session: 3 * time.Minute, Renewal: true, Method: Passthrough},
		// Back to back with no pre-queue.
		{Prequeue: 4000, Start: 4000, End: 5000,
			Capacity: 300, PerMinute: 70, Session: 4 * time.Minute, Renewal: false, Method: Reject},
	}
	if err := l.Validate(); err != nil {
		t.Fatalf("schedule refused: %v", err)
	}
	const (
		none = iota
		pre
		active
	)
	tests := []struct {
		now   int64
		event int // index into l.Events, -1 for none
		phase int
	}{
		{-1 << 40, -1, none},
		{0, -1, none},
		{999, -1, none},
		{1000, 0, pre},
		{1999, 0, pre},
		{2000, 0, active},
		{2999, 0, active},
		{3000, 1, pre},
		{3499, 1, pre},
		{3500, 1, active},
		{3999, 1, active},
		{4000, 2, active},
		{4999, 2, active},
		{5000, -1, none},
		{1 << 50, -1, none},
	}
	for _, tt := range tests {
		got, ph := l.At(tt.now)
		if got.Events != nil {
			t.Errorf("At(%d): result carries events %v", tt.now, got.Events)
		}
		if len(l.Events) != 3 {
			t.Fatalf("At(%d) changed the receiver's events", tt.now)
		}
		want := eventBase
		switch tt.phase {
		case none:
			if ph != (Phase{}) {
				t.Errorf("At(%d): phase %+v, want none", tt.now, ph)
			}
		case pre:
			want.QueueAll = true
			if ph.Event != &l.Events[tt.event] || !ph.Prequeue || ph.Active() {
				t.Errorf("At(%d): phase %+v (active %v), want pre-queue of event %d", tt.now, ph, ph.Active(), tt.event)
			}
		case active:
			e := l.Events[tt.event]
			want.Capacity, want.PerMinute, want.Session, want.Renewal, want.Method = e.Capacity, e.PerMinute, e.Session, e.Renewal, e.Method
			if ph.Event != &l.Events[tt.event] || ph.Prequeue || !ph.Active() {
				t.Errorf("At(%d): phase %+v (active %v), want event %d running", tt.now, ph, ph.Active(), tt.event)
			}
		}
		if !limitsEqual(got, want) {
			t.Errorf("At(%d) limits = %+v, want %+v", tt.now, got, want)
		}
	}

	// Without events, At is the identity and never in an event.
	got, ph := eventBase.At(2500)
	if !limitsEqual(got, eventBase) || ph != (Phase{}) || ph.Active() {
		t.Errorf("no events: At = %+v, %+v", got, ph)
	}
}

func limitsEqual(a, b Limits) bool {
	if a.Events != nil || b.Events != nil {
		return false
	}
	return reflect.DeepEqual(a, b)
}

func TestValidateEvents(t *testing.T) {
	ev := func(pre, start, end int64) Event {
		return Event{Prequeue: pre, Start: start, End: end, Capacity: 5, PerMinute: 5, Session: time.Minute}
	}
	with := func(evs ...Event) Limits { l := eventBase; l.Events = evs; return l }
	seeded := func(e Event, seed int64) Event { e.Seed = seed; e.Shuffle = true; return e }
	tests := []struct {
		name string
		l    Limits
		want error // nil: valid
	}{
		{"one event", with(ev(0, 10, 20)), nil},
		{"no pre-queue", with(ev(10, 10, 20)), nil},
		{"back to back", with(ev(0, 10, 20), ev(20, 20, 30)), nil},
		{"back to back with pre-queue", with(ev(0, 10, 20), ev(20, 25, 30)), nil},
		{"seed 0", with(seeded(ev(0, 10, 20), 0)), nil},
		{"largest seed", with(seeded(ev(0, 10, 20), MaxSeed-1)), nil},
		{"prequeue after start", with(ev(11, 10, 20)), ErrEvents},
		{"end at start", with(ev(0, 10, 10)), ErrEvents},
		{"end before start", with(ev(0, 10, 5)), ErrEvents},
		{"overlap", with(ev(0, 10, 20), ev(15, 25, 30)), ErrEvents},
		{"pre-queue overlaps the previous event", with(ev(0, 10, 20), ev(19, 25, 30)), ErrEvents},
		{"unsorted", with(ev(100, 110, 120), ev(0, 10, 20)), ErrEvents},
		{"unsorted third", with(ev(0, 10, 20), ev(30, 40, 50), ev(20, 25, 29)), ErrEvents},
		{"duplicate", with(ev(0, 10, 20), ev(0, 10, 20)), ErrEvents},
		{"negative seed", with(seeded(ev(0, 10, 20), -1)), ErrEvents},
		{"seed at MaxSeed", with(seeded(ev(0, 10, 20), MaxSeed)), ErrEvents},
		{"event capacity 0", with(func() Event { e := ev(0, 10, 20); e.Capacity = 0; return e }()), ErrCapacity},
		{"event rate 0", with(func() Event { e := ev(0, 10, 20); e.PerMinute = 0; return e }()), ErrRate},
		{"event session 0", with(func() Event { e := ev(0, 10, 20); e.Session = 0; return e }()), ErrDuration},
		{"event method unknown", with(func() Event { e := ev(0, 10, 20); e.Method = Reject + 1; return e }()), ErrMethod},
		{"second event invalid", with(ev(0, 10, 20), func() Event { e := ev(30, 40, 50); e.Capacity = 0; return e }()), ErrCapacity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.l.Validate()
			switch {
			case tt.want == nil && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Errorf("Validate() = %v, want %v", err, tt.want)
			}
		})
	}

	t.Run("many events", func(t *testing.T) {
		evs := make([]Event, 1000)
		for i := range evs {
			at := int64(i) * 1000
			evs[i] = seeded(ev(at, at+100, at+1000), int64(i)*7919)
		}
		if err := with(evs...).Validate(); err != nil {
			t.Errorf("1000 valid events refused: %v", err)
		}
		evs[999].Prequeue = evs[998].End - 1
		if err := with(evs...).Validate(); !errors.Is(err, ErrEvents) {
			t.Errorf("overlap at the 1000th event: Validate() = %v, want ErrEvents", err)
		}
	})
}

func TestAllowanceQueueAllWins(t *testing.T) {
	roomy := State{}
	pass := eventBase
	pass.Method = Passthrough
	queueAll := pass
	queueAll.QueueAll = true
	reject := eventBase
	reject.Method = Reject
	tests := []struct {
		name string
		s    State
		l    Limits
		want int64
	}{
		{"queue all beats passthrough", roomy, queueAll, 0},
		{"queue all beats passthrough in recovery", State{Recovering: true}, queueAll, 0},
		{"reject admits nobody in an empty room", roomy, reject, 0},
		{"passthrough ignores recovery", State{Recovering: true, Active: 1 << 40, Window: 1 << 40}, pass, math.MaxInt64},
		{"passthrough", roomy, pass, math.MaxInt64},
	}
	for _, tt := range tests {
		if got := Allowance(tt.s, tt.l); got != tt.want {
			t.Errorf("%s: Allowance = %d, want %d", tt.name, got, tt.want)
		}
	}

	// Through At: a passthrough room in an event's pre-queue admits nobody, and a
	// passthrough event admits everyone once it starts.
	l := pass
	l.Events = []Event{{Prequeue: 100, Start: 200, End: 300, Capacity: 1, PerMinute: 1, Session: time.Minute, Method: Passthrough}}
	if at, _ := l.At(150); Allowance(roomy, at) != 0 {
		t.Errorf("passthrough room in a pre-queue: Allowance = %d, want 0", Allowance(roomy, at))
	}
	if at, _ := l.At(250); Allowance(State{Active: 5, Window: 5}, at) != math.MaxInt64 {
		t.Errorf("passthrough event: Allowance = %d, want MaxInt64", Allowance(State{Active: 5, Window: 5}, at))
	}
}

func BenchmarkPermute(b *testing.B) {
	const n = 1_000_000
	var sink int64
	k := int64(0)
	for b.Loop() {
		sink += Permute(12345, n, k)
		if k++; k == n {
			k = 0
		}
	}
	_ = sink
}
