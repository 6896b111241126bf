package estimate

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/waitingroom-go/waitingroom/admission"
)

// Scenario is a crowd and a room: who arrives when, how long they stay, and the limits.
// Zero fields take the stated defaults; WithDefaults fills them in and says what is wrong.
type Scenario struct {
	// Arrivals is how many visitors come: 1 to MaxArrivals. Required.
	Arrivals int
	// Spread spreads the arrivals evenly over this period from the opening; 0 (default)
	// brings everyone at the opening instant.
	Spread time.Duration
	// Curve, if set, is the shape of the arrivals: relative weights of consecutive minutes
	// from the opening (say, {5, 3, 1, 1}); finite, not negative, with a positive, finite
	// sum. It overrides Spread.
	Curve []float64
	// Abandon is the share of visitors who give up if they are still waiting after
	// Patience (0 to 1). Default 0.
	Abandon float64
	// Patience is how long those who give up wait first: each waits a uniformly random
	// 50% to 150% of it. Default 10 minutes.
	Patience time.Duration
	// Session is how long an admitted visitor holds a place on the site, on average; each
	// stays Session ± SessionSpread (uniform), at least 1 s. Default 5 minutes; 1 s to 24
	// hours. It is the visitor's stay, not the room's SessionDuration: a host that releases
	// visitors when they are done frees places sooner than the session ends.
	Session       time.Duration
	SessionSpread time.Duration

	// The room's settings, as in waitingroom.Config and checked as the room checks them:
	// RefreshInterval 1 s to 5 minutes (default 20 s), QueueHold at least twice
	// RefreshInterval (default 5 minutes), ArrivalGrace from RefreshInterval to QueueHold
	// (default twice RefreshInterval). NewUsersPerMinute above TotalActiveUsers plans a
	// room with AllowRateAboveCapacity.
	TotalActiveUsers  int
	NewUsersPerMinute int
	RefreshInterval   time.Duration
	QueueHold         time.Duration
	ArrivalGrace      time.Duration

	// Seed makes the random draws (patience, session lengths) repeatable.
	Seed uint64
}

// MaxArrivals is the largest crowd Plan takes. A million visitors take about 110 MB and a
// second to plan; ten million about 1 GB and ten seconds.
const MaxArrivals = 10_000_000

// Forecast is what a Scenario leads to.
type Forecast struct {
	// Scenario is the scenario planned: the one given, with the defaults filled in.
	Scenario         Scenario
	Admitted, GaveUp int
	// Throughput is how fast visitors got in, per minute: those admitted, over the time
	// from the first arrival to the last admission plus one cycle of the bottleneck (Tr
	// when it is the rate, else Ts but at least the 61-second window; see Fluid).
	// Counting the cycle the last admissions take up makes it a pace the limits allow,
	// however few the visitors: it never exceeds NewUsersPerMinute × 60/61 nor
	// TotalActiveUsers per Session (with SessionSpread, per the shortest session). After a
	// long queue it is the room's steady pace.
	Throughput float64
	// Waits of those admitted, from arrival to entering the site.
	WaitP50, WaitP95, WaitMax time.Duration
	// Drain is when the last visitor was admitted or gave up, from the opening.
	Drain time.Duration
	// Bottleneck is what limits throughput: "rate" (NewUsersPerMinute) or
	// "capacity/session" (TotalActiveUsers over the session length).
	Bottleneck string
	// Series samples the room once a minute.
	Series []Sample
	// Fluid is the closed-form approximation of the same scenario, for comparison.
	Fluid Fluid
}

// Sample is the room at one instant of a forecast.
type Sample struct {
	At       time.Duration // since the opening
	Waiting  int           // visitors in the queue (gave-up ones excluded)
	Active   int           // sessions, including slots granted and not yet claimed
	Admitted int           // visitors admitted so far
	Wait     time.Duration // median wait of those admitted in the minute before At
}

