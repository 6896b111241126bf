package admission

import (
	"math"
	"slices"
	"time"
)

// Room is one waiting room's state in a store, and the rules that move it: the reference
// engine. Every operation takes the store's time now (Unix milliseconds) and the limits in
// force, and is a pure function of the state, the operation, now and the limits: no clock,
// no goroutines, no I/O. store/memory is a lock around a Room; store/redis's room.lua is a
// port of it, held to it by a differential test; the planner (package estimate) drives one
// through a simulated crowd.
//
// A Room is one epoch of the room: a store that loses a room (a Redis restart) starts a
// new Room, and visitors who come back with tickets and passes of the lost epoch are
// counted again (see Limits.Recovery).
//
// The zero value is not usable; call Open. A Room is not safe for concurrent use.
type Room struct {
	epoch int64 // the store time this epoch began; never 0
	last  int64 // latest store time seen: the clock never runs back past its second (see clock)
	hold  time.Duration

	next, cursor int64 // the next ticket number; tickets from cursor on may wait
	q            Queue // a word per ticket in [cursor, next)
	admitted     int64 // admissions (claimed slots) since the epoch began
	granted      int64 // slots granted since the epoch began, claimed or not

	sessions map[Ref]session
	expiries expiryHeap
	maxExp   int64 // no session or grant lasts past this
	claimed  int64 // sessions in sessions that are claimed; the rest are pending grants
	window   window

	// Places recovered from earlier epochs: the store lost the room, and visitors came
	// back with valid tickets. They were ahead of everyone this epoch queued, so they go
	// first, in their own order (rq, sorted). A place passed by admission is kept (Taken
	// set) until its hold is over, so that it cannot be taken twice.
	recovered    map[Ref]uint32
	rq           []Ref
	liveRec      Buckets
	recoverUntil int64 // admission pauses until then once a loss shows, once per epoch
	recovering   bool

	// The latest scheduled event this room has seen (by its start), and its pre-queue: the
	// tickets [p0, p1) (p1 < 0 while it is open). A shuffled pre-queue is admitted in the
	// order Permute(seed, p1-p0, k) for k from sc on, while the cursor waits at p0.
	ev, p0, p1, sc, seed int64
	shuffle              bool
}

// Ref names a ticket or a session: sessions are numbered by the ticket that won them.
// Epoch is the room's incarnation in the store; a Ref from another epoch is unknown.
type Ref struct {
	Number int64
	Epoch  int64
}

// Result is the answer to Join and Poll.
type Result struct {
	Ticket   int64 // the visitor's ticket: the one polled, or a new one (Join, Requeued)
	Epoch    int64
	Joined   time.Time // when Ticket was issued (zero for an existing ticket)
	Requeued bool      // the polled place was gone; Ticket is a new place at the back

	Admitted bool      // the visitor holds session Ticket
	Expires  time.Time // session expiry, when Admitted

	// SoldOut says the room took no place: it closes when sold out and has no slot left
	// (see SoldOut). Ticket is then -1 and Requeued false; a poll that brought a live place
	// or a session is answered as usual.
	SoldOut bool

	UsersAhead int64 // live waiters ahead, when waiting (see UsersAhead)
	// NextPoll is when a waiter should poll again: RefreshInterval from now, or sooner
	// when a slot for it is due sooner (see Room.Poll). Zero when Admitted.
	NextPoll time.Time
	Stats
}

// Renewal is the answer to Renew.
type Renewal struct {
	Now     time.Time
	Active  bool
	Expires time.Time
	// Settings are the room's stored settings when the caller's Offer held another
	// version (see Settle): the limits that applied, for the caller to adopt.
	Settings *Settings
}

