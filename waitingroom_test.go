package waitingroom_test

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/estimate"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/memory"
	"github.com/waitingroom-go/waitingroom/store/storetest"
	"github.com/waitingroom-go/waitingroom/token"
)

func TestConfigValidation(t *testing.T) {
	ok := waitingroom.Config{TotalActiveUsers: 10, NewUsersPerMinute: 5}
	tests := []struct {
		name string
		f    func(*waitingroom.Config)
		want string // in the error; "" for valid
	}{
		{"valid", func(*waitingroom.Config) {}, ""},
		{"zero capacity", func(c *waitingroom.Config) { c.TotalActiveUsers = 0 }, "TotalActiveUsers"},
		{"negative rate", func(c *waitingroom.Config) { c.NewUsersPerMinute = -1 }, "NewUsersPerMinute"},
		{"rate above capacity", func(c *waitingroom.Config) { c.NewUsersPerMinute = 11 }, "exceeds TotalActiveUsers"},
		{"rate above capacity, allowed", func(c *waitingroom.Config) { c.NewUsersPerMinute = 11; c.AllowRateAboveCapacity = true }, ""},
		{"session too short", func(c *waitingroom.Config) { c.SessionDuration = time.Second }, "SessionDuration"},
		{"session too long", func(c *waitingroom.Config) { c.SessionDuration = 25 * time.Hour }, "SessionDuration"},
		{"refresh too fast", func(c *waitingroom.Config) { c.RefreshInterval = time.Millisecond }, "RefreshInterval"},
		{"hold shorter than two refreshes", func(c *waitingroom.Config) { c.QueueHold = 30 * time.Second }, "QueueHold"},
		{"grace shorter than a refresh", func(c *waitingroom.Config) { c.ArrivalGrace = 5 * time.Second }, "ArrivalGrace"},
		{"grace longer than the hold", func(c *waitingroom.Config) { c.ArrivalGrace = time.Hour }, "ArrivalGrace"},
		{"renewal slower than the session", func(c *waitingroom.Config) { c.RenewInterval = time.Hour }, "RenewInterval"},
		{"status 500", func(c *waitingroom.Config) { c.QueueingStatusCode = 500 }, "QueueingStatusCode"},
		{"status 429", func(c *waitingroom.Config) { c.QueueingStatusCode = 429 }, ""},
		{"random", func(c *waitingroom.Config) { c.QueueingMethod = waitingroom.Random }, ""},
		{"unknown method", func(c *waitingroom.Config) { c.QueueingMethod = 7 }, "QueueingMethod"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.f(&c)
			_, err := waitingroom.New("r", memory.New(), c)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tt.want != "" && (!errors.Is(err, waitingroom.ErrConfig) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("New: %v, want ErrConfig mentioning %q", err, tt.want)
			}
		})
	}
	for _, id := range []string{"", "a b", "a/b", strings.Repeat("x", 65)} {
		if _, err := waitingroom.New(id, memory.New(), ok); !errors.Is(err, waitingroom.ErrInvalidRoom) {
			t.Errorf("New(%q): %v, want ErrInvalidRoom", id, err)
		}
	}
	if _, err := waitingroom.New("r", nil, ok); !errors.Is(err, waitingroom.ErrConfig) {
		t.Errorf("nil store: %v", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	r, err := waitingroom.New("r", memory.New(), waitingroom.Config{TotalActiveUsers: 10, NewUsersPerMinute: 5})
	if err != nil {
		t.Fatal(err)
	}
	c := r.Config()
	want := waitingroom.Config{
		TotalActiveUsers: 10, NewUsersPerMinute: 5, SessionDuration: 5 * time.Minute,
		RenewInterval: time.Minute, RefreshInterval: 20 * time.Second, QueueingStatusCode: 200,
		QueueHold: 5 * time.Minute, ArrivalGrace: 40 * time.Second,
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", c, want)
	}
	if err := r.SetConfig(waitingroom.Config{}); !errors.Is(err, waitingroom.ErrConfig) {
		t.Fatalf("SetConfig accepted a zero config: %v", err)
	}
	if !reflect.DeepEqual(r.Config(), want) {
		t.Fatal("a refused SetConfig changed the config")
	}
}

// fixture is a room on a counting memory store, with the app's clock apart from the store's.
type fixture struct {
	room   *waitingroom.Room
	store  *countingStore
	clock  *storetest.Clock // the store's clock
	skew   time.Duration
	appNow func() time.Time
}

func newFixture(t *testing.T, cfg waitingroom.Config, skew time.Duration) *fixture {
	t.Helper()
	f := &fixture{clock: newSimClock(), skew: skew}
	f.store = newCountingStore(memory.New(memory.WithClock(f.clock.Now)))
	f.appNow = func() time.Time { return f.clock.Now().Add(skew) }
	r, err := waitingroom.New("room", f.store, cfg, waitingroom.WithClock(f.appNow), simStoreTimeout)
	if err != nil {
		t.Fatal(err)
	}
	f.room = r
	return f
}

func (f *fixture) enter(t *testing.T, raw string) (waitingroom.Visit, map[string]int) {
	t.Helper()
	f.store.take()
	v, err := f.room.Enter(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	return v, f.store.take()
}

func calls(m map[string]int) int {
	n := 0
	for v := range maps.Values(m) {
		n += v
	}
	return n
}

func TestRoundTripsAndRenewal(t *testing.T) {
	for _, skew := range []time.Duration{0, 30 * time.Second, -30 * time.Second} {
		t.Run("app clock off by "+skew.String(), func(t *testing.T) {
			f := newFixture(t, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1, SessionDuration: 5 * time.Minute}, skew)
			a, c := f.enter(t, "")
			if a.Outcome != waitingroom.Admitted || c["join"] != 1 || calls(c) != 1 {
				t.Fatalf("first visitor: %v after %v", a.Outcome, c)
			}
			b, c := f.enter(t, "")
			if b.Outcome != waitingroom.Waiting || calls(c) != 1 {
				t.Fatalf("second visitor: %v after %v", b.Outcome, c)
			}
			// Admitted requests cost nothing until the renewal is due, then one renewal.
			f.clock.Advance(59 * time.Second)
			if v, c := f.enter(t, a.Token); v.Outcome != waitingroom.Admitted || v.Token != "" || calls(c) != 0 {
				t.Fatalf("admitted request before renewal: %v, token %q, calls %v", v.Outcome, v.Token, c)
			}
			f.clock.Advance(2 * time.Second)
			v, c := f.enter(t, a.Token)
			if v.Outcome != waitingroom.Admitted || v.Token == "" || c["renew"] != 1 || calls(c) != 1 {
				t.Fatalf("renewal: %v, calls %v", v.Outcome, c)
			}
			if want := f.clock.Now().Add(5 * time.Minute).Truncate(time.Second); !v.Pass.Expires.Equal(want) {
				t.Fatalf("renewed to %v, want %v", v.Pass.Expires, want)
			}
			a = v
			// The waiter's early polls are answered from the ticket (the clock is the store's,
			// whatever the app's says), the first one due goes to the store.
			if w, c := f.enter(t, b.Token); w.Outcome != waitingroom.Waiting || calls(c) != 1 {
				t.Fatalf("poll after 61 s: %v, calls %v", w.Outcome, c)
			} else {
				b = w
			}
			f.clock.Advance(17 * time.Second)
			if w, c := f.enter(t, b.Token); w.Outcome != waitingroom.Waiting || w.Token != "" || calls(c) != 0 || !w.Status.LastUpdated.Equal(b.Status.LastUpdated) {
				t.Fatalf("early poll: %v, token %q, calls %v", w.Outcome, w.Token, c)
			}
			f.clock.Advance(2 * time.Second)
			if w, c := f.enter(t, b.Token); calls(c) != 1 || w.Token == "" {
				t.Fatalf("poll after 19 s of 20: calls %v", c)
			}
			// Releasing the pass frees the slot; the pass is then refused at its renewal.
			if err := f.room.Release(context.Background(), a.Pass); err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(time.Minute)
			if v, c := f.enter(t, a.Token); v.Outcome == waitingroom.Admitted && v.Pass.Session == a.Pass.Session {
				t.Fatalf("a released pass was renewed (calls %v)", c)
			}
		})
	}
}

func TestDisableSessionRenewal(t *testing.T) {
	f := newFixture(t, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1, SessionDuration: 2 * time.Minute, DisableSessionRenewal: true}, 0)
	a, _ := f.enter(t, "")
	for range 11 {
		f.clock.Advance(10 * time.Second)
		if v, c := f.enter(t, a.Token); v.Outcome != waitingroom.Admitted || calls(c) != 0 {
			t.Fatalf("within the session: %v, calls %v", v.Outcome, c)
		}
	}
	f.clock.Advance(10 * time.Second) // exactly one session length after admission
	v, c := f.enter(t, a.Token)
	if c["join"] != 1 || v.Pass.Session == a.Pass.Session {
		t.Fatalf("after the session: %v, calls %v; want a new visit", v.Outcome, c)
	}
}