// Fluid is the closed form of a scenario: wave arithmetic. With P = NewUsersPerMinute and
// C = TotalActiveUsers, the k-th visitor who stays (k = 0, 1, ... in arrival order) goes
// in at the later of its arrival and
//
//	max(⌊k/P⌋·Tr, ⌊k/C⌋·Ts + ⌊(k mod C)/P⌋·Tr)
//
// where Tr is how long the rate window takes to let the next wave in and Ts how long a
// place takes to pass from one visitor to the next. The first term is the rate: waves of
// P, one per window. The second is capacity: each session cycle the C places fill again,
// in waves of P. The first min(C, P) go in at once.
//
// The room tells the visitors the rate will let in next to poll as the window frees their
// slots, so Tr is the 60-second window itself, whatever the refresh interval, and each
// wave goes in when the one P places before it leaves the window. A freed session's place
// waits for its next holder's regular poll: after a burst the crowd polls in step, once
// per refresh interval, so Ts is the session rounded up to whole refresh intervals; with
// arrivals spread out, Ts is the session plus the next holder's wait for its poll (see
// cycles), and each wave takes as long to go in as the opening one did. Those who give up
// are left out (their places pass on), and Throughput is measured as in Forecast.
//
// The closed form is exact, every figure equal to the simulation's, for a burst (no
// Spread or Curve) with sessions of a fixed length (no SessionSpread), nobody giving up,
// a RefreshInterval of whole seconds, and limits where the waves repeat: bound by the
// rate with P·⌈Ts/Tr⌉ ≤ C (the waves never fill the site), or by capacity with
// ⌈C/P⌉·Tr ≤ Ts (the site fills before the first session ends) and a refresh interval
// that divides a minute (the waves keep the crowd's polling phase). Elsewhere it is an
// approximation, and the simulation is the answer.
type Fluid struct {
	Throughput                float64 // per minute
	WaitP50, WaitP95, WaitMax time.Duration
	Drain                     time.Duration
}

// Errors of Plan.
var (
	ErrScenario = errors.New("estimate: invalid scenario")
	// ErrTooLong is returned when the queue would not drain within MaxHorizon.
	ErrTooLong = errors.New("estimate: the queue does not drain within the planning horizon")
)

// MaxHorizon is the longest stretch of simulated time Plan goes through.
const MaxHorizon = 60 * 24 * time.Hour

// Plan runs the scenario's crowd through the room's own engine (admission.Room, which the
// stores run) in simulated time and reports what the crowd will live through.
//
// Each visitor joins on the second it arrives in and polls when the room tells it to:
// every RefreshInterval, or as the rate window frees its slot. A slot is granted in ticket
// order as the rules allow and claimed at the holder's next poll; a visitor who gave up
// less than QueueHold ago is still granted a slot, which comes back after ArrivalGrace;
// one who gave up longer ago is skipped. Admitted visitors hold their slot for their
// session and then free it.
func Plan(s Scenario) (Forecast, error) {
	s, err := s.WithDefaults()
	if err != nil {
		return Forecast{}, err
	}
	sim := newSimulation(s)
	if err := sim.run(); err != nil {
		return Forecast{}, err
	}
	f := sim.forecast()
	f.Fluid = FluidPlan(s)
	return f, nil
}

