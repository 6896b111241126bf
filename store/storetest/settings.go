package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
)

// The control plane's conformance: stored settings win over a caller's (admission.Settle),
// changes are compare-and-set with a bounded trail, and the room list follows them. A store
// that does not implement store.Control skips these.

func (r *roomTest) control() store.Control {
	r.t.Helper()
	c, ok := r.h.Store.(store.Control)
	if f, wraps := r.h.Store.(*Forgetful); wraps {
		_, err := f.control()
		ok = err == nil
	}
	if !ok {
		r.t.Skip("the store does not implement store.Control")
	}
	return c
}

// offered are limits l as a caller with settings document doc at version v offers them.
func offered(l admission.Limits, v int64, doc string) admission.Limits {
	l.Offer = admission.Offer{Version: v}
	if doc != "" {
		l.Offer.Doc = []byte(doc)
	}
	return l
}

func (r *roomTest) wantSettings(what string, got *admission.Settings, v int64, doc string) {
	r.t.Helper()
	switch {
	case got == nil && v != 0:
		r.t.Errorf("%s: no stored settings in the answer, want version %d", what, v)
	case got != nil && v == 0:
		r.t.Errorf("%s: stored settings version %d in the answer, want none", what, got.Version)
	case got != nil && (got.Version != v || !bytes.Equal(got.Doc, []byte(doc))):
		r.t.Errorf("%s: stored settings version %d %q, want %d %q", what, got.Version, got.Doc, v, doc)
	}
}

// Two instances with different settings for one room, neither yet holding a stored
// version (a rolling deploy): the first seeds the room, and the second runs by what was
// stored, capacity and rate, and learns of it.
func testStoredSettingsWin(r *roomTest) {
	r.control()
	a, b := limits(), limits()
	a.Capacity, a.PerMinute = 2, 2
	b.Capacity, b.PerMinute = 20, 20
	ra := r.join(offered(a, 0, `{"a":1}`))
	r.wantSettings("A's first join (a seed)", ra.Settings, 1, `{"a":1}`)
	rb := r.join(offered(b, 0, `{"b":1}`))
	r.wantSettings("B's first join", rb.Settings, 1, `{"a":1}`)
	var last store.Result
	for i := range 10 {
		// B now says version 1 (it adopted A's settings), A too; and one that still holds
		// its code's settings without a document keeps learning.
		last = r.join(offered(b, 0, ""))
		r.wantSettings(fmt.Sprintf("B's join %d without a version", i), last.Settings, 1, `{"a":1}`)
		if last.Active > 2 {
			r.t.Fatalf("B's join %d: %d active, over the stored capacity 2", i, last.Active)
		}
		if last.Window > 2 {
			r.t.Fatalf("B's join %d: %d in the rate window, over the stored rate 2", i, last.Window)
		}
	}
	r.wantStats("after 12 joins", last.Stats, 2, 10, 2, 2)
	held := r.join(offered(a, 1, ""))
	r.wantSettings("a caller holding the stored version", held.Settings, 0, "")
}