// Stats are a room's counters at the store's Now.
type Stats struct {
	Now        time.Time // the store's clock
	Active     int64     // sessions, claimed and pending
	Waiting    int64     // live waiters
	Admissions int64     // visitors admitted since the room's epoch began
	// Granted counts the slots granted since the epoch began, claimed or not: admission
	// passes each live place it reaches with a grant, so it is the pace at which the
	// queue ahead of a waiter goes by, including those who left but still held a place.
	Granted int64
	Window  int64 // admissions in the last 60 s plus pending grants: what the rate counts
	// Slots is the count of slots left the store keeps for the room (Limits.Slots), or
	// NotCounted.
	Slots int64
	// Settings are the room's stored settings when the caller's Offer held another
	// version (see Settle): the limits that applied, for the caller to adopt.
	Settings *Settings
}

// MinPollGap is the shortest wait Result.NextPoll asks for: a poll is never scheduled
// sooner than this after the last.
const MinPollGap = 100 * time.Millisecond

// Open starts a room's epoch at store time now, keeping its tickets' words in q (empty).
// A caller that saw the room within the hold (l.LastEpoch, earlier than now) shows that
// the store lost it: the new epoch starts in recovery.
func Open(now int64, q Queue, l Limits) *Room {
	r := &Room{epoch: now, last: now, hold: l.Hold, q: q, sessions: make(map[Ref]session)}
	if l.LastEpoch > 0 && l.LastEpoch < now {
		r.recover(now, l)
	}
	return r
}

// Epoch returns the store time at which this epoch began, which names it.
func (r *Room) Epoch() int64 { return r.epoch }

// Held returns the slots held (sessions and pending grants) as of the latest operation.
func (r *Room) Held() int64 { return int64(len(r.sessions)) }

// Idle reports whether the room holds nothing worth keeping at now: every session has run
// out, and nobody has come for max(hold, RateWindow) plus a liveness bucket, so every place
// has lapsed and the rate window is empty. A store may then drop it. Idle changes nothing:
// a room moves only by its operations, on its own clock.
func (r *Room) Idle(now int64) bool {
	return now >= r.maxExp &&
		now-r.last > max(r.hold, RateWindow).Milliseconds()+LiveBucket.Milliseconds()
}

// Join gives a visitor the next ticket at now, then admits what the limits allow. The
// visitor is admitted at once when nobody live waits ahead (FIFO) or a slot is free
// (Random) and the limits allow. A room that is sold out (SoldOut) gives no ticket: the
// answer is SoldOut, and nothing moves but the room's clock and what expired.
func (r *Room) Join(now int64, l Limits) Result {
	now, l = r.begin(now, l)
	return r.join(now, l)
}

// Poll counts a waiter's visit at now: it keeps the place live, admits what the limits
// allow and claims the waiter's slot if it was granted. A ticket whose place is gone
// (abandoned, an unclaimed grant, released, unknown, or of a later epoch) is replaced by a
// new ticket at the back: Result.Requeued is then true.
//
// The caller passes only tickets it has verified (signed by the room, not expired), so a
// ticket of an earlier epoch proves that the store lost the room within the hold: its
// holder retakes its place ahead of this epoch's queue, and Result.Epoch is then the
// ticket's own.
//
// A waiter's next poll (Result.NextPoll) is RefreshInterval from now, except in FIFO order
// (and a shuffled pre-queue's) when the rate window will free the waiter's slot sooner:
// then it is that instant, so that the slot is taken as it frees, not up to a refresh
// interval later. Under Random it is spread over half to one and a half refresh intervals,
// so that who polls first after a slot frees is a uniformly random waiter.
func (r *Room) Poll(t Ref, now int64, l Limits) Result {
	now, l = r.begin(now, l)
	return r.poll(t, now, l)
}

// Step moves admission forward at now, as any join or poll does, for a visitor the
// caller does not name: the planner's stand-in for the polls of a crowd it does not
// simulate one by one.
func (r *Room) Step(now int64, l Limits) {
	now, l = r.begin(now, l)
	r.step(now, l, -1)
}