// FluidPlan is the closed form of the scenario (see Fluid); zero if the scenario is
// invalid.
func FluidPlan(s Scenario) Fluid {
	s, err := s.WithDefaults()
	if err != nil {
		return Fluid{}
	}
	n := int(float64(s.Arrivals)*(1-s.Abandon) + 0.5) // those who stay
	if n == 0 {
		return Fluid{}
	}
	w := newWaves(s)
	if s.Spread == 0 && len(s.Curve) == 0 {
		// Everyone arrives at once, so the k-th waits until w.enter(k), which grows with k.
		at := func(p float64) time.Duration {
			return w.enter(min(n-1, int(p*float64(n))), func(int) time.Duration { return 0 })
		}
		drain := at(1)
		return Fluid{
			Throughput: throughput(s, n, drain),
			WaitP50:    at(0.5), WaitP95: at(0.95), WaitMax: drain, Drain: drain,
		}
	}
	arr := s.arrivalTimes()
	stride := float64(len(arr)) / float64(n)
	arrival := func(k int) time.Duration { return arr[min(int(float64(k)*stride), len(arr)-1)] }
	waits := make([]time.Duration, n)
	var drain time.Duration
	for k := range n {
		a := arrival(k)
		in := max(a, w.enter(k, arrival))
		waits[k] = in - a
		drain = max(drain, in)
	}
	slices.Sort(waits)
	q := func(p float64) time.Duration { return waits[min(n-1, int(p*float64(n)))] }
	return Fluid{
		Throughput: throughput(s, n, drain-arr[0]),
		WaitP50:    q(0.5), WaitP95: q(0.95), WaitMax: q(1), Drain: drain,
	}
}

// waves is the arithmetic of Fluid.
type waves struct {
	rate, capacity int
	window, cycle  time.Duration // Tr and Ts
}

func newWaves(s Scenario) waves {
	window, cycle := cycles(s)
	return waves{rate: s.NewUsersPerMinute, capacity: s.TotalActiveUsers, window: window, cycle: cycle}
}

// enter is when the k-th visitor to stay gets in, if it is there by then; opening(j) is
// when the j-th went in, for j in the opening wave: later waves take as long.
func (w waves) enter(k int, opening func(int) time.Duration) time.Duration {
	p, c := w.rate, w.capacity
	byRate := times(k/p, w.window) + min(opening(k%p), long)
	r := k % c
	byCapacity := times(k/c, w.cycle) + times(r/p, w.window) + min(opening(r%p), long)
	return min(max(byRate, byCapacity), long)
}

// long is where the wave arithmetic stops counting: far beyond any plan (73 years), and
// short enough that a few such durations add up without overflowing.
const long = time.Duration(math.MaxInt64 / 4)

// times is n·d, or long if that is longer.
func times(n int, d time.Duration) time.Duration {
	if d > 0 && int64(n) >= int64(long/d) {
		return long
	}
	return time.Duration(n) * d
}

// throughput is admissions per minute as Forecast.Throughput defines it; span is from the
// first arrival to the last admission.
func throughput(s Scenario, admitted int, span time.Duration) float64 {
	if admitted == 0 {
		return 0
	}
	period, slot := cycles(s)
	cycle := period
	if bottleneck(s) != "rate" {
		cycle = max(slot, admission.RateWindow)
	}
	return float64(admitted) / (span.Minutes() + cycle.Minutes())
}

// throughputBound is the most visitors a minute the room lets in with a queue waiting, in
// the long run: NewUsersPerMinute per rate period, or the capacity turning over once per
// slot cycle (see cycles).
func throughputBound(s Scenario) float64 {
	return math.Min(rateBound(s), turnoverBound(s))
}

func rateBound(s Scenario) float64 {
	period, _ := cycles(s)
	return float64(s.NewUsersPerMinute) / period.Minutes()
}

func turnoverBound(s Scenario) float64 {
	_, cycle := cycles(s)
	return float64(s.TotalActiveUsers) / cycle.Minutes()
}

