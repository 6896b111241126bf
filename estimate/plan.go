package estimate

import (
	"container/heap"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/waitingroom-go/waitingroom/admission"
)

// Scenario is a crowd and a room: who arrives when, how long they stay, and the limits.
// Zero fields take the stated defaults.
type Scenario struct {
	// Arrivals is how many visitors come. Required.
	Arrivals int
	// Spread spreads the arrivals evenly over this period from the opening; 0 (default)
	// brings everyone at the opening instant.
	Spread time.Duration
	// Curve, if set, is the shape of the arrivals: relative weights of consecutive minutes
	// from the opening (say, {5, 3, 1, 1}). It overrides Spread.
	Curve []float64
	// Abandon is the share of visitors who give up if they are still waiting after
	// Patience (0 to 1). Default 0.
	Abandon float64
	// Patience is how long those who give up wait first: each waits a uniformly random
	// 50% to 150% of it. Default 10 minutes.
	Patience time.Duration
	// Session is how long an admitted visitor holds a place on the site, on average; each
	// stays Session ± SessionSpread (uniform). Default 5 minutes.
	Session       time.Duration
	SessionSpread time.Duration

	// The room's settings, as in waitingroom.Config.
	TotalActiveUsers  int
	NewUsersPerMinute int
	RefreshInterval   time.Duration // default 20 s
	QueueHold         time.Duration // default 5 minutes
	ArrivalGrace      time.Duration // default 2 × RefreshInterval

	// Seed makes the random draws (patience, session lengths) repeatable.
	Seed uint64
}

// Forecast is what a Scenario leads to.
type Forecast struct {
	Admitted, GaveUp int
	// Throughput is admissions per minute while people were waiting.
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

// Fluid is the closed-form (fluid) approximation: after an initial wave of min(capacity,
// rate) at the opening, visitors drain at a constant throughput, the lesser of
// NewUsersPerMinute per rate period and TotalActiveUsers per slot cycle (see the README:
// 61 s and session + refresh/2 when arrivals are spread out; both rounded up to whole
// refresh intervals after a burst, when the crowd polls in step). It is exact in the limit
// of a large burst with fixed sessions and no abandonment; otherwise an approximation.
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
	s, err := s.withDefaults()
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

// FluidPlan is the closed-form approximation of the scenario (see Fluid).
func FluidPlan(s Scenario) Fluid {
	s, err := s.withDefaults()
	if err != nil {
		return Fluid{}
	}
	mu := throughputBound(s)
	burst := float64(min(s.TotalActiveUsers, s.NewUsersPerMinute))
	// Visitors enter in waves: the k-th (in arrival order, among those who stay) on average
	// at (k - burst/2)/mu, plus the wait for its next poll when the rate sets the waves
	// (with capacity as the bottleneck that wait is in mu already).
	delay := 0.0
	if bottleneck(s) == "rate" {
		_, _, d := cycles(s)
		delay = d.Minutes()
	}
	n := float64(s.Arrivals) * (1 - s.Abandon) // those who stay; leavers free their places
	arr := s.arrivalTimes()
	waits := make([]float64, 0, len(arr))
	stride := float64(len(arr)) / n
	var drain float64
	for k := 0.0; k < n; k++ {
		a := arr[min(int(k*stride), len(arr)-1)].Minutes()
		enter := a
		if k >= burst {
			enter = math.Max(a, (k-burst/2)/mu+delay)
		}
		waits = append(waits, enter-a)
		drain = math.Max(drain, enter)
	}
	slices.Sort(waits)
	q := func(p float64) time.Duration {
		if len(waits) == 0 {
			return 0
		}
		return minutes(waits[min(len(waits)-1, int(p*float64(len(waits))))])
	}
	return Fluid{Throughput: mu, WaitP50: q(0.5), WaitP95: q(0.95), WaitMax: q(1), Drain: minutes(drain)}
}

// throughputBound is the most visitors a minute the room lets in with a queue waiting:
// NewUsersPerMinute per rate period, or the capacity turning over once per session cycle
// (see cycles).
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

// cycles returns how often the rate window lets a wave in, how long a slot takes to pass
// from one visitor to the next, and how long a granted visitor takes to come in when the
// rate sets the pace.
//
// Admission runs when someone joins or polls. When arrivals are spread out, someone polls
// every second: a wave enters as soon as the window allows (61 one-second slots), and a
// freed slot waits half a refresh interval, on average, for its next holder's poll. After
// a burst the whole crowd polls on the same second: admission runs once per refresh
// interval, so the window opens on the first poll after 61 s, and a session's slot is
// taken at the first poll after it ends, by a visitor who is polling right then.
func cycles(s Scenario) (ratePeriod, slotCycle, claimDelay time.Duration) {
	window := admission.WindowSlots * time.Second
	r := s.RefreshInterval
	if s.Spread == 0 && len(s.Curve) == 0 {
		ceil := func(d time.Duration) time.Duration { return (d + r - 1) / r * r }
		return ceil(window), ceil(s.Session), 0
	}
	return window, s.Session + r/2, r / 2
}

func bottleneck(s Scenario) string {
	if rateBound(s) <= turnoverBound(s) {
		return "rate"
	}
	return "capacity/session"
}

func (s Scenario) withDefaults() (Scenario, error) {
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
	case s.Arrivals < 1:
		return bad("arrivals must be at least 1, got %d", s.Arrivals)
	case s.TotalActiveUsers < 1:
		return bad("TotalActiveUsers must be at least 1, got %d", s.TotalActiveUsers)
	case s.NewUsersPerMinute < 1:
		return bad("NewUsersPerMinute must be at least 1, got %d", s.NewUsersPerMinute)
	case s.Abandon < 0 || s.Abandon > 1 || math.IsNaN(s.Abandon):
		return bad("abandon must be a share from 0 to 1, got %v", s.Abandon)
	case s.Spread < 0 || s.Patience < 0 || s.SessionSpread < 0:
		return bad("durations must not be negative")
	case s.Session < time.Second:
		return bad("session must be at least 1s, got %v", s.Session)
	case s.SessionSpread > s.Session:
		return bad("session spread (%v) must not exceed the session (%v)", s.SessionSpread, s.Session)
	case s.RefreshInterval < time.Second:
		return bad("refresh interval must be at least 1s, got %v", s.RefreshInterval)
	case s.QueueHold < s.RefreshInterval || s.ArrivalGrace < time.Second:
		return bad("hold must be at least the refresh interval, grace at least 1s")
	}
	var total float64
	for _, w := range s.Curve {
		if w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
			return bad("arrival curve weights must be finite and not negative")
		}
		total += w
	}
	if len(s.Curve) > 0 && total == 0 {
		return bad("arrival curve has no weight")
	}
	return s, nil
}