// Renew extends an active session to l.Session from now (when l.Renewal; never to less
// than it had) and reports whether it is still active. A session that ended or is unknown
// is not active, except one of an earlier epoch: the caller verified its pass, so the
// store lost it, and it is counted again. Its admission counts again too when it was within
// the last RateWindow (l.Admitted): as an admission at now, which the rate window holds a
// little longer than the true one, so that the window a lost store rebuilds from the passes
// that come back never holds fewer than the site saw. Stats.Admissions counts it.
//
// With l.Recount the pass was issued while the store was unreachable, for the ticket of the
// same number: a session of this epoch the room does not hold is counted (a slot granted to
// that ticket meanwhile is claimed), the ticket's place is taken out of the queue, and its
// admission counts in the rate window as a lost epoch's does.
func (r *Room) Renew(s Ref, now int64, l Limits) Renewal {
	now, l = r.begin(now, l)
	return r.renew(s, now, l)
}

func (r *Room) renew(s Ref, now int64, l Limits) Renewal {
	out := Renewal{Now: msTime(now)}
	ss, ok := r.sessions[s]
	switch {
	case ok && ss.claimed:
		if l.Renewal {
			// Never shorter: an event's longer session runs out as it was given.
			r.setSession(s, session{exp: max(ss.exp, expiry(now, l.Session)), claimed: true})
		}
	case !ok && r.older(s):
		// The store lost the room and this holder's pass is still valid: count it again.
		r.noticeLoss(now, l)
		r.setSession(s, session{exp: expiry(now, l.Session), claimed: true})
		if l.Admitted > now-RateWindow.Milliseconds() {
			r.window.add(now, l.PerMinute)
			r.admitted++
		}
	case l.Recount && s.Epoch == r.epoch && s.Number >= 0 && s.Number < r.next:
		// Admitted by an instance alone while the store was unreachable: counted now, for
		// l.Session, or (renewal off) what is left of the session it was given.
		exp := expiry(now, l.Session)
		if !l.Renewal && l.Admitted > 0 {
			exp = min(exp, expiry(l.Admitted, l.Session))
		}
		if exp <= now {
			return out
		}
		if s.Number >= r.cursor {
			i := s.Number - r.cursor
			if w := r.q.Word(i); w&Taken == 0 {
				r.q.Set(i, w, Taken|uint32(word(now)))
			}
		}
		r.setSession(s, session{exp: exp, claimed: true})
		if ok || l.Admitted > now-RateWindow.Milliseconds() {
			r.window.add(now, l.PerMinute)
			r.admitted++
		}
	default:
		return out
	}
	out.Active, out.Expires = true, msTime(r.sessions[s].exp)
	return out
}

// Revive brings back session s if it has ended and the site has room for it: for a visitor
// whose pass ran out just before the form it filled in was sent (the caller checks the pass
// and how long ago it ran out). The session lasts l.Session from now. It is not an
// admission, so the rate window does not count it; nor does it take a place ahead of
// anyone: a slot another waiter was granted is held, and a free slot is free. A session still
// active is renewed as Renew would. Nothing is revived while the room admits nobody (queue
// all, reject, a pre-queue, recovery), nor a session of another epoch.
func (r *Room) Revive(s Ref, now int64, l Limits) Renewal {
	now, l = r.begin(now, l)
	if ss, ok := r.sessions[s]; ok && ss.claimed {
		return r.renew(s, now, l)
	}
	out := Renewal{Now: msTime(now)}
	if _, pending := r.sessions[s]; pending || s.Epoch != r.epoch || s.Number < 0 || s.Number >= r.next ||
		Allowance(State{Active: int64(len(r.sessions)), Recovering: now < r.recoverUntil}, Limits{Capacity: l.Capacity, PerMinute: math.MaxInt64, Method: l.Method, QueueAll: l.QueueAll}) <= 0 {
		return out
	}
	r.setSession(s, session{exp: expiry(now, l.Session), claimed: true})
	out.Active, out.Expires = true, msTime(r.sessions[s].exp)
	return out
}

