// Package memory is an in-process store.Store: one process, many rooms, no network.
//
// It keeps per waiting visitor 4 bytes (the liveness bucket of its last poll) until the
// admission cursor passes its ticket; everything else is per room: counters, a 61-slot rate
// window, a few liveness buckets and one record per active session (at most the capacity).
// A room with no sessions and no live waiters is dropped after its hold period.
package memory

import (
	"container/heap"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
)

// Store is a store.Store held in memory. The zero value is not usable; call New.
// It is safe for concurrent use; operations on different rooms do not block each other.
type Store struct {
	clock func() time.Time

	mu        sync.Mutex // guards rooms, lastSweep
	rooms     map[string]*room
	lastSweep int64
}

// Option configures a Store.
type Option func(*Store)

// WithClock sets the store's clock, the time authority of every room it holds.
// Default: time.Now. Tests pass a simulated clock; it may even go backwards, which the store
// treats as standing still.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.clock = now } }

// New returns an empty Store.
func New(opts ...Option) *Store {
	s := &Store{clock: time.Now, rooms: make(map[string]*room)}
	for _, o := range opts {
		o(s)
	}
	return s
}

// BytesPerWaiter is what a waiting visitor costs this store until admission passes the ticket.
const BytesPerWaiter = 4

// Join implements store.Store.
func (s *Store) Join(ctx context.Context, id string, l admission.Limits) (store.Result, error) {
	r, now, err := s.acquire(ctx, id, l, true)
	if err != nil {
		return store.Result{}, err
	}
	defer r.mu.Unlock()
	l = r.schedule(now, l)
	return r.join(now, l), nil
}

// Poll implements store.Store.
func (s *Store) Poll(ctx context.Context, id string, t store.Ref, l admission.Limits) (store.Result, error) {
	r, now, err := s.acquire(ctx, id, l, true)
	if err != nil {
		return store.Result{}, err
	}
	defer r.mu.Unlock()
	l = r.schedule(now, l)
	return r.poll(now, t, l), nil
}

// Renew implements store.Store.
func (s *Store) Renew(ctx context.Context, id string, ref store.Ref, l admission.Limits) (store.Renewal, error) {
	r, now, err := s.acquire(ctx, id, l, true)
	if err != nil {
		return store.Renewal{}, err
	}
	defer r.mu.Unlock()
	l = r.schedule(now, l)
	r.prune(now, l)
	out := store.Renewal{Now: msTime(now)}
	k := key{ref.Epoch, ref.Number}
	ss, ok := r.sessions[k]
	switch {
	case ok && ss.claimed:
		if l.Renewal {
			// Never shorter: an event's longer session runs out as it was given.
			ss.exp = max(ss.exp, now+l.Session.Milliseconds())
			r.sessions[k] = ss
			heap.Push(&r.expiries, expiry{ss.exp, k})
		}
	case !ok && r.older(ref):
		// The store lost the room and this holder's pass is still valid: count it again.
		r.noticeLoss(now, l)
		ss = session{exp: now + l.Session.Milliseconds(), claimed: true}
		r.sessions[k] = ss
		heap.Push(&r.expiries, expiry{ss.exp, k})
	default:
		return out, nil
	}
	out.Active, out.Expires = true, msTime(ss.exp)
	return out, nil
}

// Release implements store.Store.
func (s *Store) Release(ctx context.Context, id string, ref store.Ref) error {
	r, _, err := s.acquire(ctx, id, admission.Limits{}, false)
	if err != nil || r == nil {
		return err
	}
	defer r.mu.Unlock()
	delete(r.sessions, key{ref.Epoch, ref.Number})
	return nil
}

// Stats implements store.Store. An unknown room has zero counters and is not created.
func (s *Store) Stats(ctx context.Context, id string, l admission.Limits) (store.Stats, error) {
	r, now, err := s.acquire(ctx, id, l, false)
	if err != nil || r == nil {
		return store.Stats{Now: msTime(now)}, err
	}
	defer r.mu.Unlock()
	l = r.schedule(now, l)
	r.prune(now, l)
	return r.stats(now), nil
}

