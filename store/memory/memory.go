// Package memory is an in-process store.Store: one process, many rooms, no network.
//
// Each room is an admission.Room behind a lock. It keeps per waiting visitor 4 bytes (the
// liveness of its last poll) until the admission cursor passes its ticket; the rest is per
// room: counters, the rate window (at most PerMinute admission times), a few liveness
// buckets and one record per active session (at most the capacity). A room with no
// sessions and nobody coming is dropped once its places and rate window have lapsed.
package memory

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
)

// Store is a store.Store held in memory. The zero value is not usable; call New.
// It is safe for concurrent use; operations on different rooms do not block each other.
type Store struct {
	clock func() time.Time

	// mu guards rooms; an operation holds it only to look its room up (shared), never while
	// it waits for the room's own lock, so that a busy room does not hold up the map.
	mu        sync.RWMutex
	rooms     map[string]*room
	lastSweep atomic.Int64

	// The control plane: settings outlive the rooms' state, which is dropped when idle. An
	// operation reads its room's settings while it holds the room's lock, without the map's
	// (cfgs is read lock-free and a record's settings are an atomic pointer), and a change
	// takes the room's lock too, so that no operation runs by settings already replaced.
	// Changes are made under mu; a record, once made, is never removed.
	cfgs sync.Map // room ID -> *cfgRecord

	presenceMu sync.Mutex
	presence   presence
	claimsMu   sync.Mutex
	claims     claims
	listed     map[string]bool
	gen        int64

	rmu     sync.Mutex // guards revoked and revSeq
	revoked []store.Revocation
	revSeq  int64 // revocations ever recorded

	hmu     sync.Mutex // guards hist and hpruned
	hist    map[string]history
	hpruned int64 // the oldest minute kept at the last pruning
}

type cfgRecord struct {
	cur     atomic.Pointer[admission.Settings] // nil once deleted (the trail stays while the store runs)
	last    int64                              // the latest version: versions go on rising after a deletion
	keys    *store.Keys                        // the fingerprints of the room's keys, nil until an instance says
	slots   atomic.Int64                       // the room's slot count plus one; 0: not counted (read lock-free)
	changes []store.Change                     // newest last, at most store.MaxChanges
}

type room struct {
	mu sync.Mutex
	*admission.Room
	gone bool // dropped by a sweep (under mu): whoever locks it afterwards looks again
}

// Option configures a Store.
type Option func(*Store)

// WithClock sets the store's clock, the time authority of every room it holds.
// Default: time.Now. Tests pass a simulated clock; it may even go backwards, which the store
// treats as standing still.
func WithClock(now func() time.Time) Option { return func(s *Store) { s.clock = now } }

// New returns an empty Store.
func New(opts ...Option) *Store {
	s := &Store{clock: time.Now, rooms: make(map[string]*room), listed: make(map[string]bool), hist: make(map[string]history)}
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
	l, stale := s.settle(id, l, now)
	l.Slots = s.slots(id)
	res := r.Join(now, l)
	res.Settings = stale
	return res, nil
}

// Poll implements store.Store.
func (s *Store) Poll(ctx context.Context, id string, t store.Ref, l admission.Limits) (store.Result, error) {
	r, now, err := s.acquire(ctx, id, l, true)
	if err != nil {
		return store.Result{}, err
	}
	defer r.mu.Unlock()
	l, stale := s.settle(id, l, now)
	l.Slots = s.slots(id)
	res := r.Poll(t, now, l)
	res.Settings = stale
	return res, nil
}

// Renew implements store.Store.
func (s *Store) Renew(ctx context.Context, id string, ref store.Ref, l admission.Limits) (store.Renewal, error) {
	r, now, err := s.acquire(ctx, id, l, true)
	if err != nil {
		return store.Renewal{}, err
	}
	defer r.mu.Unlock()
	l, stale := s.settle(id, l, now)
	ren := r.Renew(ref, now, l)
	ren.Settings = stale
	return ren, nil
}

// Revive implements store.Store.
func (s *Store) Revive(ctx context.Context, id string, ref store.Ref, l admission.Limits) (store.Renewal, error) {
	r, now, err := s.acquire(ctx, id, l, false)
	if err != nil || r == nil {
		return store.Renewal{Now: time.UnixMilli(now)}, err
	}
	defer r.mu.Unlock()
	l, stale := s.settle(id, l, now)
	ren := r.Revive(ref, now, l)
	ren.Settings = stale
	return ren, nil
}

// Release implements store.Store.
func (s *Store) Release(ctx context.Context, id string, ref store.Ref) error {
	r, now, err := s.acquire(ctx, id, admission.Limits{}, false)
	if err != nil || r == nil {
		return err
	}
	defer r.mu.Unlock()
	r.Release(ref, now)
	return nil
}

// Stats implements store.Store. An unknown room has zero counters and is not created.
func (s *Store) Stats(ctx context.Context, id string, l admission.Limits) (store.Stats, error) {
	l.Offer.Doc = nil // a reading stores nothing
	r, now, err := s.acquire(ctx, id, l, false)
	if err != nil || r == nil {
		st := store.Stats{Now: time.UnixMilli(now), Slots: admission.NotCounted}
		if err == nil {
			_, st.Settings = s.settle(id, l, now)
			st.Slots = s.slots(id)
		}
		return st, err
	}
	defer r.mu.Unlock()
	l, stale := s.settle(id, l, now)
	l.Slots = s.slots(id)
	st := r.Stats(now, l)
	st.Settings = stale
	return st, nil
}

// Rooms reports how many rooms the store holds, after dropping idle ones (see the package doc).
func (s *Store) Rooms() int {
	now := s.clock().UnixMilli()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastSweep.Store(now)
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
	if last := s.lastSweep.Load(); now-last >= sweepEvery && s.lastSweep.CompareAndSwap(last, now) {
		s.mu.Lock()
		s.sweep(now)
		s.mu.Unlock()
	}
	for {
		s.mu.RLock()
		r := s.rooms[id]
		s.mu.RUnlock()
		if r == nil {
			if !create {
				return nil, now, nil
			}
			s.mu.Lock()
			if r = s.rooms[id]; r == nil {
				// The epoch is the room's creation time: a room is dropped only after its
				// hold, so a room of the same name never gets the same epoch twice.
				r = &room{Room: admission.Open(now, new(admission.MemQueue), l)}
				s.rooms[id] = r
			}
			s.mu.Unlock()
		}
		if testHookLookedUp != nil {
			testHookLookedUp(r)
		}
		r.mu.Lock()
		if !r.gone {
			return r, now, nil
		}
		r.mu.Unlock() // swept between the lookup and the lock: look again
	}
}

// testHookLookedUp, when set by a test, runs between an operation's lookup of its room and
// its taking the room's lock.
var testHookLookedUp func(*room)

// sweep drops idle rooms; s.mu is held. A busy room is skipped and looked at next time.
func (s *Store) sweep(now int64) {
	for id, r := range s.rooms {
		if !r.mu.TryLock() {
			continue
		}
		if r.Idle(now) {
			r.gone = true
			delete(s.rooms, id)
		}
		r.mu.Unlock()
	}
}