// TestMaxSessionDuration renews a session by requests every 30 s: renewals stop once one
// would carry it past MaxSessionDuration from admission, so it ends by then, and it cannot
// be revived (the middleware's post grace) either.
func TestMaxSessionDuration(t *testing.T) {
	f := newFixture(t, waitingroom.Config{TotalActiveUsers: 2, NewUsersPerMinute: 2, SessionDuration: 2 * time.Minute,
		RenewInterval: 30 * time.Second, MaxSessionDuration: 5 * time.Minute}, 0)
	a, _ := f.enter(t, "")
	admitted := f.clock.Now()
	last := a
	for f.clock.Now().Sub(admitted) < 10*time.Minute {
		f.clock.Advance(30 * time.Second)
		v, _ := f.enter(t, last.Token)
		if v.Outcome != waitingroom.Admitted || v.Pass.Session != a.Pass.Session {
			break
		}
		if !v.Pass.Admitted.Equal(admitted.Truncate(time.Millisecond)) {
			t.Fatalf("renewed pass: admitted %v, want %v", v.Pass.Admitted, admitted)
		}
		if end := v.Pass.Expires.Sub(admitted); end > 5*time.Minute {
			t.Fatalf("renewed to %v after admission, past MaxSessionDuration", end)
		}
		// Final once a renewal would carry the session past the limit, and only then.
		if past := f.clock.Now().Add(2 * time.Minute).After(admitted.Add(5 * time.Minute)); v.Final != past {
			t.Fatalf("%v after admission: Final %t, want %t", f.clock.Now().Sub(admitted), v.Final, past)
		}
		if v.Token != "" {
			last = v
		}
	}
	if d := f.clock.Now().Sub(admitted); d < 5*time.Minute-30*time.Second || d > 5*time.Minute+30*time.Second {
		t.Fatalf("the session ended %v after admission; want about MaxSessionDuration (5m)", d)
	}
	if v, err := f.room.Revive(context.Background(), last.Pass); err != nil || v.Outcome == waitingroom.Admitted {
		t.Fatalf("revived past MaxSessionDuration: %v, %v", v.Outcome, err)
	}

	// Without the limit the same requests keep the session for the ten minutes.
	g := newFixture(t, waitingroom.Config{TotalActiveUsers: 2, NewUsersPerMinute: 2, SessionDuration: 2 * time.Minute,
		RenewInterval: 30 * time.Second}, 0)
	b, _ := g.enter(t, "")
	for range 20 {
		g.clock.Advance(30 * time.Second)
		v, _ := g.enter(t, b.Token)
		if v.Outcome != waitingroom.Admitted || v.Pass.Session != b.Pass.Session || v.Final {
			t.Fatalf("without MaxSessionDuration the session ended after %v (Final %t)", g.clock.Now().Sub(admitted), v.Final)
		}
		if v.Token != "" {
			b = v
		}
	}
}

