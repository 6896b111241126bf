package waitingroom

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/waitingroom-go/waitingroom/store"
)

// Revocation: a released pass (Release) is refused at once on the instance that released
// it, and within a second on every other: Release writes the session to the store's
// revocation log (store.Control.Revoke), and each instance reads the log, at most once a
// second and never on a request's path: a registry's watch reads it for all its rooms
// (ApplyRevocations), and a room outside a registry reads it in the background when it
// serves an admitted request and its last reading is a second old. WithStrictRevocation
// makes every admitted request ask the store instead (one round trip each).

// WithStrictRevocation makes every request with a pass ask the store whether the session
// is still active (a renewal, one store round trip per request), so that a released pass
// is refused on every instance at once. Default: off; a released pass is refused within
// about a second (see Release).
func WithStrictRevocation() Option {
	return func(r *Room) error { r.strict = true; return nil }
}

// revocations are the released sessions of a room this instance knows of, until their
// passes expire.
type revocations struct {
	n      atomic.Int32 // len(m): admitted requests skip the lock while it is 0
	mu     sync.RWMutex
	m      map[renewKey]time.Time
	cursor string // in the store's log
	synced atomic.Int64
	// external: a registry reads the log for this room; it does not read it itself.
	external atomic.Bool
	reading  sync.Mutex
}

// maxRevoked bounds the released sessions a room remembers; past it, the oldest-expiring
// are forgotten first and refused at their next renewal as before.
const maxRevoked = 100_000

func (rv *revocations) add(k renewKey, until time.Time, now time.Time) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if rv.m == nil {
		rv.m = make(map[renewKey]time.Time)
	}
	if len(rv.m) >= maxRevoked {
		for k, u := range rv.m {
			if !u.After(now) {
				delete(rv.m, k)
			}
		}
	}
	if len(rv.m) < maxRevoked {
		rv.m[k] = until
	}
	rv.n.Store(int32(len(rv.m)))
}

func (rv *revocations) has(k renewKey) bool {
	if rv.n.Load() == 0 {
		return false
	}
	rv.mu.RLock()
	defer rv.mu.RUnlock()
	_, ok := rv.m[k]
	return ok
}

// ApplyRevocations takes in revocations read from the room's store's log (the room's own;
// others are passed over). A registry's watch calls it for all its rooms; from then on the
// room does not read the log itself.
func (r *Room) ApplyRevocations(rs []store.Revocation) {
	r.revoked.external.Store(true)
	r.applyRevocations(rs)
}

func (r *Room) applyRevocations(rs []store.Revocation) {
	now := r.now()
	for _, x := range rs {
		if x.Room == r.id && x.Until.After(now) {
			r.revoked.add(renewKey{x.Session.Epoch, x.Session.Number}, x.Until, now)
			r.renewals.forget(renewKey{x.Session.Epoch, x.Session.Number})
		}
	}
}

// readRevocationsLater reads the store's revocation log in the background if the room
// reads it itself and its last reading is older than a second at now.
func (r *Room) readRevocationsLater(now time.Time) {
	if r.revoked.external.Load() {
		return
	}
	ctl, ok := r.store.(store.Control)
	if !ok {
		return
	}
	last := r.revoked.synced.Load()
	if now.UnixMilli()-last < 1000 || !r.revoked.synced.CompareAndSwap(last, now.UnixMilli()) || !r.revoked.reading.TryLock() {
		return
	}
	go func() {
		defer r.revoked.reading.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
		defer cancel()
		rs, cursor, err := ctl.Revocations(ctx, r.revoked.cursor)
		if err != nil {
			return // read again after the next second
		}
		r.revoked.cursor = cursor
		for _, x := range rs {
			if x.Room == r.id && x.Until.After(now) {
				r.revoked.add(renewKey{x.Session.Epoch, x.Session.Number}, x.Until, now)
				r.renewals.forget(renewKey{x.Session.Epoch, x.Session.Number})
			}
		}
	}()
}
