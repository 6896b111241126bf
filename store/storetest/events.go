package storetest

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
)

// Scheduled events (admission.Event). Event times are absolute, so each test builds its
// events from the harness clock when it starts.

// eventAt is an event of the suite: the pre-queue opens at prequeue, the event runs in
// [start, end), all offsets from t0; its limits are complete, as a caller always passes them.
func eventAt(t0 time.Time, prequeue, start, end time.Duration, capacity, perMinute int64, session time.Duration) admission.Event {
	return admission.Event{
		Prequeue: t0.Add(prequeue).UnixMilli(), Start: t0.Add(start).UnixMilli(), End: t0.Add(end).UnixMilli(),
		Capacity: capacity, PerMinute: perMinute, Session: session, Renewal: true, Method: admission.FIFO,
	}
}

// withEvents is l with events evs, which must make sense.
func (r *roomTest) withEvents(l admission.Limits, evs ...admission.Event) admission.Limits {
	r.t.Helper()
	l.Events = evs
	if err := l.Validate(); err != nil {
		r.t.Fatalf("the test's limits: %v", err)
	}
	return l
}

// bound is what the limits l let a room hold in any phase: sessions and grants of one
// phase still count in the next, so the checks of every answer (join, poll, stats) allow
// the largest capacity and rate of the room and its events (and none after a Passthrough
// phase). Without events it is l.
func bound(l admission.Limits) admission.Limits {
	for _, e := range l.Events {
		l.Capacity, l.PerMinute = max(l.Capacity, e.Capacity), max(l.PerMinute, e.PerMinute)
		if e.Method == admission.Passthrough {
			l.Method = admission.Passthrough
		}
	}
	return l
}

// letIn lets the waiters ws in round by round, as RandomRankCorrelation does: each round
// releases the sessions the last one admitted, calls before(rnd) (if not nil), then polls
// every waiter not yet in, in the order of ws; got (if not nil) sees each answer. It returns
// the round (from 1) each waiter got in, and fails when a waiter loses its place or a round
// admits nobody.
func (r *roomTest) letIn(l admission.Limits, ws []store.Result, before func(rnd int), got func(rnd, i int, p store.Result)) []int {
	r.t.Helper()
	round := make([]int, len(ws))
	var in []store.Result
	for rnd, left := 1, len(ws); left > 0; rnd++ {
		for _, s := range in {
			r.release(refOf(s))
		}
		in = in[:0]
		if before != nil {
			before(rnd)
		}
		for i, w := range ws {
			if round[i] != 0 {
				continue
			}
			p := r.poll(refOf(w), l)
			if p.Requeued {
				r.t.Fatalf("round %d: waiter %d lost its place: %s", rnd, i, fmtResult(p))
			}
			if got != nil {
				got(rnd, i, p)
			}
			if p.Admitted {
				round[i] = rnd
				in = append(in, p)
				left--
			}
		}
		if len(in) == 0 {
			r.t.Fatalf("round %d: none of %d waiters got in", rnd, left)
		}
	}
	return round
}

// prequeueShuffled schedules ev, shuffled by seed, on l, and queues n visitors in its
// pre-queue: the limits with the event, and the visitors' answers.
func (r *roomTest) prequeueShuffled(l admission.Limits, ev admission.Event, seed int64, n int) (admission.Limits, []store.Result) {
	r.t.Helper()
	ev.Shuffle, ev.Seed = true, seed
	l = r.withEvents(l, ev)
	r.advanceTo(time.UnixMilli(ev.Prequeue))
	ws := make([]store.Result, 0, n)
	for range n {
		ws = append(ws, r.join(l))
	}
	return l, ws
}

// shuffledTurns is the turn of each of n pre-queued places in a shuffle by seed: place
// Permute(seed, n, k) is admitted k-th.
func shuffledTurns(seed int64, n int) []int {
	turn := make([]int, n)
	for k := range n {
		turn[admission.Permute(seed, int64(n), int64(k))] = k
	}
	return turn
}