func TestBadTokensAreNoTicket(t *testing.T) {
	f := newFixture(t, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1}, 0)
	a, _ := f.enter(t, "")
	other, err := waitingroom.New("other", memory.New(), waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1}, simStoreTimeout)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.Enter(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for name, raw := range map[string]string{
		"junk":         "not a token",
		"foreign pass": foreign.Token,
		"tampered":     a.Token[:len(a.Token)-2] + "xx",
		"alg none":     "eyJhbGciOiJub25lIiwidHlwIjoid3ItcGFzcytqd3QifQ.eyJhdWQiOiJyb29tIiwic2lkIjoxfQ.",
		"oversized":    strings.Repeat("a", token.MaxSize+1),
	} {
		v, c := f.enter(t, raw)
		if v.Outcome != waitingroom.Waiting || c["join"] != 1 || v.Token == "" {
			t.Errorf("%s: %v after %v, want a new place in the queue", name, v.Outcome, c)
		}
	}
}

func TestStoreFailure(t *testing.T) {
	f := newFixture(t, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1, SessionDuration: time.Minute}, 0)
	a, _ := f.enter(t, "")
	boom := errors.New("connection refused")
	f.store.fail = boom
	if _, err := f.room.Enter(context.Background(), ""); !errors.Is(err, waitingroom.ErrStore) || !errors.Is(err, boom) {
		t.Fatalf("join on a failing store: %v", err)
	}
	// A valid pass keeps its holder in; the failed renewal is reported and tried again.
	f.clock.Advance(30 * time.Second)
	v, err := f.room.Enter(context.Background(), a.Token)
	if err != nil || v.Outcome != waitingroom.Admitted || !errors.Is(v.Degraded, boom) {
		t.Fatalf("renewal on a failing store: %v, %v, degraded %v", v.Outcome, err, v.Degraded)
	}
}

