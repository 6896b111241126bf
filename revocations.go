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
// revocation log (store.Control.Revoke), and each instance reads the log, never on a
// request's path: a registry's watch reads it for all its rooms four times a second
// (ApplyRevocations), and a room outside a registry when its host calls ReadRevocations.
// WithStrictRevocation makes every request with a pass ask the store instead (one round
// trip each).

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
	n       atomic.Int32 // len(m): admitted requests skip the lock while it is 0
	mu      sync.RWMutex
	m       map[renewKey]time.Time
	cursor  string     // in the store's log (under reading)
	reading sync.Mutex // one reading at a time
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
// others are passed over): a registry's watch reads the log once for all its rooms.
func (r *Room) ApplyRevocations(rs []store.Revocation) { r.applyRevocations(rs) }

func (r *Room) applyRevocations(rs []store.Revocation) {
	now := r.now()
	for _, x := range rs {
		if x.Room == r.id && x.Until.After(now) {
			r.revoked.add(renewKey{x.Session.Epoch, x.Session.Number}, x.Until, now)
			r.renewals.forget(renewKey{x.Session.Epoch, x.Session.Number})
		}
	}
}

// ReadRevocations reads the store's revocation log (one store call) and refuses the
// passes released since the last reading. A registry's watch does this for its rooms four
// times a second; a room outside a registry that shares its store with other instances
// needs a caller to do it (once a second, say) for the one-second bound: otherwise its
// passes released elsewhere are refused at their next renewal, as before. It is never done
// on a request's path: an admitted request makes no store call but a renewal.
func (r *Room) ReadRevocations(ctx context.Context) error {
	ctl, ok := r.store.(store.Control)
	if !ok {
		return nil
	}
	r.revoked.reading.Lock()
	defer r.revoked.reading.Unlock()
	var rs []store.Revocation
	cursor := r.revoked.cursor
	err := r.call(ctx, OpControl, func(ctx context.Context) (err error) {
		rs, cursor, err = ctl.Revocations(ctx, cursor)
		return err
	})
	if err != nil {
		return err
	}
	r.revoked.cursor = cursor
	r.applyRevocations(rs)
	return nil
}