// A change through PutSettings applies to the next operation of a caller holding the old
// version, which learns of the new one; versions are compare-and-set.
func testSettingsChange(r *roomTest) {
	c := r.control()
	l := limits()
	l.Capacity, l.PerMinute = 1, 1
	who := store.Change{By: "ops", What: "create"}
	if _, err := c.PutSettings(r.ctx, r.room, admission.Settings{Limits: l, Doc: []byte(`{"v":1}`)}, 5, who); !errors.Is(err, store.ErrVersion) {
		r.t.Fatalf("PutSettings of a room without settings if at version 5: %v, want ErrVersion", err)
	}
	v, err := c.PutSettings(r.ctx, r.room, admission.Settings{Limits: l, Doc: []byte(`{"v":1}`)}, 0, who)
	if err != nil || v != 1 {
		r.t.Fatalf("PutSettings (create): %d, %v; want version 1", v, err)
	}
	got, err := c.Settings(r.ctx, r.room)
	if err != nil || got == nil || got.Version != 1 || string(got.Doc) != `{"v":1}` || got.Limits.Capacity != 1 || got.Limits.PerMinute != 1 {
		r.t.Fatalf("Settings after the create: %+v, %v", got, err)
	}

	mine := limits() // the next version says 3 and 3
	r.wantAdmitted("1st join", r.join(offered(l, 1, "")))
	w := r.join(offered(l, 1, ""))
	r.wantWaiting("2nd join, stored capacity 1", w, 0)
	r.wantSettings("2nd join", w.Settings, 0, "")

	var e *store.VersionError
	if _, err := c.PutSettings(r.ctx, r.room, admission.Settings{Limits: mine, Doc: []byte(`{"v":2}`)}, 0, who); !errors.As(err, &e) || e.Stored != 1 {
		r.t.Fatalf("PutSettings if none stored, with version 1 stored: %v, want a VersionError at 1", err)
	}
	v, err = c.PutSettings(r.ctx, r.room, admission.Settings{Limits: mine, Doc: []byte(`{"v":2}`)}, 1, store.Change{By: "ops", What: "replace"})
	if err != nil || v != 2 {
		r.t.Fatalf("PutSettings (replace at 1): %d, %v; want version 2", v, err)
	}
	r.h.Advance(rateFree)
	p, err := r.h.Store.Poll(r.ctx, r.room, refOf(w), offered(l, 1, "")) // (1, 1): version 1's
	if err != nil {
		r.t.Fatal(err)
	}
	r.wantAdmitted("the waiter under version 2 (capacity 3)", p)
	r.wantSettings("the poll of a caller at version 1", p.Settings, 2, `{"v":2}`)
	if p.Settings != nil && p.Settings.Limits.Refresh != 0 && p.Settings.Limits.Refresh != mine.Refresh {
		r.t.Errorf("the poll's stored refresh interval %v, want %v", p.Settings.Limits.Refresh, mine.Refresh)
	}
	st, err := r.h.Store.Stats(r.ctx, r.room, offered(l, 1, ""))
	if err != nil {
		r.t.Fatal(err)
	}
	r.wantSettings("Stats of a caller at version 1", st.Settings, 2, `{"v":2}`)
	if v, err := c.PutSettings(r.ctx, r.room, admission.Settings{Limits: l, Doc: []byte(`{"v":3}`)}, store.AnyVersion, who); err != nil || v != 3 {
		r.t.Fatalf("PutSettings (any version): %d, %v; want version 3", v, err)
	}
}

// Overwrite: a deploy's code replaces what was stored.
func testSettingsOverwrite(r *roomTest) {
	r.control()
	a, b := limits(), limits()
	a.Capacity, a.PerMinute = 1, 1
	r.wantSettings("seed", r.join(offered(a, 0, `{"a":1}`)).Settings, 1, `{"a":1}`)
	ob := offered(b, 0, `{"b":1}`)
	ob.Offer.Overwrite = true
	res := r.join(ob)
	r.wantAdmitted("the overwriting caller's join (capacity 3)", res)
	r.wantSettings("the overwriting caller's join", res.Settings, 2, `{"b":1}`)
	res, err := r.h.Store.Join(r.ctx, r.room, offered(a, 1, "")) // a's limits: version 1's
	if err != nil {
		r.t.Fatal(err)
	}
	r.wantSettings("a caller still at version 1", res.Settings, 2, `{"b":1}`)
	r.wantAdmitted("a caller still at version 1 (capacity 3)", res)
}