func TestQueueAllAndReject(t *testing.T) {
	f := newFixture(t, waitingroom.Config{TotalActiveUsers: 5, NewUsersPerMinute: 5, QueueAll: true}, 0)
	v, _ := f.enter(t, "")
	if v.Outcome != waitingroom.Waiting || v.Status.Wait.Known || v.Status.Wait.Reason != "queue all" || !v.Status.QueueAll {
		t.Fatalf("queue all: %v %+v", v.Outcome, v.Status)
	}
	cfg := f.room.Config()
	cfg.QueueAll, cfg.QueueingMethod = false, waitingroom.Reject
	if err := f.room.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	r, c := f.enter(t, v.Token)
	if r.Outcome != waitingroom.Rejected || r.Status.RefreshInterval != 0 || calls(c) != 0 ||
		r.Status.Wait.Known || r.Status.Wait.Reason != "the room admits nobody" {
		t.Fatalf("reject: %v %+v, calls %v", r.Outcome, r.Status, c)
	}
	cfg.QueueingMethod = waitingroom.FIFO
	f.room.SetConfig(cfg)
	if r, _ := f.enter(t, v.Token); r.Outcome != waitingroom.Admitted {
		t.Fatalf("back to fifo: %v, want the queued visitor in", r.Outcome)
	}
	cfg.Suspended = true
	f.room.SetConfig(cfg)
	if r, c := f.enter(t, ""); r.Outcome != waitingroom.Suspended || r.Token != "" || calls(c) != 0 {
		t.Fatalf("suspended: %v, calls %v", r.Outcome, c)
	}
}

// TestStoreLoss: the store forgets everything mid-queue (a Redis restart). The admitted keep
// going on their passes and are counted again when they renew; the waiting keep their order
// ahead of newcomers; nothing fails.
func TestStoreLoss(t *testing.T) {
	clock := newSimClock()
	forgetful := storetest.NewForgetful(func() store.Store { return memory.New(memory.WithClock(clock.Now)) })
	cs := newCountingStore(forgetful)
	room, err := waitingroom.New("room", cs, waitingroom.Config{
		TotalActiveUsers: 2, NewUsersPerMinute: 2, SessionDuration: 10 * time.Minute,
	}, waitingroom.WithClock(clock.Now), simStoreTimeout)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{room: room, store: cs, clock: clock}
	a, _ := f.enter(t, "")
	b, _ := f.enter(t, "")
	c, _ := f.enter(t, "")
	d, _ := f.enter(t, "")
	if a.Outcome != waitingroom.Admitted || b.Outcome != waitingroom.Admitted || c.Outcome != waitingroom.Waiting || d.Outcome != waitingroom.Waiting {
		t.Fatalf("setup: %v %v %v %v", a.Outcome, b.Outcome, c.Outcome, d.Outcome)
	}
	clock.Advance(20 * time.Second)
	c, _ = f.enter(t, c.Token)
	d, _ = f.enter(t, d.Token)

	forgetful.Forget()
	clock.Advance(time.Second)

	// A newcomer first: the room notices the loss and queues everyone until recovery ends.
	e, _ := f.enter(t, "")
	if e.Outcome != waitingroom.Waiting {
		t.Fatalf("newcomer right after the loss: %v", e.Outcome)
	}
	// The admitted keep going without the store, then renew and are counted again.
	if v, calls := f.enter(t, a.Token); v.Outcome != waitingroom.Admitted || len(calls) != 0 {
		t.Fatalf("admitted visitor after the loss: %v, calls %v", v.Outcome, calls)
	}
	clock.Advance(19 * time.Second)
	for _, w := range []*waitingroom.Visit{&d, &c} { // back in any order
		v, _ := f.enter(t, w.Token)
		if v.Outcome != waitingroom.Waiting {
			t.Fatalf("waiter after the loss: %v", v.Outcome)
		}
		*w = v
	}
	clock.Advance(20 * time.Second)
	d, _ = f.enter(t, d.Token)
	if c.Status.UsersAhead != 0 || d.Status.UsersAhead != 1 {
		t.Fatalf("old waiters ahead: c %d, d %d, want 0 and 1", c.Status.UsersAhead, d.Status.UsersAhead)
	}
	clock.Advance(25 * time.Second) // past RenewInterval: a renews and is counted again
	if v, calls := f.enter(t, a.Token); v.Outcome != waitingroom.Admitted || calls["renew"] != 1 {
		t.Fatalf("renewal after the loss: %v, calls %v", v.Outcome, calls)
	}
	// b never came back; after recovery one slot is free: c, then d, then the newcomer.
	clock.Advance(20 * time.Second)
	if v, _ := f.enter(t, e.Token); v.Outcome != waitingroom.Waiting || v.Status.UsersAhead != 1 {
		t.Fatalf("newcomer after recovery: %v, %d ahead; want behind d", v.Outcome, v.Status.UsersAhead)
	}
	if v, _ := f.enter(t, c.Token); v.Outcome != waitingroom.Admitted {
		t.Fatalf("c after recovery: %v, want admitted first", v.Outcome)
	}
	if v, _ := f.enter(t, d.Token); v.Outcome != waitingroom.Waiting {
		t.Fatalf("d: %v, want waiting (capacity 2: a and c)", v.Outcome)
	}
}

