package memory

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
)

// settle applies admission.Settle to an operation on room id at store time now, storing a
// seed or an overwrite (the caller learns its version from the settings returned); the
// caller holds the room's lock (or the room does not exist).
func (s *Store) settle(id string, l admission.Limits, now int64) (admission.Limits, *admission.Settings) {
	stored := s.settings(id)
	l, put, stale := admission.Settle(l, stored)
	if put != nil {
		what := "seed"
		if stored != nil {
			what = "overwrite"
		}
		s.mu.Lock()
		if c := s.record0(id); c != nil && stored == nil {
			put.Version = c.last + 1 // a room deleted and seeded again: versions go on rising
		}
		// Another seed may have come in between (two rooms' first calls): the first stays.
		if cur := s.settings(id); cur == stored {
			s.record(id, put, store.Change{At: time.UnixMilli(now), By: "code", What: what}, stored)
		} else {
			l, _, stale = admission.Settle(l, cur)
		}
		s.mu.Unlock()
	}
	return l, stale
}

// record0 is room id's record, nil when it has none.
func (s *Store) record0(id string) *cfgRecord {
	if v, ok := s.cfgs.Load(id); ok {
		return v.(*cfgRecord)
	}
	return nil
}

// settings are room id's stored settings, nil when none: no lock (see Store.cfgs).
func (s *Store) settings(id string) *admission.Settings {
	if rec := s.record0(id); rec != nil {
		return rec.cur.Load()
	}
	return nil
}

// recordOf is room id's record, made if it has none; s.mu is held.
func (s *Store) recordOf(id string) *cfgRecord {
	rec := s.record0(id)
	if rec == nil {
		rec = &cfgRecord{}
		s.cfgs.Store(id, rec)
	}
	return rec
}

// record stores settings s (nil: deleted) for room id and appends change c; s.mu is held.
func (s *Store) record(id string, next *admission.Settings, c store.Change, prev *admission.Settings) {
	rec := s.recordOf(id)
	if prev != nil {
		c.Previous, c.Prior = prev.Version, prev.Doc
	}
	if next != nil {
		c.Version = next.Version
		rec.last = next.Version
	}
	rec.cur.Store(next)
	rec.changes = append(rec.changes, c)
	if n := len(rec.changes) - store.MaxChanges; n > 0 {
		rec.changes = append(rec.changes[:0:0], rec.changes[n:]...)
	}
}

// Settings implements store.Control.
func (s *Store) Settings(ctx context.Context, id string) (*admission.Settings, error) {
	if err := check(ctx, id); err != nil {
		return nil, err
	}
	if st := s.settings(id); st != nil {
		return clone(st), nil
	}
	return nil, nil
}

// PutSettings implements store.Control.
func (s *Store) PutSettings(ctx context.Context, id string, next admission.Settings, ifVersion int64, c store.Change) (int64, error) {
	var v int64
	err := s.change(ctx, id, ifVersion, false, func(cur *admission.Settings, now int64) {
		next.Version = 1
		if rec := s.record0(id); rec != nil {
			next.Version = rec.last + 1 // after a deletion too: an old ETag never matches
		}
		next.Limits.Offer, next.Limits.LastEpoch = admission.Offer{}, 0
		c.At = time.UnixMilli(now)
		n := clone(&next)
		s.record(id, n, c, cur)
		s.listed[id] = true
		v = n.Version
	})
	return v, err
}

// DeleteSettings implements store.Control.
func (s *Store) DeleteSettings(ctx context.Context, id string, ifVersion int64, c store.Change) error {
	return s.change(ctx, id, ifVersion, true, func(cur *admission.Settings, now int64) {
		c.At = time.UnixMilli(now)
		s.record(id, nil, c, cur)
		s.record0(id).slots.Store(0) // the count goes with the settings
		delete(s.listed, id)
	})
}