// cycles returns how often the rate window lets a wave in and how long a place takes to
// pass from one visitor to the next.
//
// The room tells those the rate will let in to poll as the window frees their slots: a
// wave goes in RateWindow after the one before, whatever the refresh interval. A session's
// place is taken at its next holder's next regular poll. After a burst the crowd polls on
// the same second, once per refresh interval, so that is the first such poll after the
// session ends. With arrivals evenly spread, g apart, each visitor polls at its own phase
// of the refresh interval, set by when it arrived; the next holder of a place is C
// (TotalActiveUsers) visitors behind the last, so it polls C·g later in the interval and
// comes in (C·g − session) mod refresh after the session ends. With sessions of varying
// length or an arrival curve, that is half a refresh interval on average.
func cycles(s Scenario) (ratePeriod, slotCycle time.Duration) {
	window := admission.RateWindow
	r := s.RefreshInterval
	switch {
	case s.Spread == 0 && len(s.Curve) == 0:
		ceil := func(d time.Duration) time.Duration { return (d + r - 1) / r * r }
		return window, ceil(s.Session)
	case s.SessionSpread == 0 && len(s.Curve) == 0:
		gap := float64(s.Spread) / float64(s.Arrivals)
		// behind is how long after d the visitor n places behind polls.
		behind := func(n int, d time.Duration) time.Duration {
			lag := math.Mod(float64(n)*gap-float64(d), float64(r))
			if lag < 0 {
				lag += float64(r)
			}
			return time.Duration(lag)
		}
		return window, s.Session + behind(s.TotalActiveUsers, s.Session)
	}
	return window, s.Session + r/2
}

func bottleneck(s Scenario) string {
	if rateBound(s) <= turnoverBound(s) {
		return "rate" // the rate when they tie: it sets the waves
	}
	return "capacity/session"
}

// WithDefaults returns the scenario with its zero fields set to their defaults, as Plan
// runs it, or ErrScenario saying what is wrong with it.
func (s Scenario) WithDefaults() (Scenario, error) {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&s.Patience, 10*time.Minute)
	def(&s.Session, 5*time.Minute)
	def(&s.RefreshInterval, 20*time.Second)
	def(&s.QueueHold, 5*time.Minute)
	def(&s.ArrivalGrace, 2*s.RefreshInterval)
	bad := func(format string, args ...any) (Scenario, error) {
		return s, fmt.Errorf("%w: "+format, append([]any{ErrScenario}, args...)...)
	}
	switch {
	case s.Arrivals < 1 || s.Arrivals > MaxArrivals:
		return bad("Arrivals must be from 1 to %d, got %d", MaxArrivals, s.Arrivals)
	case s.TotalActiveUsers < 1:
		return bad("TotalActiveUsers must be at least 1, got %d", s.TotalActiveUsers)
	case s.NewUsersPerMinute < 1:
		return bad("NewUsersPerMinute must be at least 1, got %d", s.NewUsersPerMinute)
	case s.Abandon < 0 || s.Abandon > 1 || math.IsNaN(s.Abandon):
		return bad("Abandon must be a share from 0 to 1, got %v", s.Abandon)
	case s.Spread < 0 || s.Patience < 0 || s.SessionSpread < 0:
		return bad("Spread, Patience and SessionSpread must not be negative")
	case s.Session < time.Second || s.Session > 24*time.Hour:
		return bad("Session must be from 1s to 24h, got %v", s.Session)
	case s.SessionSpread > s.Session:
		return bad("SessionSpread (%v) must not exceed Session (%v)", s.SessionSpread, s.Session)
	}
	if p := admission.PollingProblem(s.RefreshInterval, s.QueueHold, s.ArrivalGrace); p != "" {
		return bad("%s", p)
	}
	var total float64
	for _, w := range s.Curve {
		if w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
			return bad("arrival Curve weights must be finite and not negative, got %v", w)
		}
		total += w
	}
	switch {
	case len(s.Curve) > 0 && total == 0:
		return bad("arrival Curve has no weight")
	case math.IsInf(total, 0):
		return bad("arrival Curve weights add up to more than a float64 holds; scale them down")
	}
	return s, nil
}

// arrivalTimes returns every visitor's arrival, in order.
func (s Scenario) arrivalTimes() []time.Duration {
	out := make([]time.Duration, s.Arrivals)
	s.eachArrival(func(i int, at time.Duration) { out[i] = at })
	return out
}