// arrivalTimes returns every visitor's arrival, in order.
func (s Scenario) arrivalTimes() []time.Duration {
	out := make([]time.Duration, s.Arrivals)
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
					frac = ((float64(i)+0.5)/float64(s.Arrivals)*total - lo) / w
				}
				out[i] = time.Duration((float64(m) + frac) * float64(time.Minute))
			}
		}
		for ; i < s.Arrivals; i++ {
			out[i] = time.Duration(len(s.Curve)) * time.Minute
		}
	case s.Spread > 0:
		for i := range out {
			out[i] = time.Duration(float64(i) / float64(s.Arrivals) * float64(s.Spread))
		}
	}
	return out
}

// Visitor is one member of a scenario's crowd. Times are from the opening.
type Visitor struct {
	Arrive  time.Duration
	GiveUp  time.Duration // leaves the queue then if still waiting; 0: never
	Session time.Duration // holds a place this long once admitted
}

// Crowd returns the scenario's visitors in arrival order, drawn as Plan draws them.
func Crowd(s Scenario) ([]Visitor, error) {
	s, err := s.withDefaults()
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(s.Seed, 0x9e3779b97f4a7c15))
	arr := s.arrivalTimes()
	out := make([]Visitor, len(arr))
	for i, a := range arr {
		v := Visitor{Arrive: a, Session: s.Session}
		if s.Abandon > 0 && rng.Float64() < s.Abandon {
			v.GiveUp = a + time.Duration(float64(s.Patience)*(0.5+rng.Float64())).Truncate(time.Millisecond)
		}
		if s.SessionSpread > 0 {
			v.Session += time.Duration((2*rng.Float64() - 1) * float64(s.SessionSpread)).Truncate(time.Millisecond)
		}
		v.Session = max(v.Session, time.Second)
		out[i] = v
	}
	return out, nil
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
	busyMs                    int64 // time during which someone waited
	busyAdmitted              int   // admissions during that time
	drain                     int64
	minute                    []time.Duration // waits of those admitted since the last sample
	series                    []Sample
}