// change runs f on room id's settings under the room's lock and the store's, if the stored
// version is ifVersion; a delete needs settings to delete.
func (s *Store) change(ctx context.Context, id string, ifVersion int64, deleting bool, f func(cur *admission.Settings, now int64)) error {
	if err := check(ctx, id); err != nil {
		return err
	}
	// The room's lock first (as an operation takes them), so that no operation runs between
	// the check and the change, or by the old settings after it.
	r, now, err := s.acquire(ctx, id, admission.Limits{}, false)
	if err != nil {
		return err
	}
	if r != nil {
		defer r.mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.settings(id)
	var have int64
	if cur != nil {
		have = cur.Version
	}
	if ifVersion != store.AnyVersion && ifVersion != have || deleting && have == 0 {
		return &store.VersionError{Stored: have}
	}
	s.gen++
	f(cur, now)
	return nil
}

// Changes implements store.Control.
func (s *Store) Changes(ctx context.Context, id string) ([]store.Change, error) {
	if err := check(ctx, id); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	rec := s.record0(id)
	if rec == nil {
		return nil, nil
	}
	out := make([]store.Change, len(rec.changes))
	for i, c := range rec.changes {
		out[len(out)-1-i] = c
	}
	return out, nil
}

// ListRooms implements store.Control.
func (s *Store) ListRooms(ctx context.Context) (int64, map[string]int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]int64, len(s.listed))
	for id := range s.listed {
		out[id] = s.settings(id).Version
	}
	return s.gen, out, nil
}

// Generation implements store.Control.
func (s *Store) Generation(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.gen, nil
}

// RoomKeys implements store.Control.
func (s *Store) RoomKeys(ctx context.Context, id string, k store.Keys, replace bool) (store.Keys, error) {
	if err := check(ctx, id); err != nil {
		return store.Keys{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.recordOf(id)
	if rec.keys == nil || replace {
		c := k
		c.Prints = maps.Clone(k.Prints)
		rec.keys = &c
	}
	out := *rec.keys
	out.Prints = maps.Clone(out.Prints)
	return out, nil
}

// Revoke implements store.Control.
func (s *Store) Revoke(ctx context.Context, id string, ref store.Ref, until time.Time) error {
	if err := check(ctx, id); err != nil {
		return err
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.revoked = append(s.revoked, store.Revocation{Room: id, Session: ref, Until: until})
	s.revSeq++
	if n := len(s.revoked) - store.MaxRevocations; n > 0 {
		s.revoked = append(s.revoked[:0:0], s.revoked[n:]...)
	}
	return nil
}

// Revocations implements store.Control. A cursor is the number of revocations recorded.
func (s *Store) Revocations(ctx context.Context, cursor string) ([]store.Revocation, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, cursor, err
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	first := s.revSeq - int64(len(s.revoked)) // the sequence number of revoked[0]
	from := first
	if cursor != "" {
		n, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil || n < 0 {
			return nil, cursor, fmt.Errorf("store/memory: revocation cursor %q", cursor)
		}
		from = max(n, first)
	}
	if from > s.revSeq {
		from = s.revSeq
	}
	out := append([]store.Revocation(nil), s.revoked[from-first:]...)
	return out, strconv.FormatInt(s.revSeq, 10), nil
}

// slots is room id's slot count (admission.NotCounted: none): no lock, as settings.
func (s *Store) slots(id string) int64 {
	if rec := s.record0(id); rec != nil {
		return rec.slots.Load() - 1
	}
	return admission.NotCounted
}

// SetSlots implements store.Slots.
func (s *Store) SetSlots(ctx context.Context, id string, n int64) error {
	if err := check(ctx, id); err != nil {
		return err
	}
	n = admission.SetSlots(n)
	if rec := s.record0(id); rec != nil {
		rec.slots.Store(n + 1)
		return nil
	}
	if n == admission.NotCounted {
		return nil // nothing to stop: no record made
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recordOf(id).slots.Store(n + 1)
	return nil
}

// TakeSlots implements store.Slots.
func (s *Store) TakeSlots(ctx context.Context, id string, n int64) (int64, error) {
	if err := check(ctx, id); err != nil {
		return admission.NotCounted, err
	}
	rec := s.record0(id)
	if rec == nil {
		return admission.NotCounted, nil
	}
	for {
		have := rec.slots.Load()
		left := admission.TakeSlots(have-1, n)
		if left == admission.NotCounted || rec.slots.CompareAndSwap(have, left+1) {
			return left, nil
		}
	}
}

var _ store.Slots = (*Store)(nil)

// Touch implements store.Control: nothing here expires while the store runs.
func (s *Store) Touch(ctx context.Context, rooms []string) error { return ctx.Err() }

func check(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !store.ValidRoom(id) {
		return store.ErrInvalidRoom
	}
	return nil
}

// clone copies s, so that no caller shares the store's slices.
func clone(s *admission.Settings) *admission.Settings {
	c := *s
	c.Doc = append([]byte(nil), s.Doc...)
	c.Limits.Events = append([]admission.Event(nil), s.Limits.Events...)
	return &c
}

var _ store.Control = (*Store)(nil)