// TestStoreLossKeepsTheRate: the passes that come back after a loss carry their admission
// times, and the store counts those of the last minute again, so admission after recovery
// does not go past the rate over the minute that spans the loss (issue 13, item 15: 163
// admissions in 60 s against a rate of 100, before).
func TestStoreLossKeepsTheRate(t *testing.T) {
	clock := newSimClock()
	forgetful := storetest.NewForgetful(func() store.Store { return memory.New(memory.WithClock(clock.Now)) })
	room, err := waitingroom.New("room", forgetful, waitingroom.Config{
		TotalActiveUsers: 10, NewUsersPerMinute: 3, SessionDuration: 10 * time.Minute,
		RenewInterval: 10 * time.Second, RefreshInterval: 5 * time.Second,
	}, waitingroom.WithClock(clock.Now), simStoreTimeout)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{room: room, store: newCountingStore(forgetful), clock: clock}
	var in []waitingroom.Visit
	for range 3 {
		v, _ := f.enter(t, "")
		if v.Outcome != waitingroom.Admitted {
			t.Fatalf("setup: %v", v.Outcome)
		}
		in = append(in, v)
	}
	forgetful.Forget()
	clock.Advance(11 * time.Second) // past RenewInterval: each renews with the lost store
	for i, v := range in {
		if w, _ := f.enter(t, v.Token); w.Outcome != waitingroom.Admitted {
			t.Fatalf("admitted %d after the loss: %v", i, w.Outcome)
		}
	}
	clock.Advance(16 * time.Second) // recovery (RenewInterval + RefreshInterval) is over
	n, _ := f.enter(t, "")
	if n.Outcome != waitingroom.Waiting {
		t.Fatalf("a newcomer after recovery, with the rate spent 27 s ago: %v, want waiting", n.Outcome)
	}
	admittedAt := time.Duration(0)
	for at := time.Duration(0); at < 2*time.Minute && admittedAt == 0; at += time.Second {
		clock.Advance(time.Second)
		v, _ := f.enter(t, n.Token)
		switch {
		case v.Outcome == waitingroom.Admitted:
			admittedAt = 27*time.Second + at + time.Second
		case v.Token != "": // (an early poll keeps the ticket it brought)
			n = v
		}
	}
	// The three came back 11 s after they were admitted and count until 71 s.
	if admittedAt < 71*time.Second || admittedAt > 73*time.Second {
		t.Errorf("the newcomer was admitted %v after the first three, want 71-73 s (the rate window they hold, counted from their return)", admittedAt)
	}
}

// Without TypicalSession the room has no basis for a wait until it has watched people go
// in; with it, the settings give one from the first visitor.
func TestWaitKnownOnlyWithABasis(t *testing.T) {
	for _, typical := range []time.Duration{0, 2 * time.Minute} {
		f := newFixture(t, waitingroom.Config{TotalActiveUsers: 2, NewUsersPerMinute: 2, TypicalSession: typical}, 0)
		f.enter(t, "")
		f.enter(t, "")
		v, _ := f.enter(t, "")
		if v.Outcome != waitingroom.Waiting {
			t.Fatalf("third visitor: %v", v.Outcome)
		}
		switch {
		case typical == 0 && (v.Status.Wait.Known || v.Status.Wait.Reason == ""):
			t.Errorf("no typical session, nothing observed: %+v, want unknown with a reason", v.Status.Wait)
		case typical > 0 && !v.Status.Wait.Known:
			t.Errorf("typical session %v: wait unknown (%s)", typical, v.Status.Wait.Reason)
		case typical > 0:
			// 2 places turning over every 2m10s: about a minute for the one ahead.
			if p := v.Status.Wait.P50; p < 40*time.Second || p > 90*time.Second {
				t.Errorf("typical session %v: P50 %v, want about a minute", typical, p)
			}
		}
	}
}