// The trail is bounded, newest first, and a deletion unlists the room.
func testSettingsTrail(r *roomTest) {
	c := r.control()
	l := limits()
	gen0, err := c.Generation(r.ctx)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := c.DeleteSettings(r.ctx, r.room, store.AnyVersion, store.Change{By: "ops", What: "delete"}); !errors.Is(err, store.ErrVersion) {
		r.t.Fatalf("DeleteSettings of a room without settings: %v, want ErrVersion", err)
	}
	n := store.MaxChanges + 5
	for i := 1; i <= n; i++ {
		doc := fmt.Sprintf(`{"n":%d}`, i)
		if v, err := c.PutSettings(r.ctx, r.room, admission.Settings{Limits: l, Doc: []byte(doc)}, int64(i-1), store.Change{By: "ops", What: "patch"}); err != nil || v != int64(i) {
			r.t.Fatalf("PutSettings %d: %d, %v", i, v, err)
		}
	}
	gen, rooms, err := c.ListRooms(r.ctx)
	if err != nil || rooms[r.room] != int64(n) || gen == gen0 {
		r.t.Fatalf("ListRooms: gen %d (was %d), room at %d, %v; want listed at %d and a new generation", gen, gen0, rooms[r.room], err, n)
	}
	if err := c.Touch(r.ctx, []string{r.room}); err != nil {
		r.t.Fatal(err)
	}
	r.h.Advance(time.Second)
	if err := c.DeleteSettings(r.ctx, r.room, int64(n-1), store.Change{By: "ops", What: "delete"}); !errors.Is(err, store.ErrVersion) {
		r.t.Fatalf("DeleteSettings at a stale version: %v, want ErrVersion", err)
	}
	if err := c.DeleteSettings(r.ctx, r.room, int64(n), store.Change{By: "ops", What: "delete"}); err != nil {
		r.t.Fatal(err)
	}
	if s, err := c.Settings(r.ctx, r.room); err != nil || s != nil {
		r.t.Fatalf("Settings after the deletion: %+v, %v; want none", s, err)
	}
	gen2, rooms, err := c.ListRooms(r.ctx)
	if _, listed := rooms[r.room]; err != nil || listed || gen2 == gen {
		r.t.Fatalf("ListRooms after the deletion: listed %v, gen %d (was %d), %v", listed, gen2, gen, err)
	}
	if g, err := c.Generation(r.ctx); err != nil || g != gen2 {
		r.t.Fatalf("Generation %d, %v; ListRooms said %d", g, err, gen2)
	}
	trail, err := c.Changes(r.ctx, r.room)
	if err != nil || len(trail) != store.MaxChanges {
		r.t.Fatalf("Changes: %d entries, %v; want %d", len(trail), err, store.MaxChanges)
	}
	if d := trail[0]; d.Version != 0 || d.Previous != int64(n) || d.What != "delete" || d.By != "ops" || string(d.Prior) != fmt.Sprintf(`{"n":%d}`, n) {
		r.t.Errorf("the newest change: %+v, want the deletion of version %d", d, n)
	}
	if !sameMs(trail[0].At, r.h.Now()) {
		r.t.Errorf("the deletion's time %s, want the store's %s", ts(trail[0].At), ts(r.h.Now()))
	}
	for i, ch := range trail[1:] {
		want := int64(n - i)
		if ch.Version != want || ch.Previous != want-1 || ch.What != "patch" || string(ch.Prior) != fmt.Sprintf(`{"n":%d}`, want-1) {
			r.t.Fatalf("change %d: %+v, want version %d after %d", i+1, ch, want, want-1)
		}
	}
}

// control is f's current store as a store.Control (errors.ErrUnsupported if it is not one).
func (f *Forgetful) control() (store.Control, error) {
	if c, ok := f.store().(store.Control); ok {
		return c, nil
	}
	return nil, errors.ErrUnsupported
}

// Settings implements store.Control when the store it wraps does.
func (f *Forgetful) Settings(ctx context.Context, room string) (*admission.Settings, error) {
	c, err := f.control()
	if err != nil {
		return nil, err
	}
	return c.Settings(ctx, room)
}

// PutSettings implements store.Control when the store it wraps does.
func (f *Forgetful) PutSettings(ctx context.Context, room string, s admission.Settings, ifVersion int64, ch store.Change) (int64, error) {
	c, err := f.control()
	if err != nil {
		return 0, err
	}
	return c.PutSettings(ctx, room, s, ifVersion, ch)
}

// DeleteSettings implements store.Control when the store it wraps does.
func (f *Forgetful) DeleteSettings(ctx context.Context, room string, ifVersion int64, ch store.Change) error {
	c, err := f.control()
	if err != nil {
		return err
	}
	return c.DeleteSettings(ctx, room, ifVersion, ch)
}

// Changes implements store.Control when the store it wraps does.
func (f *Forgetful) Changes(ctx context.Context, room string) ([]store.Change, error) {
	c, err := f.control()
	if err != nil {
		return nil, err
	}
	return c.Changes(ctx, room)
}

// ListRooms implements store.Control when the store it wraps does.
func (f *Forgetful) ListRooms(ctx context.Context) (int64, map[string]int64, error) {
	c, err := f.control()
	if err != nil {
		return 0, nil, err
	}
	return c.ListRooms(ctx)
}

// Generation implements store.Control when the store it wraps does.
func (f *Forgetful) Generation(ctx context.Context) (int64, error) {
	c, err := f.control()
	if err != nil {
		return 0, err
	}
	return c.Generation(ctx)
}