// Release ends a session (or an unclaimed grant) at once; its slot is free for the next
// admission. Releasing an unknown session does nothing.
func (r *Room) Release(s Ref, now int64) {
	r.clock(now)
	r.dropSession(s)
}

// Stats reads the room's counters at now. It admits nobody.
func (r *Room) Stats(now int64, l Limits) Stats {
	now, l = r.begin(now, l)
	return r.stats(now, l)
}

// clock is the room's time for an operation at store time now. It never runs back past the
// start of the latest second the room has seen; within that second it may (a store clock
// stepped back by less than a second is taken as it is). So a store need not write the
// room's clock on every operation: room.lua writes its header only when something in it
// changed, which the clock does once a second. Expiries are whole seconds and the liveness
// buckets whole multiples of one, so nothing they decide runs back.
func (r *Room) clock(now int64) int64 {
	now = max(now, r.last-r.last%1000)
	r.last = max(r.last, now)
	return now
}

// begin starts an operation: the room's clock, the event in force and what expired.
func (r *Room) begin(now int64, l Limits) (int64, Limits) {
	now = r.clock(now)
	r.hold = l.Hold
	l = r.schedule(now, l)
	r.prune(now, l)
	return now, l
}

func (r *Room) join(now int64, l Limits) Result {
	if SoldOut(l) {
		return Result{Ticket: -1, Epoch: r.epoch, SoldOut: true, Stats: r.stats(now, l)}
	}
	n := r.next
	r.next++
	r.q.Push(uint32(word(now)))
	r.step(now, l, n)
	res := r.result(Ref{n, r.epoch}, now, l)
	res.Joined = msTime(now)
	return res
}

func (r *Room) poll(t Ref, now int64, l Limits) Result {
	b := word(now)
	switch {
	case r.older(t):
		r.noticeLoss(now, l)
		if _, ok := r.sessions[t]; ok {
			return r.result(t, now, l)
		}
		v, ok := r.recovered[t]
		if ok && (v&Taken != 0 || !Live(int64(v), b, l)) {
			break // passed by admission, or abandoned: the place is gone
		}
		if r.recovered == nil {
			r.recovered = make(map[Ref]uint32)
		}
		if !ok {
			i, _ := slices.BinarySearchFunc(r.rq, t, compareRefs)
			r.rq = slices.Insert(r.rq, i, t)
		} else {
			r.liveRec.Add(int64(v), -1)
		}
		r.liveRec.Add(b, 1)
		r.recovered[t] = uint32(b)
		r.step(now, l, -1)
		return r.result(t, now, l)
	case t.Epoch != r.epoch || t.Number < 0 || t.Number >= r.next:
	case t.Number < r.cursor:
		if _, ok := r.sessions[t]; ok {
			return r.result(t, now, l)
		}
	default:
		i := t.Number - r.cursor
		w := int64(r.q.Word(i))
		if w&Taken != 0 {
			// Admitted out of order (Random, a shuffled pre-queue): in, unless the grant lapsed.
			if _, ok := r.sessions[t]; ok {
				return r.result(t, now, l)
			}
			break
		}
		if !Live(w, b, l) {
			if w != 0 {
				r.q.Set(i, uint32(w), 0) // a lost place stays lost
			}
			break
		}
		if w != b {
			r.q.Set(i, uint32(w), uint32(b))
		}
		r.step(now, l, t.Number)
		return r.result(t, now, l)
	}
	res := r.join(now, l)
	res.Requeued = !res.SoldOut
	return res
}