// 18a. In the pre-queue everyone queues, even where the room's own limits admit everyone;
// from the start the event's limits admit the pre-queue in ticket order, and later
// arrivals behind it.
func testPrequeue(r *roomTest) {
	l := limits()
	l.Method, l.Session = admission.Passthrough, time.Hour
	ev := eventAt(r.h.Now(), time.Minute, 3*time.Minute, time.Hour, 2, 10, 5*time.Minute)
	l = r.withEvents(l, ev)
	r.wantAdmitted("Join before the pre-queue (Passthrough)", r.join(l))

	r.advanceTo(time.UnixMilli(ev.Prequeue))
	ws := r.queue(l, 4, 0, "in the pre-queue")
	r.h.Advance(time.Minute)
	r.stillWaiting(l, ws, "in the pre-queue")
	r.wantStats("in the pre-queue", r.stats(l), 1, 4, 1, 0)
	r.advanceTo(time.UnixMilli(ev.Start - 1))
	r.wantWaiting("poll at the last instant of the pre-queue", r.poll(refOf(ws[3]), l), 3)

	// The last polls first: the event's two slots go to the first two, and the session
	// from before the start no longer counts.
	r.h.Advance(time.Millisecond)
	p := r.poll(refOf(ws[3]), l)
	r.wantWaiting("the last pre-queued waiter at the start", p, 1)
	r.wantStats("at the start", p.Stats, 2, 2, 1, 2)
	late := r.join(l)
	r.wantWaiting("a visitor who joins after the start", late, 2)
	for i := range 2 {
		a := r.poll(refOf(ws[i]), l)
		r.wantAdmitted(fmt.Sprintf("pre-queued waiter %d at the start", i), a)
		r.wantExpires(fmt.Sprintf("pre-queued waiter %d at the start", i), a.Expires, expiry(a.Now, ev.Session))
	}
	r.wantWaiting("pre-queued waiter 2 with the event full", r.poll(refOf(ws[2]), l), 0)

	// Then one by one in ticket order, whoever polls, the late visitor last.
	order := append(ws[:4:4], late)
	for i := 2; i < len(order); i++ {
		r.release(refOf(order[i-2]))
		for j := len(order) - 1; j > i; j-- {
			r.wantWaiting(fmt.Sprintf("visitor %d while %d's turn comes", j, i), r.poll(refOf(order[j]), l), int64(j-i-1))
		}
		r.wantAdmitted(fmt.Sprintf("visitor %d in turn", i), r.poll(refOf(order[i]), l))
	}
}

// 18b. A pass issued before an event is not valid inside it: at the first operation from
// the start, whatever it is, the sessions and grants from before are gone.
func testEventDropsSessions(r *roomTest) {
	l := limits()
	l.PerMinute, l.Session = 10, time.Hour // slots free only by release
	ev := eventAt(r.h.Now(), time.Minute, 80*time.Second, time.Hour, 3, 10, 10*time.Minute)
	l = r.withEvents(l, ev)
	var x []store.Result
	for i := range 3 {
		s := r.join(l)
		r.wantAdmitted(fmt.Sprintf("Join %d before the event", i), s)
		x = append(x, s)
	}
	a, b := r.join(l), r.join(l)
	// A's grant is still within its grace at the start.
	r.advanceTo(time.UnixMilli(ev.Prequeue).Add(-10 * time.Second))
	r.release(refOf(x[2]))
	r.wantWaiting("B's poll grants A", r.poll(refOf(b), l), 0)

	r.advanceTo(time.UnixMilli(ev.Prequeue))
	w := r.join(l)
	r.wantWaiting("Join in the pre-queue", w, 1)
	r.wantActive("Renew in the pre-queue", r.renew(refOf(x[0]), l), expiry(r.h.Now(), l.Session))
	r.wantWaiting("B in the pre-queue", r.poll(refOf(b), l), 0)
	r.advanceTo(time.UnixMilli(ev.Start - 1))
	r.wantStats("last instant of the pre-queue", r.stats(l), 3, 2, 3, 1)

	r.h.Advance(time.Millisecond)
	if rn := r.renew(refOf(x[0]), l); rn.Active {
		r.t.Errorf("Renew of a session from before the start, as the first operation of the event: active until %s", ts(rn.Expires))
	}
	r.wantStats("the start", r.stats(l), 0, 2, 3, 0)
	if rn := r.renew(refOf(x[1]), l); rn.Active {
		r.t.Errorf("Renew of a session from before the start: active until %s", ts(rn.Expires))
	}
	r.wantAdmitted("B, first in line, at the start", r.poll(refOf(b), l))
	r.wantAdmitted("the pre-queued waiter at the start", r.poll(refOf(w), l))
	r.wantRequeued("A, whose grant from before the start is void", r.poll(refOf(a), l), w.Ticket)
	r.wantStats("after the start", r.stats(l), 3, 0, 6, 3)
}