func newSimulation(s Scenario) *simulation {
	crowd, _ := Crowd(s) // s is valid: Plan checked it
	m := &simulation{
		s: s,
		limits: admission.Limits{
			Capacity: int64(s.TotalActiveUsers), PerMinute: int64(s.NewUsersPerMinute),
			Session: s.Session, Renewal: true, Hold: s.QueueHold, Grace: s.ArrivalGrace,
		},
		vs:      make([]simVisitor, len(crowd)),
		refresh: s.RefreshInterval.Milliseconds(),
	}
	if m.refresh%1000 == 0 {
		m.polls = make([]int, m.refresh/1000)
	}
	for i, c := range crowd {
		v := simVisitor{arrive: c.Arrive.Milliseconds(), giveUp: math.MaxInt64, session: c.Session.Milliseconds(), claim: -1}
		if c.GiveUp > 0 {
			v.giveUp = c.GiveUp.Milliseconds()
			m.quit = append(m.quit, i)
		}
		m.vs[i] = v
	}
	slices.SortStableFunc(m.quit, func(a, b int) int { return cmpInt64(m.vs[a].giveUp, m.vs[b].giveUp) })
	return m
}

func (m *simulation) run() error {
	for m.admitted+m.gaveUp < len(m.vs) {
		if m.now > MaxHorizon.Milliseconds() {
			return fmt.Errorf("%w (%v): %d of %d still waiting", ErrTooLong, MaxHorizon, m.waiting, len(m.vs))
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
	queued := m.waiting > 0
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
	m.claims.popUntil(m.now, func(i int) { m.claim(i, queued) })
	if !ops {
		m.idle(queued)
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
				m.claim(m.head, queued) // its own request ran admission: it enters now
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
	m.idle(queued)
}

// idle ends a tick: time accounting and the minute's sample.
func (m *simulation) idle(queued bool) {
	if queued {
		m.busyMs += 1000
	}
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
func (m *simulation) claim(i int, queued bool) {
	v := &m.vs[i]
	if v.giveUp <= m.now {
		return
	}
	v.claim = m.now
	m.wait(v, -1)
	m.admitted++
	if queued {
		m.busyAdmitted++
	}
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
		Admitted:   m.admitted,
		GaveUp:     m.gaveUp,
		WaitP50:    q(0.5),
		WaitP95:    q(0.95),
		WaitMax:    q(1),
		Drain:      time.Duration(m.drain) * time.Millisecond,
		Bottleneck: bottleneck(m.s),
		Series:     m.series,
	}
	if m.busyMs > 0 {
		f.Throughput = float64(m.busyAdmitted) / (float64(m.busyMs) / 60000)
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
	Forecast          Forecast // of the scenario with the recommended settings
	Reason            string   // why no settings can, when not Feasible
}

// Recommend finds, for the scenario's crowd and an origin that takes at most
// s.TotalActiveUsers visitors at once, the smallest NewUsersPerMinute (at most that
// capacity) and then the smallest TotalActiveUsers that keep the longest wait within
// target; or says that none can, and why.
func Recommend(s Scenario, target time.Duration) (Recommendation, error) {
	if target <= 0 {
		return Recommendation{}, fmt.Errorf("%w: target wait must be positive", ErrScenario)
	}
	capMax := s.TotalActiveUsers
	try := func(rate, capacity int) (Forecast, bool, error) {
		t := s
		t.NewUsersPerMinute, t.TotalActiveUsers = rate, capacity
		f, err := Plan(t)
		return f, err == nil && f.WaitMax <= target, errIgnoreTooLong(err)
	}
	best, ok, err := try(capMax, capMax)
	if err != nil {
		return Recommendation{}, err
	}
	if !ok {
		t := s
		t.NewUsersPerMinute = capMax
		t, _ = t.withDefaults()
		mu := throughputBound(t)
		return Recommendation{Reason: fmt.Sprintf(
			"even letting in %d at a time as fast as they come, at most %.0f visitors a minute get through "+
				"(%d places, sessions of %v), so the longest wait is %v, over the %v target; "+
				"the origin must take more visitors at once, or sessions be shorter",
			capMax, mu, capMax, s.Session.Round(time.Second), best.WaitMax.Round(time.Minute), target)}, nil
	}
	// The smallest rate that meets the target with all the capacity, then the smallest
	// capacity that still meets it with that rate. Waits fall as either grows.
	rate, err := smallest(1, capMax, func(r int) (bool, error) {
		_, ok, err := try(r, capMax)
		return ok, err
	})
	if err != nil {
		return Recommendation{}, err
	}
	capacity, err := smallest(rate, capMax, func(c int) (bool, error) {
		_, ok, err := try(rate, c)
		return ok, err
	})
	if err != nil {
		return Recommendation{}, err
	}
	best, _, err = try(rate, capacity)
	return Recommendation{Feasible: true, NewUsersPerMinute: rate, TotalActiveUsers: capacity, Forecast: best}, err
}

// smallest returns the smallest n in [lo, hi] for which ok holds, given that it holds at hi
// and keeps holding as n grows.
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

// errIgnoreTooLong treats a queue that never drains as a missed target, not a failure.
func errIgnoreTooLong(err error) error {
	if errors.Is(err, ErrTooLong) {
		return nil
	}
	return err
}