// step moves admission forward: abandoned places are skipped (a block of them at a time
// where its top says none is live), live ones granted while the limits allow. Recovered places go first. Under Random a free slot goes to the waiter
// whose join or poll this is (poller, -1 for none), if it is live; the head of the queue
// waits for its own draw like everyone else.
func (r *Room) step(now int64, l Limits, poller int64) {
	allow := Allowance(State{
		Active:     int64(len(r.sessions)),
		Window:     r.window.count(now) + r.pending(),
		Recovering: now < r.recoverUntil,
	}, l)
	b := word(now)
	scanned := 0
	for ; len(r.rq) > 0 && scanned < MaxScan; scanned++ {
		k := r.rq[0]
		if v := int64(r.recovered[k]); Live(v, b, l) {
			// A place whose holder is already in (its pass was counted again) needs no grant.
			if _, in := r.sessions[k]; !in {
				if allow <= 0 {
					return
				}
				allow--
				r.grant(k, now, l)
			}
			r.liveRec.Add(v, -1)
		}
		r.recovered[k] = Taken | uint32(b)
		r.rq = r.rq[1:]
	}
	if len(r.rq) > 0 {
		return
	}
	random := l.Method == Random
	if random && allow > 0 && poller >= r.cursor && !r.shufflePending() {
		i := poller - r.cursor
		if w := int64(r.q.Word(i)); Live(w, b, l) {
			allow--
			r.q.Set(i, uint32(w), uint32(Taken|b))
			r.grant(Ref{poller, r.epoch}, now, l)
		}
	}
	skips := 0
	for ; r.cursor < r.next && scanned < MaxScan; scanned++ {
		if r.shufflePending() && r.cursor == r.p0 {
			// The pre-queue in its shuffled order: places granted or passed are marked
			// taken, and the cursor jumps over the whole pre-queue once it is through.
			n := r.p1 - r.p0
			for ; r.sc < n && scanned < MaxScan; r.sc, scanned = r.sc+1, scanned+1 {
				i := Permute(r.seed, n, r.sc)
				w := int64(r.q.Word(i))
				if Live(w, b, l) {
					if allow <= 0 {
						return
					}
					allow--
					r.grant(Ref{r.p0 + i, r.epoch}, now, l)
				}
				if w&Taken == 0 {
					r.q.Set(i, uint32(w), uint32(Taken|b))
				}
			}
			if r.sc < n {
				return
			}
			r.q.Pop(n)
			r.cursor = r.p1
			continue
		}
		if w := int64(r.q.Word(0)); Live(w, b, l) {
			if random || allow <= 0 {
				break
			}
			allow--
			r.grant(Ref{r.cursor, r.epoch}, now, l)
		} else if r.cursor%Block == 0 && skips < MaxSkip && !Live(int64(r.q.Top(r.cursor/Block)), b, l) {
			// Nothing in the block is live: pass it in one step.
			end := min(r.cursor+Block, r.next)
			if r.shufflePending() {
				end = min(end, r.p0)
			}
			r.q.Pop(end - r.cursor)
			r.cursor = end
			skips++
			scanned--
			continue
		}
		r.q.Pop(1)
		r.cursor++
	}
}

// grant holds a slot for k's holder for Grace: its next poll claims it.
func (r *Room) grant(k Ref, now int64, l Limits) {
	r.setSession(k, session{exp: expiry(now, l.Grace)})
	r.granted++
}

// result answers for ticket k, claiming its slot if it was granted: the moment of the claim
// is the admission, which the rate window counts.
func (r *Room) result(k Ref, now int64, l Limits) Result {
	res := Result{Ticket: k.Number, Epoch: k.Epoch}
	if ss, ok := r.sessions[k]; ok {
		if !ss.claimed {
			ss = session{exp: expiry(now, l.Session), claimed: true}
			r.setSession(k, ss)
			r.window.add(now, l.PerMinute)
			r.admitted++
		}
		res.Admitted, res.Expires = true, msTime(ss.exp)
	}
	res.Stats = r.stats(now, l)
	if res.Admitted {
		return res
	}
	var turn int64 // live waiters ahead, as the order goes (see schedule)
	if k.Epoch == r.epoch {
		// In a shuffled pre-queue, places count by their turn in the shuffled order.
		pos, cur := k.Number, r.cursor
		if r.shufflePending() {
			if k.Number >= r.p0 && k.Number < r.p1 {
				pos = r.p0 + PermuteIndex(r.seed, r.p1-r.p0, k.Number-r.p0)
			}
			if r.cursor == r.p0 {
				cur = r.p0 + r.sc
			}
		}
		turn = UsersAhead(pos, cur, r.next, r.q.Live(word(now), l))
		res.UsersAhead = r.liveRec.Sum() + turn
	} else {
		i, _ := slices.BinarySearchFunc(r.rq, k, compareRefs)
		res.UsersAhead = int64(i)
		turn = -1
	}
	res.NextPoll = msTime(r.nextPoll(k, turn, now, l))
	return res
}

