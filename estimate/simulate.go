package estimate

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/waitingroom-go/waitingroom/admission"
)

// The simulation runs a scenario's crowd through admission.Room, the engine the stores
// run, so that the forecast and the live room cannot drift apart. It holds no admission
// rule of its own: it only decides when each visitor joins, polls, gives up and leaves.
//
// Each visitor joins on the second it arrives in and then polls when the room tells it
// (Result.NextPoll), until it is admitted or gives up. Calling the engine for every poll
// of a crowd of millions waiting for hours would take too long, and most of those polls
// change nothing but the poller's liveness: so only the visitors near the head of the
// queue (the band: the first 2·NewUsersPerMinute+64 still waiting) poll through the
// engine one by one. Those further back poll every refresh interval, as the room tells a
// visitor it cannot let in before its next regular poll; their polls reach the engine as
// one Room.Step on each second that any of them polls, and their liveness words are
// worked out from when they polled (simQueue), as a store would have written them. A
// visitor behind the band has more live waiters ahead than the rate lets in at once, so
// no such step can grant it a slot.

// simBase is the store time of the opening: any instant a multiple of the liveness bucket
// and of a second would do, and the engine's epochs are never 0.
const simBase = 1_000_000_000_000

// A simulated visitor. Times are milliseconds from the opening.
type simVisitor struct {
	join    int64 // the second it arrives in
	giveUp  int64 // leaves the queue then if still waiting; math.MaxInt64: never
	session int64 // how long it holds its slot once admitted
	last    int64 // its last poll (or its join)
	next    int64 // its next poll; for one behind the band, every refresh from then on
	claim   int64 // when it entered; -1 not yet
	state   uint8
	band    bool // polls through the engine one by one
	dead    bool // counted by simQueue as a place gone (it gave up more than a hold ago)
}

const (
	absent uint8 = iota // not yet arrived
	waiting
	entered
	gone
)

type simulation struct {
	s       Scenario
	limits  admission.Limits
	room    *admission.Room
	q       *simQueue
	vs      []simVisitor
	refresh int64
	// Behind the band, visitors poll every refresh from their join, so on the same second
	// of each refresh interval: polls counts them by that second. Nil when the interval is
	// not whole seconds: then the engine steps every second while any of them wait.
	polls  []int
	behind int // waiting visitors behind the band

	now      int64
	arrived  int // visitors joined so far (in arrival order)
	quit     []int
	polling  simHeap // band visitors by their next poll
	leaving  simHeap // admitted visitors by when they leave
	deaths   simHeap // visitors who gave up, by when their place lapses
	bandEnd  int     // visitors before it and from the cursor on are in the band
	bandLive int     // waiting visitors in the band
	bandSize int

	waiting, gaveUp, admitted int
	lastIn, drain             int64
	minute                    []time.Duration // waits of those admitted since the last sample
	series                    []Sample
}

func newSimulation(s Scenario) *simulation {
	m := &simulation{
		s: s,
		limits: admission.Limits{
			Capacity: int64(s.TotalActiveUsers), PerMinute: int64(s.NewUsersPerMinute),
			// Visitors leave when they are done: sessions never run out before that.
			Session: s.Session + s.SessionSpread, Renewal: true,
			Hold: s.QueueHold, Grace: s.ArrivalGrace, Refresh: s.RefreshInterval,
		},
		vs:       make([]simVisitor, s.Arrivals),
		refresh:  s.RefreshInterval.Milliseconds(),
		bandSize: 2*s.NewUsersPerMinute + 64,
	}
	if m.refresh%1000 == 0 {
		m.polls = make([]int, m.refresh/1000)
	}
	s.eachVisitor(func(i int, c Visitor) {
		v := simVisitor{join: ceilSecond(c.Arrive.Milliseconds()), giveUp: math.MaxInt64, session: c.Session.Milliseconds(), claim: -1}
		if c.GiveUp > 0 {
			v.giveUp = c.GiveUp.Milliseconds()
			m.quit = append(m.quit, i)
		}
		m.vs[i] = v
	})
	slices.SortStableFunc(m.quit, func(a, b int) int { return cmpInt64(m.vs[a].giveUp, m.vs[b].giveUp) })
	m.q = &simQueue{m: m}
	m.room = admission.Open(simBase, m.q, m.limits)
	return m
}