// eachArrival calls f with every visitor's arrival, in order.
func (s Scenario) eachArrival(f func(i int, at time.Duration)) {
	switch {
	case len(s.Curve) > 0:
		var total float64
		for _, w := range s.Curve {
			total += w
		}
		// Invert the cumulative curve, arrivals spread evenly within each minute.
		i := 0
		var cum float64
		for m, w := range s.Curve {
			lo := cum
			cum += w
			for ; i < s.Arrivals && float64(i)+0.5 <= cum/total*float64(s.Arrivals); i++ {
				frac := 0.0
				if w > 0 {
					frac = min(1, max(0, ((float64(i)+0.5)/float64(s.Arrivals)*total-lo)/w))
				}
				f(i, time.Duration((float64(m)+frac)*float64(time.Minute)))
			}
		}
		for ; i < s.Arrivals; i++ {
			f(i, time.Duration(len(s.Curve))*time.Minute)
		}
	case s.Spread > 0:
		for i := range s.Arrivals {
			f(i, time.Duration(float64(i)/float64(s.Arrivals)*float64(s.Spread)))
		}
	default:
		for i := range s.Arrivals {
			f(i, 0)
		}
	}
}

// Visitor is one member of a scenario's crowd. Times are from the opening.
type Visitor struct {
	Arrive  time.Duration
	GiveUp  time.Duration // leaves the queue then if still waiting; 0: never
	Session time.Duration // holds a place this long once admitted
}

// Crowd returns the scenario's visitors in arrival order, drawn as Plan draws them.
func Crowd(s Scenario) ([]Visitor, error) {
	s, err := s.WithDefaults()
	if err != nil {
		return nil, err
	}
	out := make([]Visitor, s.Arrivals)
	s.eachVisitor(func(i int, v Visitor) { out[i] = v })
	return out, nil
}

// eachVisitor calls f with every visitor of the crowd, in arrival order, without holding
// them all: the simulation keeps its own, smaller, records.
func (s Scenario) eachVisitor(f func(i int, v Visitor)) {
	rng := rand.New(rand.NewPCG(s.Seed, 0x9e3779b97f4a7c15))
	s.eachArrival(func(i int, a time.Duration) {
		v := Visitor{Arrive: a, Session: s.Session}
		if s.Abandon > 0 && rng.Float64() < s.Abandon {
			v.GiveUp = a + time.Duration(float64(s.Patience)*(0.5+rng.Float64())).Truncate(time.Millisecond)
		}
		if s.SessionSpread > 0 {
			v.Session += time.Duration((2*rng.Float64() - 1) * float64(s.SessionSpread)).Truncate(time.Millisecond)
		}
		v.Session = max(v.Session, time.Second)
		f(i, v)
	})
}

// Recommendation is the smallest settings that keep every wait within a target.
type Recommendation struct {
	Feasible          bool
	NewUsersPerMinute int
	TotalActiveUsers  int
	Forecast          Forecast // of the scenario with the recommended settings, when Feasible
	Reason            string   // why no settings can, when not Feasible
}