// Rooms reports how many rooms the store holds, after dropping idle ones (see the package doc).
func (s *Store) Rooms() int {
	now := s.clock().UnixMilli()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	return len(s.rooms)
}

// sweepEvery is how often (store time) idle rooms are looked for. The sweep runs inside an
// operation, so there is no background goroutine to stop.
const sweepEvery = 30_000

// acquire returns room id locked (nil if it does not exist and create is false) and the
// store's time for this operation.
func (s *Store) acquire(ctx context.Context, id string, l admission.Limits, create bool) (*room, int64, error) {
	now := s.clock().UnixMilli()
	if err := ctx.Err(); err != nil {
		return nil, now, err
	}
	if !store.ValidRoom(id) {
		return nil, now, store.ErrInvalidRoom
	}
	s.mu.Lock()
	if now-s.lastSweep >= sweepEvery {
		s.lastSweep = now
		s.sweep(now)
	}
	r := s.rooms[id]
	if r == nil {
		if !create {
			s.mu.Unlock()
			return nil, now, nil
		}
		// The epoch is the room's creation time: a room is dropped only after its hold, so
		// a room of the same name never gets the same epoch twice.
		r = &room{epoch: now, last: now, born: now, sessions: make(map[key]session)}
		if l.LastEpoch > 0 && l.LastEpoch < r.epoch {
			r.recover(now, l) // the caller saw this room within the hold: the store lost it
		}
		s.rooms[id] = r
	}
	r.mu.Lock()
	s.mu.Unlock()
	r.last = max(r.last, now)
	if create {
		r.hold = l.Hold
	}
	return r, r.last, nil
}

// sweep drops idle rooms; s.mu is held. A busy room is skipped and looked at next time.
func (s *Store) sweep(now int64) {
	for id, r := range s.rooms {
		if !r.mu.TryLock() {
			continue
		}
		r.pruneSessions(now)
		if len(r.sessions) == 0 && now-r.last > max(r.hold, 61*time.Second).Milliseconds()+admission.LiveBucket.Milliseconds() {
			delete(s.rooms, id)
		}
		r.mu.Unlock()
	}
}

// room is one room's state. Times are store milliseconds; liveness buckets are stored as
// admission.Bucket+1, so that 0 means "gone".
type room struct {
	mu    sync.Mutex
	epoch int64
	born  int64         // when this epoch began
	last  int64         // latest store time seen; the clock never runs backwards here
	hold  time.Duration // from the latest call, for the idle sweep

	next, cursor int64
	seen         []uint32 // liveness of this epoch's tickets [cursor, next)
	live         buckets  // live waiters of this epoch by the bucket of their last poll
	window       [admission.WindowSlots]slotCount
	admitted     int64

	// Places recovered from earlier epochs: the store lost the room, and visitors came back
	// with valid tickets. They were ahead of everyone this epoch queued, so they are served
	// first, in their own order (rq, sorted). A place passed by admission is kept as a
	// tombstone (passed bit set) until its hold is over, so it cannot be taken twice.
	recovered map[key]uint32
	rq        []key
	liveRec   buckets // live recovered waiters by bucket
	// Admission pauses until recoverUntil once a loss shows; it does so once per epoch.
	recoverUntil int64
	recovering   bool

	// The latest scheduled event this room has seen (by its start), and its pre-queue: the
	// tickets [p0, p1) (p1 < 0 while it is open). A shuffled pre-queue is admitted in the
	// order admission.Permute(seed, p1-p0, k) for k from sc on, while the cursor waits at p0.
	ev, p0, p1, sc, seed int64
	shuffle              bool

	sessions map[key]session
	expiries expiryHeap
}

// key names a ticket or session across epochs.
type key struct{ epoch, n int64 }

func (a key) less(b key) bool { return a.epoch < b.epoch || a.epoch == b.epoch && a.n < b.n }