func (m *simulation) run() error {
	m.now = m.vs[0].join
	for m.admitted+m.gaveUp < len(m.vs) {
		if m.now > MaxHorizon.Milliseconds() {
			return fmt.Errorf("%w (%d days): %d of %d still waiting", ErrTooLong, MaxHorizon/(24*time.Hour), m.waiting, len(m.vs))
		}
		m.tick()
		m.now = m.nextEvent()
	}
	m.sample()
	return nil
}

// tick is one instant of the room: lapsed places, give-ups, departures, arrivals, the
// band's polls, then the polls of those behind it.
func (m *simulation) tick() {
	t := m.now
	for len(m.deaths) > 0 && m.deaths[0].at <= t {
		m.lapse(m.deaths.pop().v)
	}
	for len(m.quit) > 0 && m.vs[m.quit[0]].giveUp <= t {
		m.giveUp(m.quit[0])
		m.quit = m.quit[1:]
	}
	for len(m.leaving) > 0 && m.leaving[0].at <= t {
		i := m.leaving.pop().v
		m.room.Release(admission.Ref{Number: int64(i), Epoch: simBase}, simBase+t)
	}
	for m.arrived < len(m.vs) && m.vs[m.arrived].join <= t {
		m.arrive(m.arrived)
		m.arrived++
	}
	for len(m.polling) > 0 && m.polling[0].at <= t {
		e := m.polling.pop()
		if v := &m.vs[e.v]; v.state == waiting && v.band && v.next == e.at {
			if free, inert := m.inert(e.v); inert {
				// Its poll cannot change a thing the engine would answer for it: it is
				// not granted, and the site has no room for those ahead of it, so no
				// grant and no earlier poll. Its liveness is worked out; what its poll
				// would admit, the step does.
				v.last, v.next = t, t+m.refresh
				m.polling.push(simEvent{at: v.next, v: e.v})
				if free > 0 {
					m.room.Step(simBase+t, m.limits)
				}
				continue
			}
			m.poll(e.v)
		}
	}
	if m.behind > 0 && t%1000 == 0 && (m.polls == nil || m.polls[t/1000%int64(len(m.polls))] > 0) {
		m.room.Step(simBase+t, m.limits)
	}
	m.fillBand()
	if t%60000 == 0 {
		m.sample()
	}
}

// nextEvent is the next instant anything happens: the next second on which visitors
// behind the band poll, and at most the next minute's sample.
func (m *simulation) nextEvent() int64 {
	next := (m.now/60000 + 1) * 60000
	if m.behind > 0 {
		sec := m.now/1000 + 1
		if m.polls != nil {
			for k := int64(0); k < int64(len(m.polls)); k++ {
				if m.polls[(sec+k)%int64(len(m.polls))] > 0 {
					sec += k
					break
				}
			}
		}
		next = min(next, sec*1000)
	}
	if m.arrived < len(m.vs) {
		next = min(next, m.vs[m.arrived].join)
	}
	if len(m.quit) > 0 {
		next = min(next, m.vs[m.quit[0]].giveUp)
	}
	for _, h := range []simHeap{m.polling, m.leaving, m.deaths} {
		if len(h) > 0 {
			next = min(next, h[0].at)
		}
	}
	return max(next, m.now+1)
}

func (m *simulation) arrive(i int) {
	v := &m.vs[i]
	v.state, v.last = waiting, m.now
	m.waiting++
	// It is at the back, so in the band only while the band is short.
	v.band = m.bandEnd == i && m.bandLive < m.bandSize
	if v.band {
		m.bandEnd++
		m.bandLive++
	} else {
		m.behind++
	}
	res := m.room.Join(simBase+m.now, m.limits)
	m.answer(i, res)
}

func (m *simulation) poll(i int) {
	res := m.room.Poll(admission.Ref{Number: int64(i), Epoch: simBase}, simBase+m.now, m.limits)
	m.vs[i].last = m.now
	m.answer(i, res)
}

func (m *simulation) answer(i int, res admission.Result) {
	v := &m.vs[i]
	if res.Requeued || res.Ticket != int64(i) || res.Epoch != simBase {
		// A live visitor never loses its place: it polls within the hold, and a granted
		// one within the grace.
		panic(fmt.Sprintf("estimate: simulated visitor %d got ticket %d (requeued %t) at %d ms", i, res.Ticket, res.Requeued, m.now))
	}
	if res.Admitted {
		m.enter(i)
		return
	}
	v.next = res.NextPoll.UnixMilli() - simBase
	if v.band {
		m.polling.push(simEvent{at: v.next, v: i})
	} else if m.polls != nil {
		m.polls[v.next/1000%int64(len(m.polls))]++
	}
}