// RoomKeys implements store.Control when the store it wraps does.
func (f *Forgetful) RoomKeys(ctx context.Context, room string, k store.Keys, replace bool) (store.Keys, error) {
	c, err := f.control()
	if err != nil {
		return store.Keys{}, err
	}
	return c.RoomKeys(ctx, room, k, replace)
}

// Revoke implements store.Control when the store it wraps does.
func (f *Forgetful) Revoke(ctx context.Context, room string, ref store.Ref, until time.Time) error {
	c, err := f.control()
	if err != nil {
		return err
	}
	return c.Revoke(ctx, room, ref, until)
}

// Revocations implements store.Control when the store it wraps does.
func (f *Forgetful) Revocations(ctx context.Context, cursor string) ([]store.Revocation, string, error) {
	c, err := f.control()
	if err != nil {
		return nil, cursor, err
	}
	return c.Revocations(ctx, cursor)
}

// Touch implements store.Control when the store it wraps does.
func (f *Forgetful) Touch(ctx context.Context, rooms []string) error {
	c, err := f.control()
	if err != nil {
		return err
	}
	return c.Touch(ctx, rooms)
}

// Record implements store.History when the store it wraps does.
func (f *Forgetful) Record(ctx context.Context, room string, m store.Minute) error {
	h, ok := f.store().(store.History)
	if !ok {
		return errors.ErrUnsupported
	}
	return h.Record(ctx, room, m)
}

// Minutes implements store.History when the store it wraps does.
func (f *Forgetful) Minutes(ctx context.Context, room string, from, to time.Time) ([]store.Minute, error) {
	h, ok := f.store().(store.History)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return h.Minutes(ctx, room, from, to)
}

// History: minutes recorded by several instances merge; a range reads what was recorded.
func testHistory(r *roomTest) {
	h, ok := r.h.Store.(store.History)
	if f, wraps := r.h.Store.(*Forgetful); wraps {
		_, ok = f.store().(store.History)
	}
	if !ok {
		r.t.Skip("the store does not implement store.History")
	}
	t0 := r.h.Now().Truncate(time.Minute)
	a := store.Minute{Start: t0.Add(10 * time.Second), Joins: 5, Admissions: 2, PeakWaiting: 7, PeakActive: 3,
		Waiting: 4, WaitingAt: t0.Add(50 * time.Second), LongestWait: 90 * time.Second}
	a.Waits[0], a.Waits[5] = 1, 1
	b := store.Minute{Start: t0, Joins: 1, Admissions: 1, PeakWaiting: 9, PeakActive: 1,
		Waiting: 6, WaitingAt: t0.Add(55 * time.Second), LongestWait: 30 * time.Second}
	b.Waits[5] = 2
	later := store.Minute{Start: t0.Add(2 * time.Minute), Joins: 3}
	for _, m := range []store.Minute{a, b, later} {
		if err := h.Record(r.ctx, r.room, m); err != nil {
			r.t.Fatal(err)
		}
	}
	got, err := h.Minutes(r.ctx, r.room, t0.Add(-time.Hour), t0.Add(time.Hour))
	if err != nil {
		r.t.Fatal(err)
	}
	want := store.Minute{Start: t0, Joins: 6, Admissions: 3, PeakWaiting: 9, PeakActive: 3,
		Waiting: 6, WaitingAt: t0.Add(55 * time.Second), LongestWait: 90 * time.Second}
	want.Waits[0], want.Waits[5] = 1, 3
	if len(got) != 2 || !sameMinute(got[0], want) || got[1].Joins != 3 || !got[1].Start.Equal(t0.Add(2*time.Minute)) {
		r.t.Fatalf("Minutes: %+v\nwant %+v and a later minute with 3 joins", got, want)
	}
	if got, err := h.Minutes(r.ctx, r.room, t0.Add(time.Minute), t0.Add(time.Hour)); err != nil || len(got) != 1 {
		r.t.Errorf("Minutes from the next minute on: %+v, %v; want the later one", got, err)
	}
}

func sameMinute(a, b store.Minute) bool {
	return a.Start.Equal(b.Start) && a.WaitingAt.Equal(b.WaitingAt) && a.Joins == b.Joins &&
		a.Admissions == b.Admissions && a.PeakWaiting == b.PeakWaiting && a.PeakActive == b.PeakActive &&
		a.Waiting == b.Waiting && a.LongestWait == b.LongestWait && a.Waits == b.Waits
}