// Recommend finds, for the scenario's crowd and an origin that takes at most
// s.TotalActiveUsers visitors at once, the smallest NewUsersPerMinute (at most that
// capacity) and then the smallest TotalActiveUsers (at least that rate) that keep the
// longest wait within target; or says that none can, and why. s.NewUsersPerMinute is
// ignored.
//
// The longest wait falls as either setting grows, but not strictly: people go in at their
// polls, and one more a minute can move the last of them to a poll up to a refresh
// interval later (with 10,000 visitors over a minute and 2000 places, 136 a minute makes
// the last wait 20 s longer than 134 does). So each search bisects, then walks down from
// what it found, one value at a time, while the longest wait stays within the target
// plus two refresh intervals (at most 100 values), and returns the smallest value on the
// way that meets the target. So the result meets the target, and no value in the stretch
// walked does; a value below that stretch would have to cut the longest wait by more
// than two refresh intervals against the trend.
func Recommend(s Scenario, target time.Duration) (Recommendation, error) {
	if target <= 0 {
		return Recommendation{}, fmt.Errorf("%w: target wait must be positive", ErrScenario)
	}
	capMax := s.TotalActiveUsers
	s.NewUsersPerMinute = max(capMax, 1)
	s, err := s.WithDefaults()
	if err != nil {
		return Recommendation{}, err
	}
	// Only what the search needs is kept of each plan: a forecast's series can be large.
	type result struct {
		waitMax time.Duration
		drained bool
	}
	plans := map[[2]int]result{}
	plan := func(rate, capacity int) (result, error) {
		if r, ok := plans[[2]int{rate, capacity}]; ok {
			return r, nil
		}
		t := s
		t.NewUsersPerMinute, t.TotalActiveUsers = rate, capacity
		f, err := Plan(t)
		if err != nil && !errors.Is(err, ErrTooLong) {
			return result{}, err
		}
		r := result{waitMax: f.WaitMax, drained: err == nil}
		plans[[2]int{rate, capacity}] = r
		return r, nil
	}
	slack := 2 * s.RefreshInterval
	// search returns the smallest n in [lo, hi] whose plan meets the target (see above),
	// or false if hi misses it and none of the walk below it meets it.
	search := func(lo, hi int, planOf func(int) (result, error)) (int, bool, error) {
		miss := func(n int, by time.Duration) (bool, error) {
			r, err := planOf(n)
			return !r.drained || r.waitMax > target+by, err
		}
		n := hi
		if out, err := miss(hi, 0); err != nil {
			return 0, false, err
		} else if !out {
			if n, err = smallest(lo, hi, func(n int) (bool, error) {
				out, err := miss(n, 0)
				return !out, err
			}); err != nil {
				return 0, false, err
			}
		}
		best, found := 0, false
		for m := n; m >= lo && m > n-recommendWalk; m-- {
			if far, err := miss(m, slack); err != nil || far {
				return best, found, err
			}
			if out, _ := miss(m, 0); !out {
				best, found = m, true
			}
		}
		return best, found, nil
	}
	rate, ok, err := search(1, capMax, func(r int) (result, error) { return plan(r, capMax) })
	if err != nil {
		return Recommendation{}, err
	}
	if !ok {
		r, err := plan(capMax, capMax)
		if err != nil {
			return Recommendation{}, err
		}
		longest := "the longest wait is " + short(r.waitMax.Round(time.Minute))
		if !r.drained {
			longest = fmt.Sprintf("the queue does not empty within %d days (the planning horizon)", MaxHorizon/(24*time.Hour))
		}
		t := s
		t.NewUsersPerMinute = capMax
		pace := throughputBound(t)
		return Recommendation{Reason: fmt.Sprintf(
			"even letting in %d a minute, as many as the site holds, at most %.*f visitors a minute get through "+
				"(%d on the site at once, sessions of %s), so %s, over the %s target; "+
				"the origin must take more visitors at once, or sessions be shorter",
			capMax, max(0, 2-int(math.Floor(math.Log10(pace)))), pace, capMax, short(s.Session.Round(time.Second)), longest, short(target))}, nil
	}
	// The smallest capacity that still meets the target with that rate.
	capacity, ok, err := search(rate, capMax, func(c int) (result, error) { return plan(rate, c) })
	if err != nil {
		return Recommendation{}, err
	}
	if !ok {
		capacity = capMax // met with all of it: the rate search saw it
	}
	t := s
	t.NewUsersPerMinute, t.TotalActiveUsers = rate, capacity
	best, err := Plan(t)
	return Recommendation{Feasible: true, NewUsersPerMinute: rate, TotalActiveUsers: capacity, Forecast: best}, err
}

// recommendWalk is how many values, at most, Recommend tries one by one below what its
// bisection found.
const recommendWalk = 100

// smallest returns the smallest n in [lo, hi] for which ok holds, given that it holds at hi
// and, roughly, keeps holding as n grows.
func smallest(lo, hi int, ok func(int) (bool, error)) (int, error) {
	for lo < hi {
		mid := (lo + hi) / 2
		yes, err := ok(mid)
		if err != nil {
			return 0, err
		}
		if yes {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, nil
}

// short writes d as Go reads it back, without the zero tails: "5m", "1h30m", "45s".
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