// 18c. During the event its capacity, rate, session and renewal apply; from the end the
// room's own again, while sessions admitted in the event run out at their own expiry.
func testEventLimits(r *roomTest) {
	l := limits() // capacity 3, 3 a minute, sessions of 2 minutes, renewal on
	ev := eventAt(r.h.Now(), time.Minute, time.Minute, 6*time.Minute, 8, 6, 12*time.Minute)
	ev.Renewal = false
	l = r.withEvents(l, ev)
	start, end := time.UnixMilli(ev.Start), time.UnixMilli(ev.End)

	r.advanceTo(start)
	var e []store.Result
	for i := range 6 {
		s := r.join(l)
		r.wantAdmitted(fmt.Sprintf("Join %d in the event", i), s)
		r.wantExpires(fmt.Sprintf("Join %d in the event", i), s.Expires, expiry(start, ev.Session))
		e = append(e, s)
	}
	j6 := r.join(l)
	r.wantWaiting("Join 6: the event's rate is spent", j6, 0)
	r.wantStats("Join 6", j6.Stats, 6, 1, 6, 6)
	r.wantActive("Renew in an event without renewal", r.renew(refOf(e[0]), l), e[0].Expires)

	r.h.Advance(rateFree)
	p6 := r.poll(refOf(j6), l)
	r.wantAdmitted("visitor 6 once the rate window clears", p6)
	r.wantExpires("visitor 6", p6.Expires, expiry(p6.Now, ev.Session))
	r.wantAdmitted("Join 7: the event's 8th slot", r.join(l))
	j8 := r.join(l)
	r.wantWaiting("Join 8: the event is full", j8, 0)
	r.wantStats("Join 8", j8.Stats, 8, 1, 8, 2)
	r.advanceTo(start.Add(3 * time.Minute))
	r.wantWaiting("visitor 8 keeps polling", r.poll(refOf(j8), l), 0)

	// From the end the room's capacity of 3 applies to the 8 sessions still running.
	r.advanceTo(end)
	r.wantWaiting("visitor 8 at the end", r.poll(refOf(j8), l), 0)
	r.wantStats("the end", r.stats(l), 8, 1, 8, 0)
	for _, s := range e {
		r.release(refOf(s))
	}
	p8 := r.poll(refOf(j8), l)
	r.wantAdmitted("visitor 8 after six releases", p8)
	r.wantExpires("visitor 8, admitted after the end", p8.Expires, expiry(p8.Now, l.Session))
	j9 := r.join(l)
	r.wantWaiting("Join 9: the room's capacity", j9, 0)
	r.wantStats("Join 9", j9.Stats, 3, 1, 9, 1)

	// Visitor 8's session ends; 6 and 7 keep theirs from the event.
	r.advanceTo(start.Add(8 * time.Minute))
	r.wantStats("after visitor 8's session", r.stats(l), 2, 1, 9, 0)
	q6 := r.poll(refOf(p6), l)
	r.wantAdmitted("visitor 6 after a session of the room's length", q6)
	r.wantExpires("visitor 6 after the end", q6.Expires, p6.Expires)
	p9 := r.poll(refOf(j9), l)
	r.wantAdmitted("visitor 9", p9)
	r.wantExpires("visitor 9", p9.Expires, expiry(p9.Now, l.Session))

	// A renewal under the room's shorter sessions never cuts an event's session short.
	r.wantActive("Renew of an event session after the end", r.renew(refOf(p6), l), p6.Expires)

	r.advanceTo(p6.Expires.Add(-time.Millisecond))
	r.wantStats("last instant of the event's sessions", r.stats(l), 2, 0, 10, 0)
	r.h.Advance(time.Millisecond)
	r.wantStats("the event's sessions over", r.stats(l), 0, 0, 10, 0)
}