// BeforeJoin runs only when Enter would take a new place, and a refusal costs no store call.
func TestBeforeJoin(t *testing.T) {
	f := newFixture(t, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1}, 0)
	asked := 0
	allow := true
	refusal := errors.New("not now")
	hook := waitingroom.BeforeJoin(func() error {
		asked++
		if allow {
			return nil
		}
		return refusal
	})
	enter := func(raw string) (waitingroom.Visit, map[string]int) {
		t.Helper()
		f.store.take()
		v, err := f.room.Enter(context.Background(), raw, hook)
		if err != nil {
			t.Fatal(err)
		}
		return v, f.store.take()
	}
	a, _ := enter("")
	if a.Outcome != waitingroom.Admitted || asked != 1 {
		t.Fatalf("first join: %v, asked %d", a.Outcome, asked)
	}
	if v, _ := enter(a.Token); v.Outcome != waitingroom.Admitted || asked != 1 {
		t.Fatalf("pass holder: %v, asked %d; want admitted without asking", v.Outcome, asked)
	}
	allow = false
	if v, c := enter(""); v.Outcome != waitingroom.Refused || v.Refusal != refusal || v.Token != "" || calls(c) != 0 || asked != 2 {
		t.Fatalf("refused join: %v (%v), token %q, calls %v, asked %d", v.Outcome, v.Refusal, v.Token, c, asked)
	}
	cfg := f.room.Config()
	cfg.QueueingMethod = waitingroom.Reject
	f.room.SetConfig(cfg)
	if v, _ := enter(""); v.Outcome != waitingroom.Rejected || asked != 2 {
		t.Fatalf("rejecting room: %v, asked %d; the hook is not for rooms that take no places", v.Outcome, asked)
	}
}

func TestAskBeforeJoin(t *testing.T) {
	f := newFixture(t, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1}, 0)
	ask := waitingroom.AskBeforeJoin()
	enter := func(raw string, opts ...waitingroom.EnterOption) (waitingroom.Visit, map[string]int) {
		t.Helper()
		f.store.take()
		v, err := f.room.Enter(context.Background(), raw, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return v, f.store.take()
	}
	if v, c := enter("", ask); v.Outcome != waitingroom.Joining || v.Token != "" || calls(c) != 0 {
		t.Fatalf("newcomer: %v, token %q, calls %v; want Joining, no token, no store call", v.Outcome, v.Token, c)
	}
	if v, c := enter("junk", ask); v.Outcome != waitingroom.Joining || calls(c) != 0 {
		t.Fatalf("invalid token: %v, calls %v; want Joining and no store call", v.Outcome, c)
	}
	a, _ := enter("")
	if a.Outcome != waitingroom.Admitted {
		t.Fatalf("join: %v", a.Outcome)
	}
	if v, _ := enter(a.Token, ask); v.Outcome != waitingroom.Admitted {
		t.Fatalf("pass holder asked first: %v; want admitted", v.Outcome)
	}
	w, _ := enter("")
	if w.Outcome != waitingroom.Waiting {
		t.Fatalf("second join: %v; want waiting", w.Outcome)
	}
	if v, _ := enter(w.Token, ask); v.Outcome != waitingroom.Waiting {
		t.Fatalf("ticket holder asked first: %v; want waiting", v.Outcome)
	}
	cfg := f.room.Config()
	cfg.QueueingMethod = waitingroom.Reject
	f.room.SetConfig(cfg)
	if v, _ := enter("", ask); v.Outcome != waitingroom.Rejected {
		t.Fatalf("rejecting room: %v; want Rejected, not Joining (no place to ask about)", v.Outcome)
	}
}

func TestCodecAndKeyOptions(t *testing.T) {
	ok := waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1}
	if _, err := waitingroom.New("r", memory.New(), ok, waitingroom.WithKeys()); !errors.Is(err, waitingroom.ErrConfig) || !errors.Is(err, token.ErrNoKeys) {
		t.Fatalf("WithKeys(): %v, want ErrConfig and token.ErrNoKeys", err)
	}
	key, err := token.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	codec, err := token.NewCodec([]token.HMACKey{key})
	if err != nil {
		t.Fatal(err)
	}
	other, err := token.GenerateKey("k2")
	if err != nil {
		t.Fatal(err)
	}
	// WithCodec wins over WithKeys in either order.
	for _, opts := range [][]waitingroom.Option{
		{waitingroom.WithCodec(codec), waitingroom.WithKeys(other)},
		{waitingroom.WithKeys(other), waitingroom.WithCodec(codec)},
	} {
		r, err := waitingroom.New("r", memory.New(), ok, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if r.Codec() != codec {
			t.Error("WithKeys replaced the codec given by WithCodec")
		}
	}
}