// enter lets visitor i in now; it leaves after its session.
func (m *simulation) enter(i int) {
	v := &m.vs[i]
	m.off(v)
	v.state, v.claim = entered, m.now
	m.admitted++
	m.lastIn, m.drain = m.now, m.now
	m.minute = append(m.minute, time.Duration(m.now-v.join)*time.Millisecond)
	m.leaving.push(simEvent{at: m.now + v.session, v: i})
}

// giveUp takes visitor i out of the queue (if it is still there); its place lapses a hold
// after its last poll.
func (m *simulation) giveUp(i int) {
	v := &m.vs[i]
	if v.state != waiting {
		return
	}
	last := m.lastPoll(v, v.giveUp)
	m.off(v)
	v.state = gone
	m.gaveUp++
	m.drain = max(m.drain, v.giveUp)
	lapse := (admission.Bucket(simBase+last)+admission.HoldBuckets(m.limits)+1)*admission.LiveBucket.Milliseconds() - simBase
	m.deaths.push(simEvent{at: lapse, v: i})
}

// off stops visitor i polling.
func (m *simulation) off(v *simVisitor) {
	m.waiting--
	switch {
	case v.band:
		m.bandLive--
	default:
		m.behind--
		if m.polls != nil {
			m.polls[v.next/1000%int64(len(m.polls))]--
		}
	}
}

// lapse marks the place of visitor i gone, if the cursor has not passed it.
func (m *simulation) lapse(i int) {
	if v := &m.vs[i]; int64(i) >= m.q.cursor && !v.dead {
		v.dead = true
		m.q.dead++
	}
}

// fillBand takes waiting visitors from behind the band into it until it holds bandSize.
func (m *simulation) fillBand() {
	m.bandEnd = max(m.bandEnd, int(m.q.cursor))
	for m.bandLive < m.bandSize && m.bandEnd < m.arrived {
		v := &m.vs[m.bandEnd]
		m.bandEnd++
		if v.state != waiting || v.band {
			continue
		}
		if m.polls != nil {
			m.polls[v.next/1000%int64(len(m.polls))]--
		}
		m.behind--
		v.last, v.next = m.lastPoll(v, m.now), m.nextPollAfter(v, m.now)
		v.band = true
		m.bandLive++
		m.polling.push(simEvent{at: v.next, v: m.bandEnd - 1})
	}
}

// inert reports whether band visitor i, polling now, would get from the engine only a
// regular next poll: its place is ahead of the cursor (not granted), and more live places
// are ahead of it (by the engine's own reckoning, UsersAhead) than the site has room for, so
// the engine neither grants it a slot nor schedules an earlier poll (Room.nextPoll).
// It returns the room the site has, too.
func (m *simulation) inert(i int) (free int64, inert bool) {
	free = m.limits.Capacity - m.room.Held()
	if int64(i) < m.q.cursor {
		return free, false
	}
	turn := admission.UsersAhead(int64(i), m.q.cursor, m.q.next, m.q.Live(0, m.limits))
	return free, turn+1 > free
}

// lastPoll is when visitor v last polled at or before t, and before it gave up.
func (m *simulation) lastPoll(v *simVisitor, t int64) int64 {
	t = min(t, v.giveUp-1)
	if v.band || v.next > t {
		return v.last
	}
	return v.next + (t-v.next)/m.refresh*m.refresh
}

// nextPollAfter is the first poll of v, behind the band, after t.
func (m *simulation) nextPollAfter(v *simVisitor, t int64) int64 {
	if v.next > t {
		return v.next
	}
	return v.next + ((t-v.next)/m.refresh+1)*m.refresh
}

func (m *simulation) sample() {
	var wait time.Duration
	if len(m.minute) > 0 {
		slices.Sort(m.minute)
		wait = m.minute[len(m.minute)/2]
	}
	st := m.room.Stats(simBase+m.now, m.limits)
	m.series = append(m.series, Sample{
		At:       time.Duration(m.now) * time.Millisecond,
		Waiting:  m.waiting,
		Active:   int(st.Active),
		Admitted: m.admitted,
		Wait:     wait,
	})
	m.minute = m.minute[:0]
}

