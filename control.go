package waitingroom

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/estimate"
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

// Settings returns the room's settings (as Config does) with their version (as Version
// does), read together: two calls could straddle a change.
func (r *Room) Settings() (Config, int64) {
	s := r.settings.Load()
	return s.cfg.clone(), s.version
}

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
	err := r.call(ctx, OpControl, func(ctx context.Context) (err error) {
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

// Adopt runs the room by stored settings st read from its store (store.Control.Settings)
// from the next request on, if they are newer than the room's: Sync without the read, for
// a caller that read many rooms' settings at once.
func (r *Room) Adopt(st *store.Settings) error {
	if st == nil {
		return nil
	}
	_, err := r.learn(st, false)
	return err
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
		own := len(cur.doc) > 0 && bytes.Equal(stale.Doc, cur.doc)
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
		}
		// Stored: the document is the store's to keep (a room holds it only while it
		// offers it), which saves its bytes in each of 10,000 idle rooms.
		next.version, next.push, next.doc = stale.Version, false, nil
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
	if cfg.CloseWhenSoldOut && !r.countsSlots {
		return nil, configError("CloseWhenSoldOut", "CloseWhenSoldOut needs a store that counts the slots left (store.Slots); %T does not", r.store)
	}
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

// Update validates cfg and stores it as the room's settings, if the stored version is
// ifVersion (0: none stored; store.AnyVersion: whatever it is), recording change c in the
// trail; the room runs by it at once, every other instance from its next store answer or
// Sync. It returns the new version, or an error wrapping ErrConfig (a *ConfigError for cfg)
// or store.ErrVersion (a *store.VersionError). The store must implement store.Control.
func (r *Room) Update(ctx context.Context, cfg Config, ifVersion int64, c store.Change) (int64, error) {
	ctl, ok := r.store.(store.Control)
	if !ok {
		return 0, fmt.Errorf("%w: the store keeps no settings (store.Control)", ErrConfig)
	}
	s, err := r.replaced(nil, cfg)
	if err != nil {
		return 0, err
	}
	before := r.settings.Load().cfg
	var v int64
	err = r.call(ctx, OpControl, func(ctx context.Context) (err error) {
		v, err = ctl.PutSettings(ctx, r.id, store.Settings{Limits: r.stored(s), Doc: s.doc}, ifVersion, c)
		return err
	})
	if err != nil {
		var ve *store.VersionError
		if errors.As(err, &ve) {
			return 0, ve
		}
		return 0, err
	}
	r.logger().Info("waitingroom: settings stored", "room", r.id, "version", v, "by", c.By, "what", c.What)
	if r.hook != nil {
		r.hook(Signal{Kind: SettingsChanged, Room: r.id, At: r.now(), Version: v, Change: c,
			Before: before.clone(), After: s.cfg.clone()})
	}
	if _, err := r.learn(&store.Settings{Version: v, Doc: s.doc}, false); err != nil {
		return v, err
	}
	return v, nil
}

// stored is the limits of settings s as the store keeps them: the room's own and the whole
// schedule.
func (r *Room) stored(s *settings) admission.Limits {
	l := s.limits
	l.Events = s.adm
	return l
}

// Snapshot is a room's live state for operators: its counters in the store and the wait a
// visitor arriving now would be told.
type Snapshot struct {
	store.Stats
	Version int64 // the stored settings version the room runs by
	// Wait is the estimated wait of a new arrival (known and zero when such a visitor
	// would go straight in).
	Wait estimate.Wait
	// LongestWait is how long the earliest waiter this instance answered within the last
	// two refresh intervals has waited so far: exact on one instance; behind a load
	// balancer, of the waiters this instance serves (each polls every instance in turn,
	// so the head of the queue is seen by each now and then).
	LongestWait time.Duration
}

// Snapshot reads the room's counters (one store call) and estimates the wait of a visitor
// arriving now, as its waiting page would say. It admits nobody.
func (r *Room) Snapshot(ctx context.Context) (Snapshot, error) {
	st, err := r.Stats(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	s := r.settings.Load()
	ph := s.at(st.Now)
	out := Snapshot{Stats: st, Version: s.version}
	if st.Waiting > 0 {
		out.LongestWait = r.hist.longest(st.Now, 2*s.cfg.RefreshInterval)
	}
	out.Stats.Settings = nil
	switch {
	case s.cfg.Suspended:
		out.Wait = estimate.Unknown("suspended")
	case ph.method == Reject && !ph.prequeue:
		out.Wait = estimate.Unknown("the room admits nobody")
	case st.Waiting == 0 && st.Active < int64(ph.capacity) && st.Window < int64(ph.perMinute) && !s.cfg.QueueAll && !ph.prequeue:
		out.Wait = estimate.Wait{Known: true} // straight in
	default:
		w := r.status(s, ph, st.Waiting, st.Now).Wait
		if w.Reason == "" {
			if ph.method == Random {
				w = r.live.EstimateRandom(st.Waiting+1, ph.pace)
			} else {
				w = r.live.Estimate(st.Waiting, ph.pace)
			}
		}
		out.Wait = w
	}
	return out, nil
}

// ErrKeyMismatch is a room whose other instances sign and verify with keys this instance
// does not hold (or holds with other secrets): it would turn every visitor of theirs away
// as holding an invalid ticket. The room refuses to serve until the keys agree.
var ErrKeyMismatch = errors.New("waitingroom: this instance's keys do not match the room's")

// maxPrints bounds the key fingerprints a room keeps (a rotation adds one at a time).
const maxPrints = 16

// CheckKeys compares the room's keys with those its other instances use, by fingerprints
// kept in the store (the first instance's are kept): the key that signs the room's tickets
// must be one of this instance's, and a key ID both hold must have the same secret. On a
// mismatch it returns an error wrapping ErrKeyMismatch that names the key ID, and Enter
// refuses to serve the room (an error wrapping it too) until a later check passes. When
// the keys agree and this instance signs with another key (a rotation), the store keeps
// its keys from now on. A registry checks each room it loads; a room made with New alone
// should be checked once before it serves. A store that keeps no settings makes it a no-op.
func (r *Room) CheckKeys(ctx context.Context) error {
	ctl, ok := r.store.(store.Control)
	if !ok {
		return nil
	}
	p := r.codec.Prints()
	mine := store.Keys{Signer: p.Signer, Prints: p.Keys}
	var stored store.Keys
	err := r.call(ctx, OpControl, func(ctx context.Context) (err error) {
		stored, err = ctl.RoomKeys(ctx, r.id, mine, false)
		return err
	})
	if err != nil {
		return err
	}
	for id, fp := range stored.Prints {
		if have, ok := mine.Prints[id]; ok && have != fp {
			r.keysBad.Store(true)
			return fmt.Errorf("%w: room %q: key %q here has another secret than on the room's other instances (is WAITINGROOM_KEY the same everywhere?)", ErrKeyMismatch, r.id, id)
		}
	}
	if _, ok := mine.Prints[stored.Signer]; !ok {
		r.keysBad.Store(true)
		return fmt.Errorf("%w: room %q: its tickets and passes are signed with key %q, which this instance does not have (give it the same WAITINGROOM_KEY as the others; in a rotation, the new key joins as a second key first)", ErrKeyMismatch, r.id, stored.Signer)
	}
	r.keysBad.Store(false)
	if stored.Signer == mine.Signer && len(stored.Prints) >= len(mine.Prints) {
		return nil
	}
	// A rotation: this instance signs with a new key (or holds one more); keep its keys
	// and the older ones it still verifies with.
	merged := store.Keys{Signer: mine.Signer, Prints: maps.Clone(mine.Prints)}
	for id, fp := range stored.Prints {
		if len(merged.Prints) >= maxPrints {
			break
		}
		merged.Prints[id] = fp
	}
	return r.call(ctx, OpControl, func(ctx context.Context) error {
		_, err := ctl.RoomKeys(ctx, r.id, merged, true)
		return err
	})
}

// clone is c with its own events and messages, for a caller that may keep or change it
// while the room keeps its own.
func (c Config) clone() Config {
	c.Events, c.Messages = slices.Clone(c.Events), maps.Clone(c.Messages)
	return c
}
