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
	"sync"
	"time"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
)

// Store is a store.Store held in memory. The zero value is not usable; call New.
// It is safe for concurrent use; operations on different rooms do not block each other.
type Store struct {
	clock func() time.Time

	mu        sync.Mutex // guards rooms, lastEpoch, lastSweep
	rooms     map[string]*room
	lastEpoch int64
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
	r, now, err := s.acquire(ctx, id, l)
	if err != nil {
		return store.Result{}, err
	}
	defer r.mu.Unlock()
	return r.join(now, l), nil
}

// Poll implements store.Store.
func (s *Store) Poll(ctx context.Context, id string, t store.Ref, l admission.Limits) (store.Result, error) {
	r, now, err := s.acquire(ctx, id, l)
	if err != nil {
		return store.Result{}, err
	}
	defer r.mu.Unlock()
	return r.poll(now, t, l), nil
}

// Renew implements store.Store.
func (s *Store) Renew(ctx context.Context, id string, ref store.Ref, l admission.Limits) (store.Renewal, error) {
	r, now, err := s.acquire(ctx, id, l)
	if err != nil {
		return store.Renewal{}, err
	}
	defer r.mu.Unlock()
	r.prune(now, l)
	out := store.Renewal{Now: msTime(now)}
	ss, ok := r.sessions[ref.Number]
	if ref.Epoch != r.epoch || !ok || !ss.claimed {
		return out, nil
	}
	if l.Renewal {
		ss.exp = now + l.Session.Milliseconds()
		r.sessions[ref.Number] = ss
		heap.Push(&r.expiries, expiry{ss.exp, ref.Number})
	}
	out.Active, out.Expires = true, msTime(ss.exp)
	return out, nil
}

// Release implements store.Store.
func (s *Store) Release(ctx context.Context, id string, ref store.Ref) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !store.ValidRoom(id) {
		return store.ErrInvalidRoom
	}
	s.mu.Lock()
	r := s.rooms[id]
	if r == nil {
		s.mu.Unlock()
		return nil
	}
	r.mu.Lock()
	s.mu.Unlock()
	defer r.mu.Unlock()
	if ref.Epoch == r.epoch {
		delete(r.sessions, ref.Number)
	}
	return nil
}