// Versions go on rising after a deletion: a room created again is not mistaken for the
// one an instance (or an operator's ETag) knew.
func testSettingsAfterDeletion(r *roomTest) {
	c := r.control()
	l := limits()
	who := store.Change{By: "ops", What: "create"}
	for i := 1; i <= 3; i++ {
		if _, err := c.PutSettings(r.ctx, r.room, admission.Settings{Limits: l, Doc: []byte(`{}`)}, store.AnyVersion, who); err != nil {
			r.t.Fatal(err)
		}
	}
	if err := c.DeleteSettings(r.ctx, r.room, 3, store.Change{By: "ops", What: "delete"}); err != nil {
		r.t.Fatal(err)
	}
	if _, err := c.PutSettings(r.ctx, r.room, admission.Settings{Limits: l, Doc: []byte(`{}`)}, 1, who); !errors.Is(err, store.ErrVersion) {
		r.t.Errorf("PutSettings if at version 1 after the deletion: %v, want ErrVersion", err)
	}
	if v, err := c.PutSettings(r.ctx, r.room, admission.Settings{Limits: l, Doc: []byte(`{"again":1}`)}, 0, who); err != nil || v != 4 {
		r.t.Fatalf("PutSettings creating the room again: version %d, %v; want 4", v, err)
	}
	if err := c.DeleteSettings(r.ctx, r.room, 4, store.Change{By: "ops", What: "delete"}); err != nil {
		r.t.Fatal(err)
	}
	// Seeded again by a Room's code: version 5.
	res := r.join(offered(l, 0, `{"seed":1}`))
	r.wantSettings("a seed after the deletion", res.Settings, 5, `{"seed":1}`)
}

// The first instance's key fingerprints stay until replaced.
func testRoomKeys(r *roomTest) {
	c := r.control()
	a := store.Keys{Signer: "k1", Prints: map[string]string{"k1": "aaaa"}}
	b := store.Keys{Signer: "k2", Prints: map[string]string{"k1": "aaaa", "k2": "bbbb"}}
	if got, err := c.RoomKeys(r.ctx, r.room, a, false); err != nil || got.Signer != "k1" || got.Prints["k1"] != "aaaa" {
		r.t.Fatalf("the first instance's keys: %+v, %v", got, err)
	}
	if got, err := c.RoomKeys(r.ctx, r.room, b, false); err != nil || got.Signer != "k1" || len(got.Prints) != 1 {
		r.t.Fatalf("a second instance's keys: %+v, %v; want the first's back", got, err)
	}
	if got, err := c.RoomKeys(r.ctx, r.room, b, true); err != nil || got.Signer != "k2" || got.Prints["k2"] != "bbbb" {
		r.t.Fatalf("replaced: %+v, %v", got, err)
	}
	if s, err := c.Settings(r.ctx, r.room); err != nil || s != nil {
		r.t.Errorf("keys make no settings: %+v, %v", s, err)
	}
}

// The revocation log: what was revoked after a cursor, in order, once.
func testRevocations(r *roomTest) {
	c := r.control()
	_, cur, err := c.Revocations(r.ctx, "")
	if err != nil {
		r.t.Fatal(err)
	}
	// Other rooms of a shared store may add their own: look at this room's only.
	mine := func(rs []store.Revocation) []store.Revocation {
		var out []store.Revocation
		for _, x := range rs {
			if x.Room == r.room {
				out = append(out, x)
			}
		}
		return out
	}
	// From the cursor the log gave: nothing recorded before it comes back.
	until := r.h.Now().Add(time.Minute).Truncate(time.Millisecond)
	for n := int64(1); n <= 3; n++ {
		if err := c.Revoke(r.ctx, r.room, store.Ref{Epoch: 7, Number: n}, until); err != nil {
			r.t.Fatal(err)
		}
	}
	got, next, err := c.Revocations(r.ctx, cur)
	got = mine(got)
	if err != nil || len(got) != 3 || got[0].Session.Number != 1 || got[2].Session != (store.Ref{Epoch: 7, Number: 3}) || !got[1].Until.Equal(until) {
		r.t.Fatalf("Revocations: %+v, %v", got, err)
	}
	if again, _, err := c.Revocations(r.ctx, next); err != nil || len(mine(again)) != 0 {
		r.t.Errorf("from the next cursor: %+v, %v; want nothing new", again, err)
	}
}