// nextPoll is when waiter k, with turn live waiters ahead of it in this epoch's order
// (-1: its order is not this epoch's), should poll next.
//
// A waiter polls every Refresh, unless the rate window will let it in sooner: with P
// grants pending and w admissions in the window, the waiter needs turn+1 more grants, which
// the rate allows once at most PerMinute-P-turn-1 admissions remain in the window, that is,
// 60 s after the admission that many places from the newest. Capacity and everything else
// (recovery, queue-all, a pre-queue) are left to the regular poll; so is a waiter the rate
// cannot let in before the next window.
func (r *Room) nextPoll(k Ref, turn, now int64, l Limits) int64 {
	refresh := now + max(l.Refresh.Milliseconds(), MinPollGap.Milliseconds())
	switch {
	case l.Method == Random && !r.shufflePending():
		return RandomPoll(r.epoch, k.Number, now, l.Refresh)
	case turn < 0 || l.QueueAll || l.Method != FIFO && !r.shufflePending() || now < r.recoverUntil || len(r.rq) > 0:
		return refresh
	}
	if ph := r.phase(now); ph > now && ph < refresh {
		return ph // a pre-queue: the event starts before the next regular poll
	}
	m := l.PerMinute - r.pending() - turn - 1 // admissions the window may still hold
	if m < 0 || turn+1 > l.Capacity-int64(len(r.sessions)) {
		return refresh
	}
	w := r.window.count(now)
	if w <= m {
		return refresh // the rate is not what holds it back
	}
	at := r.window.at(w-m-1) + RateWindow.Milliseconds()
	return min(max(at, now+MinPollGap.Milliseconds()), refresh)
}

// phase returns the start of the pre-queued event in force at now, or 0.
func (r *Room) phase(now int64) int64 {
	if r.p1 < 0 && r.ev > now {
		return r.ev
	}
	return 0
}

func (r *Room) stats(now int64, l Limits) Stats {
	return Stats{
		Slots:      l.Slots,
		Now:        msTime(now),
		Active:     int64(len(r.sessions)),
		Waiting:    r.q.Live(word(now), Limits{Hold: r.hold}) + r.liveRec.Sum(),
		Admissions: r.admitted,
		Granted:    r.granted,
		Window:     r.window.count(now) + r.pending(),
	}
}

func (r *Room) pending() int64 { return int64(len(r.sessions)) - r.claimed }

// recover starts the recovery pause, once per epoch.
func (r *Room) recover(now int64, l Limits) {
	if !r.recovering {
		r.recovering, r.recoverUntil = true, now+l.Recovery.Milliseconds()
	}
}

// noticeLoss starts recovery when a valid ticket or pass of an earlier epoch comes to a
// room younger than the hold: the room existed within the hold, so the store lost it.
func (r *Room) noticeLoss(now int64, l Limits) {
	if now-r.epoch < l.Hold.Milliseconds() {
		r.recover(now, l)
	}
}

// older reports whether ref names a ticket or session of an earlier epoch of this room.
func (r *Room) older(ref Ref) bool {
	return ref.Epoch > 0 && ref.Epoch < r.epoch && ref.Number >= 0
}