const passed = admission.Taken

type session struct {
	exp     int64
	claimed bool
}

// buckets counts waiters by the liveness bucket of their last poll, oldest first.
type buckets []bucketCount

type bucketCount struct{ bucket, n int64 }

type slotCount struct{ slot, n int64 }

func bucket(now int64) int64 { return admission.Bucket(now) + 1 }

// recover starts the recovery pause, once per epoch.
func (r *room) recover(now int64, l admission.Limits) {
	if !r.recovering {
		r.recovering, r.recoverUntil = true, now+l.Recovery.Milliseconds()
	}
}

// noticeLoss starts recovery when a valid ticket or pass of an earlier epoch comes to a
// room younger than the hold: the room existed within the hold, so the store lost it.
func (r *room) noticeLoss(now int64, l admission.Limits) {
	if now-r.born < l.Hold.Milliseconds() {
		r.recover(now, l)
	}
}

// older reports whether ref names a ticket or session of an earlier epoch of this room.
func (r *room) older(ref store.Ref) bool {
	return ref.Epoch > 0 && ref.Epoch < r.epoch && ref.Number >= 0
}

// schedule applies the event in force at now and returns the limits in force. At the first
// operation of a pre-queue it opens it; at the first from the start it closes it and drops
// the sessions from before (see admission.Event).
func (r *room) schedule(now int64, l admission.Limits) admission.Limits {
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
		r.expiries = r.expiries[:0]
	}
	return l
}

// shufflePending reports whether a shuffled pre-queue still has places to pass. The cursor
// then stands at p0 or before it: it stops at p0, and passes the pre-queue by jumping.
func (r *room) shufflePending() bool { return r.shuffle && r.sc < r.p1-r.p0 }

func (r *room) join(now int64, l admission.Limits) store.Result {
	n := r.next
	r.next++
	b := bucket(now)
	r.seen = append(r.seen, uint32(b))
	r.live.add(b, 1)
	r.step(now, l)
	res := r.result(key{r.epoch, n}, now, l)
	res.Joined = msTime(now)
	return res
}

func (r *room) poll(now int64, t store.Ref, l admission.Limits) store.Result {
	k, b := key{t.Epoch, t.Number}, bucket(now)
	switch {
	case r.older(t):
		r.noticeLoss(now, l)
		r.prune(now, l)
		if _, ok := r.sessions[k]; ok {
			return r.result(k, now, l)
		}
		v, ok := r.recovered[k]
		if ok && (v&passed != 0 || !admission.Live(int64(v), b, l)) {
			break // passed by admission, or abandoned: the place is gone
		}
		if r.recovered == nil {
			r.recovered = make(map[key]uint32)
		}
		if !ok {
			i, _ := slices.BinarySearchFunc(r.rq, k, compareKeys)
			r.rq = slices.Insert(r.rq, i, k)
		} else {
			r.liveRec.add(int64(v), -1)
		}
		r.liveRec.add(b, 1)
		r.recovered[k] = uint32(b)
		r.step(now, l)
		return r.result(k, now, l)
	case t.Epoch != r.epoch || t.Number < 0 || t.Number >= r.next:
	case t.Number < r.cursor:
		r.prune(now, l)
		if _, ok := r.sessions[k]; ok {
			return r.result(k, now, l)
		}
	default:
		i := t.Number - r.cursor
		seen := int64(r.seen[i])
		if seen&admission.Taken != 0 {
			// Granted out of order (Random): in, unless the grant lapsed.
			r.prune(now, l)
			if _, ok := r.sessions[k]; ok {
				return r.result(k, now, l)
			}
			break
		}
		if !admission.Live(seen, b, l) {
			r.seen[i] = 0 // a lost place stays lost
			break
		}
		if seen != b {
			r.live.add(seen, -1)
			r.live.add(b, 1)
			r.seen[i] = uint32(b)
		}
		r.step(now, l)
		return r.result(k, now, l)
	}
	res := r.join(now, l)
	res.Requeued = true
	return res
}