// Stats implements store.Store.
func (s *Store) Stats(ctx context.Context, id string, l admission.Limits) (store.Stats, error) {
	r, now, err := s.acquire(ctx, id, l)
	if err != nil {
		return store.Stats{}, err
	}
	defer r.mu.Unlock()
	r.prune(now, l)
	return r.stats(now, l), nil
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

// acquire returns room id locked, creating it, and the store's time for this operation.
func (s *Store) acquire(ctx context.Context, id string, l admission.Limits) (*room, int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	if !store.ValidRoom(id) {
		return nil, 0, store.ErrInvalidRoom
	}
	now := s.clock().UnixMilli()
	s.mu.Lock()
	if now-s.lastSweep >= sweepEvery {
		s.lastSweep = now
		s.sweep(now)
	}
	r := s.rooms[id]
	if r == nil {
		s.lastEpoch = max(now, s.lastEpoch+1)
		r = &room{epoch: s.lastEpoch, last: now, base: admission.Bucket(now) - 1, sessions: make(map[int64]session)}
		s.rooms[id] = r
	}
	r.mu.Lock()
	s.mu.Unlock()
	r.last = max(r.last, now)
	r.hold = l.Hold
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

// room is one room's state. Times are store milliseconds.
type room struct {
	mu    sync.Mutex
	epoch int64
	base  int64         // liveness bucket before the room's first (see bucket)
	last  int64         // latest store time seen; the clock never runs backwards here
	hold  time.Duration // from the latest call, for the idle sweep

	next, cursor int64
	seen         []uint32 // liveness bucket of tickets [cursor, next); 0 = gone
	live         []bucketCount
	window       [admission.WindowSlots]slotCount
	admitted     int64

	sessions map[int64]session
	expiries expiryHeap
}

type session struct {
	exp     int64
	claimed bool
}

type bucketCount struct{ bucket, n int64 }

type slotCount struct{ slot, n int64 }

// bucket numbers liveness buckets from 1 at the room's creation, so 0 can mean "gone" and a
// waiter fits in 4 bytes for 680 years.
func (r *room) bucket(now int64) int64 {
	return admission.Bucket(now) - r.base
}

func (r *room) join(now int64, l admission.Limits) store.Result {
	n := r.next
	r.next++
	b := r.bucket(now)
	r.seen = append(r.seen, uint32(b))
	r.addLive(b, 1)
	r.step(now, l)
	res := r.result(n, now, l)
	res.Joined = msTime(now)
	return res
}

func (r *room) poll(now int64, t store.Ref, l admission.Limits) store.Result {
	n := t.Number
	switch {
	case t.Epoch != r.epoch || n < 0 || n >= r.next:
	case n < r.cursor:
		r.prune(now, l)
		if _, ok := r.sessions[n]; ok {
			return r.result(n, now, l)
		}
	default:
		i, b := n-r.cursor, r.bucket(now)
		seen := int64(r.seen[i])
		if !admission.Live(seen, b, l) {
			r.seen[i] = 0 // a lost place stays lost
			break
		}
		if seen != b {
			r.addLive(seen, -1)
			r.addLive(b, 1)
			r.seen[i] = uint32(b)
		}
		r.step(now, l)
		return r.result(n, now, l)
	}
	res := r.join(now, l)
	res.Requeued = true
	return res
}

// step prunes what expired and moves the cursor: abandoned places are skipped, live ones
// granted while the admission rule allows.
func (r *room) step(now int64, l admission.Limits) {
	r.prune(now, l)
	allow := admission.Allowance(admission.State{Active: int64(len(r.sessions)), Window: r.windowCount(now)}, l)
	b := r.bucket(now)
	for scanned := 0; r.cursor < r.next && scanned < admission.MaxScan; scanned++ {
		seen := int64(r.seen[0])
		if admission.Live(seen, b, l) {
			if allow <= 0 {
				break
			}
			allow--
			r.addLive(seen, -1)
			r.grant(r.cursor, now, l)
		}
		r.seen = r.seen[1:]
		r.cursor++
	}
}

func (r *room) grant(n, now int64, l admission.Limits) {
	exp := now + l.Grace.Milliseconds()
	r.sessions[n] = session{exp: exp}
	heap.Push(&r.expiries, expiry{exp, n})
	slot := admission.Slot(now)
	w := &r.window[slot%admission.WindowSlots]
	if w.slot != slot {
		*w = slotCount{slot: slot}
	}
	w.n++
	r.admitted++
}

// result answers for ticket n, claiming its slot if it was granted.
func (r *room) result(n, now int64, l admission.Limits) store.Result {
	res := store.Result{Ticket: n, Epoch: r.epoch}
	if ss, ok := r.sessions[n]; ok && n < r.cursor {
		if !ss.claimed {
			ss = session{exp: now + l.Session.Milliseconds(), claimed: true}
			r.sessions[n] = ss
			heap.Push(&r.expiries, expiry{ss.exp, n})
		}
		res.Admitted, res.Expires = true, msTime(ss.exp)
	}
	res.Stats = r.stats(now, l)
	if !res.Admitted {
		res.UsersAhead = admission.UsersAhead(n, r.cursor, r.next, res.Waiting)
	}
	return res
}

func (r *room) stats(now int64, l admission.Limits) store.Stats {
	var waiting int64
	for _, c := range r.live {
		waiting += c.n
	}
	return store.Stats{
		Now:        msTime(now),
		Active:     int64(len(r.sessions)),
		Waiting:    waiting,
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

// prune drops expired sessions and liveness buckets older than the hold.
func (r *room) prune(now int64, l admission.Limits) {
	r.pruneSessions(now)
	oldest := r.bucket(now) - admission.HoldBuckets(l)
	i := 0
	for i < len(r.live) && r.live[i].bucket < oldest {
		i++
	}
	r.live = r.live[i:]
}

func (r *room) pruneSessions(now int64) {
	for len(r.expiries) > 0 && r.expiries[0].at <= now {
		e := heap.Pop(&r.expiries).(expiry)
		if ss, ok := r.sessions[e.id]; ok && ss.exp == e.at {
			delete(r.sessions, e.id)
		}
	}
}

// addLive adds d waiters to bucket b; buckets stay sorted, and new ones are nearly always last.
func (r *room) addLive(b, d int64) {
	i := len(r.live)
	for i > 0 && r.live[i-1].bucket > b {
		i--
	}
	if i > 0 && r.live[i-1].bucket == b {
		r.live[i-1].n += d
		return
	}
	if d < 0 {
		return // the bucket was already pruned: those waiters no longer count
	}
	r.live = append(r.live, bucketCount{})
	copy(r.live[i+1:], r.live[i:])
	r.live[i] = bucketCount{b, d}
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms) }

type expiry struct{ at, id int64 }

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