// schedule applies the event in force at now and returns the limits in force. At the first
// operation of a pre-queue it opens it; at the first from the start it closes it and drops
// the sessions from before (see Event).
func (r *Room) schedule(now int64, l Limits) Limits {
	l, ph := l.At(now)
	e := ph.Event
	if e == nil {
		return l
	}
	if r.ev != e.Start {
		r.ev, r.p0, r.p1, r.sc, r.shuffle = e.Start, r.next, -1, 0, false
	}
	if !ph.Prequeue && r.p1 < 0 {
		// The cursor may have skipped abandoned places of the pre-queue meanwhile.
		r.p0, r.p1 = max(r.p0, r.cursor), r.next
		r.shuffle, r.seed = e.Shuffle && r.p1 > r.p0, e.Seed
		clear(r.sessions)
		r.expiries, r.claimed = r.expiries[:0], 0
	}
	return l
}

// shufflePending reports whether a shuffled pre-queue still has places to pass. The cursor
// then stands at p0 or before it: it stops at p0, and passes the pre-queue by jumping.
func (r *Room) shufflePending() bool { return r.shuffle && r.sc < r.p1-r.p0 }

// prune drops expired sessions, the counts of words that lapsed under the hold in force
// (so that a later, longer hold does not bring them back), and recovered places whose hold
// is over.
func (r *Room) prune(now int64, l Limits) {
	r.pruneSessions(now)
	r.q.Live(word(now), l)
	oldest := word(now) - HoldBuckets(l)
	r.liveRec.Prune(oldest)
	if len(r.rq) == 0 && len(r.recovered) > 0 {
		for k, v := range r.recovered {
			if int64(v&^Taken) < oldest {
				delete(r.recovered, k)
			}
		}
	}
}

// session is a slot held: claimed by its holder, or granted and waiting for the claim.
type session struct {
	exp     int64
	claimed bool
}

func (r *Room) setSession(k Ref, s session) {
	if old, ok := r.sessions[k]; ok && old.claimed {
		r.claimed--
	}
	if s.claimed {
		r.claimed++
	}
	r.sessions[k] = s
	r.maxExp = max(r.maxExp, s.exp)
	r.expiries.push(expiryAt{s.exp, k})
}

func (r *Room) dropSession(k Ref) {
	if s, ok := r.sessions[k]; ok {
		if s.claimed {
			r.claimed--
		}
		delete(r.sessions, k)
	}
}

func (r *Room) pruneSessions(now int64) {
	for len(r.expiries) > 0 && r.expiries[0].at <= now {
		e := r.expiries.pop()
		if ss, ok := r.sessions[e.k]; ok && ss.exp == e.at {
			r.dropSession(e.k)
		}
	}
}

// expiry is when a slot held for d from now ends: rounded up to a whole second of store
// time, so that a store need look for what expired only once a second.
func expiry(now int64, d time.Duration) int64 {
	t := now + d.Milliseconds()
	return (t + 999) / 1000 * 1000
}

// word is the liveness word of a poll at now: its bucket, plus one so that 0 means none.
func word(now int64) int64 { return Bucket(now) + 1 }

func compareRefs(a, b Ref) int {
	switch {
	case a.Epoch != b.Epoch:
		return cmpInt(a.Epoch, b.Epoch)
	}
	return cmpInt(a.Number, b.Number)
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms) }

type expiryAt struct {
	at int64
	k  Ref
}

// expiryHeap orders session expiries, earliest first; entries made stale by renewal or
// release are skipped when they come out. (A heap of its own: container/heap's interface
// would allocate for every push.)
type expiryHeap []expiryAt

func (h *expiryHeap) push(e expiryAt) {
	*h = append(*h, e)
	a := *h
	for i := len(a) - 1; i > 0; {
		p := (i - 1) / 2
		if a[p].at <= a[i].at {
			break
		}
		a[p], a[i] = a[i], a[p]
		i = p
	}
}

func (h *expiryHeap) pop() expiryAt {
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
		if c+1 < n && a[c+1].at < a[c].at {
			c++
		}
		if a[i].at <= a[c].at {
			break
		}
		a[i], a[c] = a[c], a[i]
		i = c
	}
	*h = a
	return top
}