// step prunes what expired and moves admission forward: abandoned places are skipped, live
// ones granted while the admission rule allows. Recovered places go first.
func (r *room) step(now int64, l admission.Limits) {
	r.prune(now, l)
	allow := admission.Allowance(admission.State{
		Active:     int64(len(r.sessions)),
		Window:     r.windowCount(now),
		Recovering: now < r.recoverUntil,
	}, l)
	b := bucket(now)
	scanned := 0
	for ; len(r.rq) > 0 && scanned < admission.MaxScan; scanned++ {
		k := r.rq[0]
		if v := int64(r.recovered[k]); admission.Live(v, b, l) {
			// A place whose holder is already in (its pass was counted again) needs no grant.
			if _, in := r.sessions[k]; !in {
				if allow <= 0 {
					return
				}
				allow--
				r.grant(k, now, l)
			}
			r.liveRec.add(v, -1)
		}
		r.recovered[k] = passed | uint32(b)
		r.rq = r.rq[1:]
	}
	if len(r.rq) > 0 {
		return
	}
	if l.Method == admission.Random {
		// Each free slot to a random live waiter; what is left over (a queue mostly of
		// abandoned places) goes to the head below.
		take := func(i int64) {
			allow--
			r.live.add(int64(r.seen[i]), -1)
			r.seen[i] = uint32(admission.Taken | b)
			r.grant(key{r.epoch, r.cursor + i}, now, l)
		}
		try := int64(0)
		for ; allow > 0 && r.cursor < r.next && try < admission.PickTries*allow; try++ {
			if i := admission.Pick(r.epoch, r.admitted, try, r.next-r.cursor); admission.Live(int64(r.seen[i]), b, l) {
				take(i)
			}
		}
		// Few live places among many taken or abandoned: the next live ones from a random
		// place on, wrapping round.
		if span := r.next - r.cursor; allow > 0 && span > 0 {
			start := admission.Pick(r.epoch, r.admitted, try, span)
			for j := int64(0); allow > 0 && j < min(span, admission.MaxScan); j++ {
				if i := (start + j) % span; admission.Live(int64(r.seen[i]), b, l) {
					take(i)
				}
			}
		}
	}
	for ; r.cursor < r.next && scanned < admission.MaxScan; scanned++ {
		if r.shufflePending() && r.cursor == r.p0 {
			// The pre-queue in its shuffled order: places granted or passed are marked
			// taken, and the cursor jumps over the whole pre-queue once it is through.
			n := r.p1 - r.p0
			for ; r.sc < n && scanned < admission.MaxScan; r.sc, scanned = r.sc+1, scanned+1 {
				i := admission.Permute(r.seed, n, r.sc)
				seen := int64(r.seen[i])
				if admission.Live(seen, b, l) {
					if allow <= 0 {
						return
					}
					allow--
					r.live.add(seen, -1)
					r.grant(key{r.epoch, r.p0 + i}, now, l)
				}
				if seen&admission.Taken == 0 {
					r.seen[i] = uint32(admission.Taken | b)
				}
			}
			if r.sc < n {
				return
			}
			r.seen = r.seen[n:]
			r.cursor = r.p1
			continue
		}
		seen := int64(r.seen[0])
		if admission.Live(seen, b, l) {
			if allow <= 0 {
				break
			}
			allow--
			r.live.add(seen, -1)
			r.grant(key{r.epoch, r.cursor}, now, l)
		}
		r.seen = r.seen[1:]
		r.cursor++
	}
}

func (r *room) grant(k key, now int64, l admission.Limits) {
	exp := now + l.Grace.Milliseconds()
	r.sessions[k] = session{exp: exp}
	heap.Push(&r.expiries, expiry{exp, k})
	slot := admission.Slot(now)
	w := &r.window[slot%admission.WindowSlots]
	if w.slot != slot {
		*w = slotCount{slot: slot}
	}
	w.n++
	r.admitted++
}

