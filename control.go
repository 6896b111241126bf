package waitingroom

import (
	"bytes"
	"context"
	"fmt"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
)

// A room's settings live in its store as a versioned document (EncodeConfig's JSON), which
// the store enforces (admission.Settle): every operation says which version the room's
// limits come from, and the store runs by the stored version wherever they differ, handing
// it back. So instances with different settings never admit past the stored limits, and
// an instance learns of a change on its next store answer. The code's Config seeds a room
// whose store has none; after that the stored version wins, unless the room was made with
// WithOverwrite or SetConfig is called, when this instance's settings replace it.

// WithOverwrite makes the Config given to New replace the settings stored for the room,
// once, at the room's first store operation: a deploy's explicit choice. Without it
// (the default), the code's Config only seeds a room that has no stored settings, and what
// an operator set since stays.
func WithOverwrite() Option {
	return func(r *Room) error { r.overwrite = true; return nil }
}

// Version is the version of the stored settings the room runs by: 0 until a store answer
// says (or for a store that keeps no settings).
func (r *Room) Version() int64 { return r.settings.Load().version }

// Sync reads the room's stored settings and runs by them from the next request on, if they
// are newer than the room's: for an instance that serves the room without traffic (a store
// answer would carry them), which a registry's watch calls. A store that keeps no settings
// makes it a no-op.
func (r *Room) Sync(ctx context.Context) error {
	c, ok := r.store.(store.Control)
	if !ok {
		return nil
	}
	var st *store.Settings
	err := r.call(ctx, func(ctx context.Context) (err error) {
		st, err = c.Settings(ctx, r.id)
		return err
	})
	if err != nil {
		return err
	}
	if st != nil {
		if _, err := r.learn(st, false); err != nil {
			return err
		}
	}
	return nil
}

// offer is the limits of settings s for one store call, with the settings' version and,
// where the store should store them, their document. pushed reports that the call carries
// this instance's change (SetConfig, WithOverwrite): only one call at a time does, so that
// one change makes one version; the caller passes pushed to learn.
func (r *Room) offer(s *settings) (l admission.Limits, pushed bool) {
	l = r.limits(s)
	l.Offer.Version = s.version
	switch {
	case s.push:
		if !r.pushing.CompareAndSwap(false, true) {
			return l, false
		}
		l.Offer.Doc, l.Offer.Overwrite, pushed = s.doc, true, true
	case s.version == 0:
		l.Offer.Doc = s.doc // a seed, if the store has none
	default:
		return l, false
	}
	l.Events = s.adm // the store keeps the whole schedule
	return l, pushed
}

// learn takes in what a store answer said of the stored settings (stale: another version
// than the call's, nil when the same) and returns the settings the room runs by now.
// pushed releases the call's hold on pushing this instance's change. A document the room
// cannot read (from a newer release) is an error; the store enforced it all the same.
func (r *Room) learn(stale *admission.Settings, pushed bool) (*settings, error) {
	if pushed {
		defer r.pushing.Store(false)
	}
	for {
		cur := r.settings.Load()
		if stale == nil || stale.Version <= cur.version {
			return cur, nil
		}
		own := bytes.Equal(stale.Doc, cur.doc)
		if cur.push && !(pushed && own) {
			// This instance's change is on its way; the answer ran by the version before it.
			return cur, nil
		}
		var next *settings
		if own {
			c := *cur
			next = &c
		} else {
			if r.undecodable.Load() == stale.Version {
				return cur, errUndecodable
			}
			cfg, err := DecodeConfig(stale.Doc)
			if err == nil {
				next, err = newSettings(cfg, r.id, r.codec)
			}
			if err != nil {
				r.undecodable.Store(stale.Version)
				return cur, fmt.Errorf("%w: stored settings version %d: %w", errUndecodable, stale.Version, err)
			}
			next.doc = bytes.Clone(stale.Doc)
		}
		next.version, next.push = stale.Version, false
		if r.settings.CompareAndSwap(cur, next) {
			return next, nil
		}
	}
}

// errUndecodable is stored settings this release cannot read.
var errUndecodable = fmt.Errorf("%w: the store's settings document cannot be read", ErrConfig)

// replaced is settings s's successor with cfg: this instance's change, to store as the
// next version.
func (r *Room) replaced(cur *settings, cfg Config) (*settings, error) {
	s, err := newSettings(cfg, r.id, r.codec)
	if err != nil {
		return nil, err
	}
	if s.doc, err = EncodeConfig(s.cfg); err != nil {
		return nil, err
	}
	if cur != nil {
		s.version, s.push = cur.version, true
	} else {
		s.push = r.overwrite
	}
	return s, nil
}