// TestRenewalOncePerSession: requests carrying the same due pass (a page and its assets,
// or a client that drops cookies) cost one renewal between them, and a failed renewal is
// not retried on every request.
func TestRenewalOncePerSession(t *testing.T) {
	f := newFixture(t, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1, SessionDuration: 5 * time.Minute}, 0)
	a, _ := f.enter(t, "")
	f.clock.Advance(61 * time.Second) // the renewal is due
	f.store.take()
	var wg sync.WaitGroup
	visits := make([]waitingroom.Visit, 10)
	for i := range visits {
		wg.Go(func() {
			v, err := f.room.Enter(context.Background(), a.Token)
			if err != nil {
				t.Error(err)
			}
			visits[i] = v
		})
	}
	wg.Wait()
	if c := f.store.take(); c["renew"] != 1 || calls(c) != 1 {
		t.Fatalf("10 requests with one due pass: calls %v, want one renewal", c)
	}
	for _, v := range visits {
		if v.Outcome != waitingroom.Admitted || v.Token != visits[0].Token || v.Token == "" {
			t.Fatalf("visit %v with token %.20q, want the one renewed pass", v.Outcome, v.Token)
		}
	}
	// A client that drops cookies keeps sending the old pass: no store call until the
	// new pass would be due, then one.
	f.clock.Advance(59 * time.Second)
	if v, c := f.enter(t, a.Token); v.Outcome != waitingroom.Admitted || calls(c) != 0 {
		t.Fatalf("old pass before the new one is due: %v, calls %v", v.Outcome, c)
	}
	f.clock.Advance(2 * time.Second)
	if _, c := f.enter(t, a.Token); c["renew"] != 1 {
		t.Fatalf("old pass once the new one is due: calls %v, want one renewal", c)
	}
	// The store fails: the renewal is retried after renewRetry (5 s), not on every request.
	f.clock.Advance(61 * time.Second)
	f.store.fail = errors.New("down")
	for i := range 3 {
		v, c := f.enter(t, a.Token)
		if v.Outcome != waitingroom.Admitted || v.Pass.Session != a.Pass.Session {
			t.Fatalf("during an outage: %v", v.Outcome)
		}
		// The first request tried the store and says so; the others did not.
		if first := i == 0; (v.Degraded != nil) != first || (c["renew"] == 1) != first || calls(c) > 1 {
			t.Fatalf("request %d during an outage: degraded %v, calls %v", i, v.Degraded, c)
		}
	}
	f.clock.Advance(5 * time.Second)
	f.store.fail = nil
	if v, c := f.enter(t, a.Token); c["renew"] != 1 || v.Degraded != nil || v.Token == "" {
		t.Fatalf("after the outage: calls %v, degraded %v", c, v.Degraded)
	}
	// Released: the shared answer is dropped, the old pass no longer admits.
	if err := f.room.Release(context.Background(), a.Pass); err != nil {
		t.Fatal(err)
	}
	if v, _ := f.enter(t, a.Token); v.Outcome == waitingroom.Admitted && v.Pass.Session == a.Pass.Session {
		t.Fatal("a released session was admitted from the shared renewal")
	}
}

// TestStalledRoom: nobody leaves for a long time, so the observed rate falls toward zero
// and the wait toward infinity. Joins and polls still get tickets, with the wait capped.
func TestStalledRoom(t *testing.T) {
	f := newFixture(t, waitingroom.Config{TotalActiveUsers: 10, NewUsersPerMinute: 5, SessionDuration: 2 * time.Hour}, 0)
	var waiting []string
	for range 30 {
		v, _ := f.enter(t, "")
		if v.Outcome == waitingroom.Waiting {
			waiting = append(waiting, v.Token)
		}
		f.clock.Advance(2 * time.Second) // a few go in at the opening, while the rate allows
	}
	for step := range 300 { // 100 minutes, nobody leaving
		f.clock.Advance(20 * time.Second)
		still := waiting[:0]
		for _, tok := range waiting {
			v, _ := f.enter(t, tok)
			if v.Outcome == waitingroom.Admitted {
				continue // the room fills in its first minutes, then nobody leaves
			}
			if v.Outcome != waitingroom.Waiting || v.Token == "" {
				t.Fatalf("minute %d: poll %v", step/3, v.Outcome)
			}
			if v.Status.Wait.Known && (v.Status.Wait.P50 < 0 || v.Status.Wait.P75 > estimate.MaxWait) {
				t.Fatalf("minute %d: wait %+v", step/3, v.Status.Wait)
			}
			still = append(still, v.Token)
		}
		waiting = still
		if v, _ := f.enter(t, ""); v.Outcome != waitingroom.Waiting || v.Token == "" {
			t.Fatalf("minute %d: join %v", step/3, v.Outcome)
		}
	}
}

