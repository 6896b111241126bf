package estimate

import (
	"container/heap"
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
// After a burst the whole crowd polls in step, so admission runs once per refresh
// interval: Tr is the 61-second window and Ts the session, each rounded up to whole
// refresh intervals, and each wave goes in at one instant. With arrivals spread out,
// someone polls every second: Tr is 61 s, Ts is the session plus the next holder's wait
// for its poll, each wave takes as long to go in as the opening one did, and those the
// rate lets in wait for their poll too (see cycles for those waits). Those who give up
// are left out (their places pass on), and Throughput is measured as in Forecast.
//
// The closed form is exact, every figure equal to the simulation's, for a burst (no
// Spread or Curve) with sessions of a fixed length (no SessionSpread), nobody giving up,
// a RefreshInterval of whole seconds, and limits where the waves repeat: bound by the
// rate with P·⌈Ts/Tr⌉ ≤ C (the waves never fill the site), or by capacity with
// ⌈C/P⌉·Tr ≤ Ts (the site fills before the first session ends). Elsewhere it is an
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

// Plan runs the scenario through the room's admission rules (package admission: the same
// Allowance, liveness buckets and 61-slot rate window the stores apply) in simulated time,
// one second at a time, and reports what the crowd will live through.
//
// Each waiting visitor polls every RefreshInterval from its arrival; a slot is granted in
// ticket order as the rules allow and claimed at the holder's next poll; a visitor who gave
// up less than QueueHold ago is still granted a slot, which comes back after ArrivalGrace;
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
	claim          time.Duration // the wait of those the rate lets in for their poll
}

func newWaves(s Scenario) waves {
	window, cycle, claim := cycles(s)
	return waves{rate: s.NewUsersPerMinute, capacity: s.TotalActiveUsers, window: window, cycle: cycle, claim: claim}
}