// result answers for ticket k, claiming its slot if it was granted.
func (r *room) result(k key, now int64, l admission.Limits) store.Result {
	res := store.Result{Ticket: k.n, Epoch: k.epoch}
	if ss, ok := r.sessions[k]; ok {
		if !ss.claimed {
			ss = session{exp: now + l.Session.Milliseconds(), claimed: true}
			r.sessions[k] = ss
			heap.Push(&r.expiries, expiry{ss.exp, k})
		}
		res.Admitted, res.Expires = true, msTime(ss.exp)
	}
	res.Stats = r.stats(now)
	if !res.Admitted {
		if k.epoch == r.epoch {
			// In a shuffled pre-queue, places count by their turn in the shuffled order.
			pos, cur := k.n, r.cursor
			if r.shufflePending() {
				if k.n >= r.p0 && k.n < r.p1 {
					pos = r.p0 + admission.PermuteIndex(r.seed, r.p1-r.p0, k.n-r.p0)
				}
				if r.cursor == r.p0 {
					cur = r.p0 + r.sc
				}
			}
			res.UsersAhead = r.liveRec.sum() + admission.UsersAhead(pos, cur, r.next, r.live.sum())
		} else {
			i, _ := slices.BinarySearchFunc(r.rq, k, compareKeys)
			res.UsersAhead = int64(i)
		}
	}
	return res
}

func (r *room) stats(now int64) store.Stats {
	return store.Stats{
		Now:        msTime(now),
		Active:     int64(len(r.sessions)),
		Waiting:    r.live.sum() + r.liveRec.sum(),
		Admissions: r.admitted,
		Window:     r.windowCount(now),
	}
}

func (r *room) windowCount(now int64) int64 {
	slot, total := admission.Slot(now), int64(0)
	for _, w := range r.window {
		if w.slot > slot-admission.WindowSlots && w.slot <= slot {
			total += w.n
		}
	}
	return total
}

// prune drops expired sessions, liveness buckets older than the hold, and recovered places
// whose hold is over.
func (r *room) prune(now int64, l admission.Limits) {
	r.pruneSessions(now)
	oldest := bucket(now) - admission.HoldBuckets(l)
	r.live.prune(oldest)
	r.liveRec.prune(oldest)
	if len(r.rq) == 0 && len(r.recovered) > 0 {
		for k, v := range r.recovered {
			if int64(v&^passed) < oldest {
				delete(r.recovered, k)
			}
		}
	}
}

func (r *room) pruneSessions(now int64) {
	for len(r.expiries) > 0 && r.expiries[0].at <= now {
		e := heap.Pop(&r.expiries).(expiry)
		if ss, ok := r.sessions[e.k]; ok && ss.exp == e.at {
			delete(r.sessions, e.k)
		}
	}
}

// add adds d waiters to bucket b; buckets stay sorted, and new ones are nearly always last.
func (bs *buckets) add(b, d int64) {
	i := len(*bs)
	for i > 0 && (*bs)[i-1].bucket > b {
		i--
	}
	if i > 0 && (*bs)[i-1].bucket == b {
		(*bs)[i-1].n += d
		return
	}
	if d < 0 {
		return // the bucket was already pruned: those waiters no longer count
	}
	*bs = slices.Insert(*bs, i, bucketCount{b, d})
}

// prune drops the buckets before oldest: their waiters' places are gone.
func (bs *buckets) prune(oldest int64) {
	i := 0
	for i < len(*bs) && (*bs)[i].bucket < oldest {
		i++
	}
	*bs = (*bs)[i:]
}

func (bs buckets) sum() int64 {
	var n int64
	for _, c := range bs {
		n += c.n
	}
	return n
}

func compareKeys(a, b key) int {
	switch {
	case a.less(b):
		return -1
	case b.less(a):
		return 1
	}
	return 0
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms) }

type expiry struct {
	at int64
	k  key
}

// expiryHeap orders session expiries; entries made stale by renewal or release are skipped.
type expiryHeap []expiry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