// 18d. A shuffled pre-queue is admitted in the order of admission.Permute(Seed), exactly,
// whoever polls; later arrivals follow in ticket order. Each round frees c slots, so round
// rnd admits the turns [(rnd-1)c, rnd*c), and every waiter still waiting has exactly its
// turn minus rnd*c live waiters ahead: together they pin the whole order.
func testShuffleAtStart(r *roomTest) {
	const (
		n    = 200 // pre-queued
		late = 6   // joined after the start
		c    = 41  // per round: the 5th round admits the last 36 of the pre-queue and 5 late
		seed = 0x2545F4914F6CD
	)
	l := limits()
	ev := eventAt(r.h.Now(), time.Minute, 2*time.Minute, time.Hour, c, 1_000_000, time.Hour)
	ev.Shuffle, ev.Seed = true, seed
	l = r.withEvents(l, ev)
	r.wantAdmitted("Join before the pre-queue", r.join(l)) // so that the pre-queue starts past ticket 0

	r.advanceTo(time.UnixMilli(ev.Prequeue))
	ws := r.queue(l, n, 0, "in the pre-queue")
	p0 := ws[0].Ticket
	turn := shuffledTurns(seed, n)
	for i, w := range ws {
		if w.Ticket != p0+int64(i) {
			r.t.Fatalf("pre-queued tickets not consecutive: %d-th is %d, first %d", i, w.Ticket, p0)
		}
	}

	r.advanceTo(time.UnixMilli(ev.Start))
	ws = append(ws, r.queue(l, late, int64(n-c), "after the start")...)
	for j := range late {
		turn = append(turn, n+j)
	}
	wrongAhead := 0
	rounds := r.letIn(l, ws, nil, func(rnd, i int, p store.Result) {
		if want := int64(turn[i] - rnd*c); !p.Admitted && p.UsersAhead != want {
			if wrongAhead++; wrongAhead <= 5 {
				r.t.Errorf("round %d: waiter %d (turn %d): UsersAhead %d, want %d", rnd, i, turn[i], p.UsersAhead, want)
			}
		}
	})
	wrong := 0
	for i, rnd := range rounds {
		if want := turn[i]/c + 1; rnd != want {
			if wrong++; wrong <= 5 {
				what := "pre-queued ticket"
				if i >= n {
					what = "ticket issued after the start"
				}
				r.t.Errorf("%s %d (turn %d) admitted in round %d, want %d", what, ws[i].Ticket, turn[i], rnd, want)
			}
		}
	}
	if wrong > 5 || wrongAhead > 5 {
		r.t.Errorf("%d waiters in all admitted out of turn, %d answers with UsersAhead off", wrong, wrongAhead)
	}
	// One grant each, no more.
	r.wantStats("all in", r.stats(l), (n+late-1)%c+1, 0, 1+n+late, -1)
	r.wantRequeued("a released pre-queued ticket", r.poll(refOf(ws[0]), l), ws[len(ws)-1].Ticket)
}