func (m *simulation) forecast() Forecast {
	waits := make([]time.Duration, 0, m.admitted)
	for _, v := range m.vs {
		if v.claim >= 0 {
			waits = append(waits, time.Duration(v.claim-v.join)*time.Millisecond)
		}
	}
	slices.Sort(waits)
	q := func(p float64) time.Duration {
		if len(waits) == 0 {
			return 0
		}
		return waits[min(len(waits)-1, int(p*float64(len(waits))))]
	}
	return Forecast{
		Scenario:   m.s,
		Throughput: throughput(m.s, m.admitted, time.Duration(m.lastIn-m.vs[0].join)*time.Millisecond),
		Admitted:   m.admitted,
		GaveUp:     m.gaveUp,
		WaitP50:    q(0.5),
		WaitP95:    q(0.95),
		WaitMax:    q(1),
		Drain:      time.Duration(m.drain) * time.Millisecond,
		Bottleneck: bottleneck(m.s),
		Series:     m.series,
	}
}

// simQueue is the engine's Queue for the simulated crowd: a visitor's word is the bucket of
// its last poll (worked out for those behind the band), and the live ones are those in the
// queue whose place has not lapsed. Ticket numbers are visitor indexes: visitors join in
// arrival order, and none loses its place.
type simQueue struct {
	m            *simulation
	cursor, next int64
	dead         int64 // places in [cursor, next) whose holder gave up more than a hold ago
	marks        map[int64]uint32
}

// Word implements admission.Queue.
func (q *simQueue) Word(i int64) uint32 {
	n := q.cursor + i
	if w, ok := q.marks[n]; ok {
		return w
	}
	v := &q.m.vs[n]
	return uint32(admission.Bucket(simBase+q.m.lastPoll(v, q.m.now)) + 1)
}

// Set implements admission.Queue. Polls are the simulation's to record; the engine's marks
// (a place taken or lost) are kept.
func (q *simQueue) Set(i int64, old, w uint32) {
	if w == 0 || w&admission.Taken != 0 {
		if q.marks == nil {
			q.marks = make(map[int64]uint32)
		}
		q.marks[q.cursor+i] = w
	}
}

// Push implements admission.Queue.
func (q *simQueue) Push(uint32) { q.next++ }

// Pop implements admission.Queue.
func (q *simQueue) Pop(n int64) {
	for k := q.cursor; k < q.cursor+n; k++ {
		if q.m.vs[k].dead {
			q.dead--
		}
		delete(q.marks, k)
	}
	q.cursor += n
}

// Live implements admission.Queue.
func (q *simQueue) Live(int64, admission.Limits) int64 { return q.next - q.cursor - q.dead }

// Top implements admission.Queue: a word live now, so the engine reads every place. The
// crowd's places are passed a MaxScan a step, as a store's are in a busy room; a long run
// of abandoned places in a room nobody polls is not what a plan is about.
func (q *simQueue) Top(int64) uint32 { return uint32(admission.Bucket(simBase+q.m.now) + 1) }

type simEvent struct {
	at int64
	v  int
}

// simHeap orders events by time, then visitor.
type simHeap []simEvent

func (a simEvent) before(b simEvent) bool { return a.at < b.at || a.at == b.at && a.v < b.v }

func (h *simHeap) push(e simEvent) {
	*h = append(*h, e)
	a := *h
	for i := len(a) - 1; i > 0; {
		p := (i - 1) / 2
		if !a[i].before(a[p]) {
			break
		}
		a[p], a[i] = a[i], a[p]
		i = p
	}
}

func (h *simHeap) pop() simEvent {
	a := *h
	top := a[0]
	n := len(a) - 1
	a[0] = a[n]
	a = a[:n]
	for i := 0; ; {
		c := 2*i + 1
		if c >= n {
			break
		}
		if c+1 < n && a[c+1].before(a[c]) {
			c++
		}
		if !a[c].before(a[i]) {
			break
		}
		a[i], a[c] = a[c], a[i]
		i = c
	}
	*h = a
	return top
}

func ceilSecond(ms int64) int64 { return (ms + 999) / 1000 * 1000 }

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