// A call whose own context has ended is the client's failure: ErrCanceled, never ErrStore,
// and no store call is made for it.
func TestCanceledIsNotAStoreFailure(t *testing.T) {
	f := newFixture(t, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1}, 0)
	f.enter(t, "") // the seat is taken
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	v, err := f.room.Enter(ctx, "")
	if !errors.Is(err, waitingroom.ErrCanceled) || errors.Is(err, waitingroom.ErrStore) || v.Outcome == waitingroom.Admitted {
		t.Fatalf("Enter with a cancelled context: %v, %v; want ErrCanceled and no admission", v.Outcome, err)
	}
	if st, err := f.room.Stats(context.Background()); err != nil || st.Waiting != 0 {
		t.Errorf("a cancelled Enter took a place: %+v, %v", st, err)
	}
}

// panicStore panics in every call once panicking is set.
type panicStore struct {
	store.Store
	panicking atomic.Bool
}

func (s *panicStore) check() {
	if s.panicking.Load() {
		panic("the store's bug")
	}
}

func (s *panicStore) Join(ctx context.Context, room string, l admission.Limits) (store.Result, error) {
	s.check()
	return s.Store.Join(ctx, room, l)
}

func (s *panicStore) Renew(ctx context.Context, room string, r store.Ref, l admission.Limits) (store.Renewal, error) {
	s.check()
	return s.Store.Renew(ctx, room, r, l)
}

// A store that panics fails the call as any store failure does (ErrStore), and leaves
// nothing half-done: a renewal that panicked finishes, so the next request of the session
// does not wait on it, and is tried again once the store is well.
func TestStorePanicIsAStoreFailure(t *testing.T) {
	clock := storetest.NewClock(time.UnixMilli(1795683600000))
	st := &panicStore{Store: memory.New(memory.WithClock(clock.Now))}
	room, err := waitingroom.New("room", st, waitingroom.Config{TotalActiveUsers: 2, NewUsersPerMinute: 2,
		SessionDuration: 2 * time.Minute, RenewInterval: 30 * time.Second}, waitingroom.WithClock(clock.Now), simStoreTimeout)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := room.Enter(ctx, "")
	if err != nil || a.Outcome != waitingroom.Admitted {
		t.Fatalf("first visitor: %v, %v", a.Outcome, err)
	}
	st.panicking.Store(true)
	if _, err := room.Enter(ctx, ""); !errors.Is(err, waitingroom.ErrStore) {
		t.Errorf("Join panicked: %v, want ErrStore", err)
	}
	clock.Advance(31 * time.Second)
	v, err := room.Enter(ctx, a.Token)
	if err != nil || v.Outcome != waitingroom.Admitted || !errors.Is(v.Degraded, waitingroom.ErrStore) {
		t.Fatalf("renewal panicked: %v, degraded %v, %v; want admitted on the pass, the failure reported", v.Outcome, v.Degraded, err)
	}
	// Not left hanging: the next request answers at once (a renewal that never finished
	// would hold it until its context ended).
	ctx2, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if v, err := room.Enter(ctx2, a.Token); err != nil || v.Outcome != waitingroom.Admitted || ctx2.Err() != nil {
		t.Fatalf("after the panic: %v, %v", v.Outcome, err)
	}
	st.panicking.Store(false)
	clock.Advance(10 * time.Second) // past the pause after a failed renewal
	if v, err := room.Enter(ctx, a.Token); err != nil || v.Token == "" {
		t.Errorf("the store well again: %v, token %q; want the pass renewed", err, v.Token)
	}
}

// A failed renewal is retried within RenewInterval when that is shorter than renewRetry
// (5 s): a store that restarted empty counts passes again during a recovery pause of
// RenewInterval+RefreshInterval, and a pass retried after it was counted over the capacity
// (TestFaultRun found 22 to 24 active in a room of 20, with a 2 s pause).
func TestFailedRenewalRetriedWithinRenewInterval(t *testing.T) {
	f := newFixture(t, waitingroom.Config{TotalActiveUsers: 2, NewUsersPerMinute: 2, SessionDuration: time.Minute,
		RenewInterval: 2 * time.Second, RefreshInterval: time.Second}, 0)
	a, _ := f.enter(t, "")
	if a.Outcome != waitingroom.Admitted {
		t.Fatalf("setup: %v", a.Outcome)
	}
	f.clock.Advance(3 * time.Second)
	f.store.fail = errors.New("down")
	if v, c := f.enter(t, a.Token); v.Degraded == nil || c["renew"] != 1 {
		t.Fatalf("renewal during an outage: degraded %v, calls %v", v.Degraded, c)
	}
	f.store.fail = nil
	f.clock.Advance(2 * time.Second)
	if v, c := f.enter(t, a.Token); c["renew"] != 1 || v.Degraded != nil {
		t.Fatalf("2 s (RenewInterval) after a failed renewal: calls %v, degraded %v; want it tried again", c, v.Degraded)
	}
}