// 18e. The shuffle is uniform: admission order is independent of ticket order (see 17a).
func testShuffleUniform(r *roomTest) {
	const n = 300
	rho := ShuffleRankCorrelation(r.t, r.h, r.room, n, 60, 0x9E3779B97F4A)
	r.t.Logf("rank correlation of admission and ticket order over %d pre-queued waiters: %.3f", n, rho)
	if limit := 4 / math.Sqrt(n-1); math.Abs(rho) > limit {
		r.t.Errorf("rank correlation of admission and ticket order %.3f, want within ±%.3f", rho, limit)
	}
}

// ShuffleRankCorrelation pre-queues waiters in room for a shuffled event keyed by seed, lets
// them in perRound at a time from its start (as RandomRankCorrelation does) and returns
// Spearman's rank correlation between ticket order and the round each got in. It serves the
// suite and stores' own larger runs.
func ShuffleRankCorrelation(t *testing.T, h Harness, room string, waiters, perRound int, seed int64) float64 {
	t.Helper()
	r := &roomTest{t: t, h: h, ctx: t.Context(), room: room}
	l := limits()
	ev := eventAt(r.h.Now(), time.Minute, 2*time.Minute, 24*time.Hour, int64(perRound), 1_000_000, time.Hour)
	l, ws := r.prequeueShuffled(l, ev, seed, waiters)
	r.advanceTo(time.UnixMilli(ev.Start))
	return spearman(r.letIn(l, ws, nil, nil))
}

// 18f. The shuffle passes abandoned places at no cost, in its order; whoever comes back
// after the hold, before or after the shuffle passed the place, starts again behind the
// pre-queue.
func testShuffleAbandoned(r *roomTest) {
	const (
		n    = 24
		c    = 3
		seed = 0x5DEECE66D
	)
	l := limits() // hold 5 minutes
	ev := eventAt(r.h.Now(), time.Minute, 11*time.Minute, time.Hour, c, 1000, time.Hour)
	l, ws := r.prequeueShuffled(l, ev, seed, n)
	// A third stop polling. Not the first: an abandoned place at the head is skipped
	// before the start, and the pre-queue shrinks (see admission.Event).
	gone := func(i int) bool { return i%3 == 2 }
	for r.h.Now().Before(time.UnixMilli(ev.Start)) {
		r.h.Advance(2 * time.Minute)
		for i, w := range ws {
			if !gone(i) && r.h.Now().Before(time.UnixMilli(ev.Start)) {
				r.wantWaiting(fmt.Sprintf("pre-queued waiter %d", i), r.poll(refOf(w), l), -1)
			}
		}
	}
	r.advanceTo(time.UnixMilli(ev.Start))
	r.wantStats("the start", r.stats(l), 0, 2*n/3, 0, 0)

	// The stayers' order is the shuffle's with the abandoned places left out. The first
	// abandoned place in the shuffle (first) is passed in round pass: the first round that
	// grants every stayer before it, for the shuffle goes on to the next live place. The
	// last (last) is not passed yet when its holder comes back in round 1.
	var seq []int // stayers in shuffled order
	first, last, pass := -1, -1, 0
	for k := range n {
		i := int(admission.Permute(seed, n, int64(k)))
		switch {
		case !gone(i):
			seq = append(seq, i)
		case first < 0:
			first, pass = i, max(1, (len(seq)+c-1)/c)
		default:
			last = i
		}
	}
	if pass > (len(seq)+1)/c {
		r.t.Fatalf("test setup: with seed %#x the first abandoned place is passed only in round %d", seed, pass)
	}
	turnOf := make(map[int]int, len(seq))
	for t, i := range seq {
		turnOf[i] = t
	}

	// Those who come back take new places in the order they come: last, then first.
	var back []store.Result
	var in []store.Result
	admitted := 0
	for rnd := 1; admitted < len(seq)+2; rnd++ {
		for _, s := range in {
			r.release(refOf(s))
		}
		in = in[:0]
		if rnd == 1 {
			p := r.poll(refOf(ws[last]), l)
			r.wantRequeued("an abandoned waiter whose place the shuffle has not passed", p, ws[n-1].Ticket)
			back = append(back, p)
		}
		if rnd == pass+1 {
			p := r.poll(refOf(ws[first]), l)
			r.wantRequeued("an abandoned waiter whose place the shuffle passed", p, back[0].Ticket)
			back = append(back, p)
		}
		poll := func(what string, ref store.Ref, turn int) {
			p := r.poll(ref, l)
			if p.Requeued {
				r.t.Fatalf("round %d: %s lost its place: %s", rnd, what, fmtResult(p))
			}
			if want := turn < rnd*c; p.Admitted != want {
				r.t.Fatalf("round %d: %s (turn %d): admitted %t, want %t: %s", rnd, what, turn, p.Admitted, want, fmtResult(p))
			}
			if p.Admitted {
				in = append(in, p)
				admitted++
			}
		}
		for i, w := range ws {
			if t, ok := turnOf[i]; ok && t >= (rnd-1)*c {
				poll(fmt.Sprintf("pre-queued waiter %d", i), refOf(w), t)
			}
		}
		for j, w := range back {
			if t := len(seq) + j; t >= (rnd-1)*c {
				poll(fmt.Sprintf("returning waiter %d", j), refOf(w), t)
			}
		}
		if rnd > n {
			r.t.Fatalf("%d rounds and %d of %d in", rnd, admitted, len(seq)+2)
		}
	}
	r.wantStats("all in", r.stats(l), -1, 0, int64(len(seq)+2), -1)
	for i, w := range ws {
		if gone(i) && i != first && i != last {
			r.wantRequeued(fmt.Sprintf("abandoned waiter %d after the pre-queue", i), r.poll(refOf(w), l), back[1].Ticket)
		}
	}
}