// enter is when the k-th visitor to stay gets in, if it is there by then; opening(j) is
// when the j-th went in, for j in the opening wave: later waves take as long.
func (w waves) enter(k int, opening func(int) time.Duration) time.Duration {
	p, c := w.rate, w.capacity
	byRate := times(k/p, w.window) + min(opening(k%p), long)
	if k >= p {
		byRate += w.claim
	}
	r := k % c
	byCapacity := times(k/c, w.cycle) + times(r/p, w.window) + min(opening(r%p), long)
	if r >= p {
		byCapacity += w.claim
	}
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
	period, slot, _ := cycles(s)
	cycle := period
	if bottleneck(s) != "rate" {
		cycle = max(slot, admission.WindowSlots*time.Second)
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
	period, _, _ := cycles(s)
	return float64(s.NewUsersPerMinute) / period.Minutes()
}

func turnoverBound(s Scenario) float64 {
	_, cycle, _ := cycles(s)
	return float64(s.TotalActiveUsers) / cycle.Minutes()
}

// cycles returns how often the rate window lets a wave in, how long a place takes to pass
// from one visitor to the next, and how long a visitor the rate lets in waits for its poll.
//
// Admission runs when someone joins or polls, and a visitor granted a place comes in at
// its next poll. After a burst the whole crowd polls on the same second, once per refresh
// interval: the window opens on the first poll after 61 s, and a session's place is taken
// at the first poll after it ends, each by a visitor polling right then. With arrivals
// spread out someone polls every second, so a wave is granted as soon as the window
// allows (61 one-second slots), and each visitor polls at its own phase of the refresh
// interval, set by when it arrived. With arrivals evenly spread, g apart, the next holder
// of a place is C (TotalActiveUsers) visitors behind the last, so it polls C·g later in
// the interval and comes in (C·g − session) mod refresh after the session ends; one the
// rate lets in is P (NewUsersPerMinute) behind the one whose grant left the window, and
// comes in (P·g − 61 s) mod refresh after its grant. With sessions of varying length or
// an arrival curve, that is half a refresh interval on average.
func cycles(s Scenario) (ratePeriod, slotCycle, claimDelay time.Duration) {
	window := admission.WindowSlots * time.Second
	r := s.RefreshInterval
	switch {
	case s.Spread == 0 && len(s.Curve) == 0:
		ceil := func(d time.Duration) time.Duration { return (d + r - 1) / r * r }
		return ceil(window), ceil(s.Session), 0
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
		return window, s.Session + behind(s.TotalActiveUsers, s.Session), behind(s.NewUsersPerMinute, window)
	}
	return window, s.Session + r/2, r / 2
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

// A simulated visitor. Times are milliseconds from the opening.
type simVisitor struct {
	arrive  int64
	giveUp  int64 // math.MaxInt64: stays until admitted
	session int64 // how long it holds a slot once admitted
	granted bool
	claim   int64 // when it entered; -1 not yet
}

type simulation struct {
	s       Scenario
	limits  admission.Limits
	vs      []simVisitor
	quit    []int // visitors who will give up, by when
	next    int   // next visitor to arrive
	head    int   // admission's cursor: visitors before it were granted or skipped
	now     int64 // ms since the opening
	refresh int64

	// Admission runs inside a join or a poll, so only on seconds when someone joins or a
	// waiter polls. Waiters poll on a fixed second of each refresh interval: polls counts
	// the waiters by that second (nil when the interval is not whole seconds; then
	// admission runs every second).
	polls []int

	holds  simHeap // slots held (sessions and grants), by when they free
	claims simHeap // granted visitors, by their next poll
	window [admission.WindowSlots]struct{ slot, n int64 }

	waiting, gaveUp, admitted int
	lastIn                    int64 // the last admission
	drain                     int64
	minute                    []time.Duration // waits of those admitted since the last sample
	series                    []Sample
}

func newSimulation(s Scenario) *simulation {
	m := &simulation{
		s: s,
		limits: admission.Limits{
			Capacity: int64(s.TotalActiveUsers), PerMinute: int64(s.NewUsersPerMinute),
			Session: s.Session, Renewal: true, Hold: s.QueueHold, Grace: s.ArrivalGrace,
		},
		vs:      make([]simVisitor, s.Arrivals),
		refresh: s.RefreshInterval.Milliseconds(),
	}
	if m.refresh%1000 == 0 {
		m.polls = make([]int, m.refresh/1000)
	}
	s.eachVisitor(func(i int, c Visitor) {
		v := simVisitor{arrive: c.Arrive.Milliseconds(), giveUp: math.MaxInt64, session: c.Session.Milliseconds(), claim: -1}
		if c.GiveUp > 0 {
			v.giveUp = c.GiveUp.Milliseconds()
			m.quit = append(m.quit, i)
		}
		m.vs[i] = v
	})
	slices.SortStableFunc(m.quit, func(a, b int) int { return cmpInt64(m.vs[a].giveUp, m.vs[b].giveUp) })
	return m
}

func (m *simulation) run() error {
	for m.admitted+m.gaveUp < len(m.vs) {
		if m.now > MaxHorizon.Milliseconds() {
			return fmt.Errorf("%w (%d days): %d of %d still waiting", ErrTooLong, MaxHorizon/(24*time.Hour), m.waiting, len(m.vs))
		}
		m.tick()
		m.now += 1000
	}
	m.sample()
	return nil
}

// tick is one second of the room: arrivals, freed slots, claims, give-ups, then admission.
func (m *simulation) tick() {
	joined := false
	for m.next < len(m.vs) && m.vs[m.next].arrive <= m.now {
		m.wait(&m.vs[m.next], 1)
		m.next++
		joined = true
	}
	for len(m.quit) > 0 && m.vs[m.quit[0]].giveUp <= m.now {
		if v := &m.vs[m.quit[0]]; v.claim < 0 && v.arrive <= m.now {
			m.wait(v, -1)
			m.gaveUp++
			m.drain = max(m.drain, v.giveUp)
		}
		m.quit = m.quit[1:]
	}
	ops := joined || m.polls == nil || m.polls[m.now/1000%int64(len(m.polls))] > 0
	m.holds.popUntil(m.now, nil)
	m.claims.popUntil(m.now, m.claim)
	if !ops {
		m.idle()
		return
	}

	slot := admission.Slot(m.now)
	allow := admission.Allowance(admission.State{Active: int64(m.holds.Len()), Window: m.windowCount(slot)}, m.limits)
	now := admission.Bucket(m.now) + 1
	grace := m.limits.Grace.Milliseconds()
	for ; m.head < m.next && allow > 0; m.head++ {
		v := &m.vs[m.head]
		if !admission.Live(admission.Bucket(m.lastPoll(v))+1, now, m.limits) {
			continue // gave up longer than the hold ago: skipped, costs nothing
		}
		allow--
		v.granted = true
		m.grant(slot)
		if poll := m.nextPoll(v); v.giveUp > poll && poll <= m.now+grace {
			if poll == m.now {
				m.claim(m.head) // its own request ran admission: it enters now
				continue
			}
			// The slot is held from the grant to the claim, then by the session.
			heap.Push(&m.claims, simEvent{at: poll, v: m.head})
			heap.Push(&m.holds, simEvent{at: poll, v: m.head})
		} else {
			// Gone, or going before its next poll: the slot waits in vain for the grace.
			heap.Push(&m.holds, simEvent{at: m.now + grace, v: m.head})
		}
	}
	m.idle()
}

// idle ends a tick: the minute's sample.
func (m *simulation) idle() {
	if m.now%60000 == 0 {
		m.sample()
	}
}

// wait adds d to the waiters, and to those polling on v's second.
func (m *simulation) wait(v *simVisitor, d int) {
	m.waiting += d
	if m.polls != nil {
		m.polls[(v.arrive+999)/1000%int64(len(m.polls))] += d
	}
}

// claim lets granted visitor i in at its poll, unless it has gone; its grant then lapses
// after the grace.
func (m *simulation) claim(i int) {
	v := &m.vs[i]
	if v.giveUp <= m.now {
		return
	}
	v.claim = m.now
	m.wait(v, -1)
	m.admitted++
	m.lastIn = m.now
	m.drain = m.now
	m.minute = append(m.minute, time.Duration(m.now-v.arrive)*time.Millisecond)
	heap.Push(&m.holds, simEvent{at: m.now + v.session, v: i})
}

func (m *simulation) grant(slot int64) {
	w := &m.window[slot%admission.WindowSlots]
	if w.slot != slot {
		w.slot, w.n = slot, 0
	}
	w.n++
}

func (m *simulation) windowCount(slot int64) int64 {
	var n int64
	for _, w := range m.window {
		if w.slot > slot-admission.WindowSlots && w.slot <= slot {
			n += w.n
		}
	}
	return n
}

// A visitor joins on the second it arrives in and polls every refresh interval from its
// arrival, each poll served on the second it falls in: poll k is at pollAt(v, k).
func (m *simulation) pollAt(v *simVisitor, k int64) int64 {
	return (v.arrive + k*m.refresh + 999) / 1000 * 1000
}

// lastPoll is the visitor's last request at or before now, or before it gave up.
func (m *simulation) lastPoll(v *simVisitor) int64 {
	t := min(m.now, v.giveUp)
	k := max(0, (t-v.arrive)/m.refresh)
	for k > 0 && m.pollAt(v, k) > t {
		k--
	}
	return m.pollAt(v, k)
}

// nextPoll is the visitor's first request at or after now.
func (m *simulation) nextPoll(v *simVisitor) int64 {
	k := max(0, (m.now-v.arrive)/m.refresh)
	for m.pollAt(v, k) < m.now {
		k++
	}
	return m.pollAt(v, k)
}

func (m *simulation) sample() {
	var wait time.Duration
	if len(m.minute) > 0 {
		slices.Sort(m.minute)
		wait = m.minute[len(m.minute)/2]
	}
	m.series = append(m.series, Sample{
		At:       time.Duration(m.now) * time.Millisecond,
		Waiting:  m.waiting,
		Active:   m.holds.Len(),
		Admitted: m.admitted,
		Wait:     wait,
	})
	m.minute = m.minute[:0]
}

func (m *simulation) forecast() Forecast {
	waits := make([]time.Duration, 0, m.admitted)
	for _, v := range m.vs {
		if v.claim >= 0 {
			waits = append(waits, time.Duration(v.claim-v.arrive)*time.Millisecond)
		}
	}
	slices.Sort(waits)
	q := func(p float64) time.Duration {
		if len(waits) == 0 {
			return 0
		}
		return waits[min(len(waits)-1, int(p*float64(len(waits))))]
	}
	f := Forecast{
		Scenario:   m.s,
		Throughput: throughput(m.s, m.admitted, time.Duration(m.lastIn-m.vs[0].arrive)*time.Millisecond),
		Admitted:   m.admitted,
		GaveUp:     m.gaveUp,
		WaitP50:    q(0.5),
		WaitP95:    q(0.95),
		WaitMax:    q(1),
		Drain:      time.Duration(m.drain) * time.Millisecond,
		Bottleneck: bottleneck(m.s),
		Series:     m.series,
	}
	return f
}

type simEvent struct {
	at int64
	v  int
}

// simHeap orders events by time.
type simHeap []simEvent

func (h simHeap) Len() int           { return len(h) }
func (h simHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h simHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *simHeap) Push(x any)        { *h = append(*h, x.(simEvent)) }
func (h *simHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// popUntil pops the events due by now, calling f (if any) with each visitor.
func (h *simHeap) popUntil(now int64, f func(int)) {
	for h.Len() > 0 && (*h)[0].at <= now {
		e := heap.Pop(h).(simEvent)
		if f != nil {
			f(e.v)
		}
	}
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
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