// 18g. An event may end before its shuffled pre-queue is through: the rest is admitted in
// the shuffle's order all the same, under the room's own limits, and later arrivals after.
func testShuffleOutlivesEvent(r *roomTest) {
	const (
		n    = 13
		seed = 0xB5AD4ECEDA1CE
	)
	l := limits() // capacity 3, 3 a minute, sessions of 2 minutes
	ev := eventAt(r.h.Now(), time.Minute, 2*time.Minute, 4*time.Minute, 2, 60, time.Hour)
	l, ws := r.prequeueShuffled(l, ev, seed, n)
	r.advanceTo(time.UnixMilli(ev.Start))
	ws = append(ws, r.join(l))
	turn := append(shuffledTurns(seed, n), n)

	// Rounds 61 s apart: two in the event (2 slots each), then the room's (3 each).
	end := time.UnixMilli(ev.End)
	granted := []int{2, 4, 7, 10, 13, 14} // by the end of each round
	rounds := r.letIn(l, ws, func(rnd int) {
		if rnd > 1 {
			r.h.Advance(rateFree)
		}
		if inEvent := r.h.Now().Before(end); inEvent != (rnd <= 2) {
			r.t.Fatalf("test setup: round %d in the event: %t", rnd, inEvent)
		}
	}, func(rnd, i int, p store.Result) {
		if p.Admitted {
			session := l.Session
			if rnd <= 2 {
				session = ev.Session
			}
			r.wantExpires(fmt.Sprintf("round %d: waiter %d", rnd, i), p.Expires, expiry(p.Now, session))
		} else if want := int64(turn[i] - granted[rnd-1]); p.UsersAhead != want {
			r.t.Errorf("round %d: waiter %d (turn %d): UsersAhead %d, want %d", rnd, i, turn[i], p.UsersAhead, want)
		}
	})
	for i, rnd := range rounds {
		want := 1
		for granted[want-1] <= turn[i] {
			want++
		}
		if rnd != want {
			r.t.Errorf("waiter %d (ticket %d, turn %d) admitted in round %d, want %d", i, ws[i].Ticket, turn[i], rnd, want)
		}
	}
}
