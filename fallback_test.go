package waitingroom_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/memory"
	"github.com/waitingroom-go/waitingroom/token"
)

var errRefused = errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")

// presentStore is a countingStore that also says which instances serve a room.
type presentStore struct {
	*countingStore
	p store.Presence
}

func (s presentStore) Present(ctx context.Context, room, instance string) (int, error) {
	if err := s.count("present"); err != nil {
		return 0, err
	}
	return s.p.Present(ctx, room, instance)
}

func (c *countingStore) setFail(err error) {
	c.mu.Lock()
	c.fail = err
	c.mu.Unlock()
}

// switches records a fallback's OnSwitch calls.
type switches struct {
	mu  sync.Mutex
	got []bool
}

func (s *switches) record(local bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if local != (err != nil) {
		panic("OnSwitch: local and err disagree")
	}
	s.got = append(s.got, local)
}

func (s *switches) take() []bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.got
	s.got = nil
	return g
}

// TestFallback (issue 13, item 13): while the store is unreachable, two instances each
// admit waiting visitors by their share of what the store last said was free (capacity 10,
// 6 active: 4 free slots, 2 each; the rate spent, then 6 a minute, 3 each), and nobody
// more; visitors they do not admit keep their places and are told the room is
// reconnecting; a newcomer gets no place. The store is asked once per Retry. Once it is
// back, the passes issued alone are counted in it (Recount): the room holds 10, its
// capacity, and the waiters go on from their places.
func TestFallback(t *testing.T) {
	clock := newSimClock()
	mem := memory.New(memory.WithClock(clock.Now))
	cs := newCountingStore(mem)
	st := presentStore{cs, mem}
	var sw [2]switches
	var rooms [2]*waitingroom.Room
	key, err := token.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	for i := range rooms {
		r, err := waitingroom.New("room", st, waitingroom.Config{
			TotalActiveUsers: 10, NewUsersPerMinute: 6, SessionDuration: 10 * time.Minute,
		}, waitingroom.WithClock(clock.Now), simStoreTimeout, waitingroom.WithKeys(key),
			waitingroom.WithFallback(waitingroom.Fallback{Retry: 5 * time.Second, OnSwitch: sw[i].record}))
		if err != nil {
			t.Fatal(err)
		}
		rooms[i] = r
		if err := r.Present(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(10 * time.Second) // the first learns of the second at its next heartbeat
	for i, r := range rooms {
		if err := r.Present(t.Context()); err != nil {
			t.Fatal(err)
		}
		if n := r.Fallback().Instances; n != 2 {
			t.Fatalf("instances known to %d: %d, want 2", i, n)
		}
	}
	enter := func(i int, raw string) waitingroom.Visit {
		t.Helper()
		v, err := rooms[i].Enter(context.Background(), raw)
		if err != nil {
			t.Fatalf("Enter: %v", err)
		}
		return v
	}
	// 6 admitted (the rate), 12 waiting, their tickets held by the test.
	var waiting []waitingroom.Visit
	for i := range 18 {
		v := enter(i%2, "")
		switch {
		case i < 6 && v.Outcome != waitingroom.Admitted, i >= 6 && v.Outcome != waitingroom.Waiting:
			t.Fatalf("setup: visitor %d %v", i, v.Outcome)
		case i >= 6:
			waiting = append(waiting, v)
		}
	}
	// The store goes away. Each waiter comes back to one instance or the other.
	cs.setFail(errRefused)
	cs.take()
	clock.Advance(20 * time.Second)
	tokens := make([]string, len(waiting))
	for i, w := range waiting {
		tokens[i] = w.Token
	}
	var local []waitingroom.Visit
	for range 12 { // two minutes of polls every 10 s
		for i := range waiting {
			if tokens[i] == "" {
				continue
			}
			v := enter(i%2, tokens[i])
			switch v.Outcome {
			case waitingroom.Admitted:
				if !v.Pass.Local || v.Token == "" {
					t.Fatalf("admitted alone: %+v, want a local pass", v.Pass)
				}
				local = append(local, v)
				tokens[i] = ""
			case waitingroom.Waiting:
				if !v.Status.Reconnecting || v.Token != "" || v.Status.UsersAhead != waiting[i].Status.UsersAhead {
					t.Fatalf("waiter %d during the outage: %+v, token %q; want reconnecting, its ticket kept, %d ahead",
						i, v.Status, v.Token, waiting[i].Status.UsersAhead)
				}
			default:
				t.Fatalf("waiter %d during the outage: %v", i, v.Outcome)
			}
		}
		if v := enter(0, ""); v.Outcome != waitingroom.Waiting || !v.Status.Reconnecting || v.Token != "" {
			t.Fatalf("a newcomer during the outage: %v %+v", v.Outcome, v.Status)
		}
		clock.Advance(10 * time.Second)
	}
	if len(local) != 4 {
		t.Errorf("admitted alone in two minutes: %d, want 4 (2 free slots for each instance)", len(local))
	}
	for i := range rooms {
		if got := sw[i].take(); len(got) != 1 || !got[0] {
			t.Errorf("instance %d switched %v, want [true]", i, got)
		}
		if f := rooms[i].Fallback(); !f.Local || f.Admitted != 2 || f.Switches != 1 {
			t.Errorf("instance %d: %+v, want local, 2 admitted alone", i, f)
		}
	}
	// One store call per instance per Retry (5 s) at most, over 120 s.
	if n := calls(cs.take()); n > 2*(120/5+1) {
		t.Errorf("%d store calls during the outage, want at most one per Retry per instance", n)
	}

	// The store is back: the next request that asks ends the outage on each instance.
	cs.setFail(nil)
	clock.Advance(5 * time.Second)
	for _, v := range local { // the ones admitted alone come back: counted now
		w := enter(int(v.Pass.Session)%2, v.Token)
		if w.Outcome != waitingroom.Admitted {
			t.Fatalf("a pass issued alone, once the store is back: %v", w.Outcome)
		}
	}
	enter(0, tokens[len(tokens)-1])
	enter(1, tokens[len(tokens)-1])
	for i := range rooms {
		if got := sw[i].take(); len(got) != 1 || got[0] {
			t.Errorf("instance %d switched %v, want [false]", i, got)
		}
	}
	stats, err := rooms[0].Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if stats.Active != 10 {
		t.Errorf("active once the store is back: %d, want 10 (6 before, 4 admitted alone, counted)", stats.Active)
	}
	if stats.Waiting != 8 {
		t.Errorf("waiting once the store is back: %d, want 8 (12 less the 4 admitted alone)", stats.Waiting)
	}
}

// A client that goes away during an outage is no outage: its cancelled request starts none.
func TestFallbackIgnoresCancelledRequests(t *testing.T) {
	clock := newSimClock()
	cs := newCountingStore(memory.New(memory.WithClock(clock.Now)))
	var sw switches
	r, err := waitingroom.New("room", cs, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1},
		waitingroom.WithClock(clock.Now), simStoreTimeout, waitingroom.WithFallback(waitingroom.Fallback{OnSwitch: sw.record}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Enter(ctx, ""); !errors.Is(err, waitingroom.ErrCanceled) {
		t.Fatalf("a cancelled request: %v, want ErrCanceled", err)
	}
	if got := sw.take(); len(got) != 0 || r.Fallback().Local {
		t.Errorf("a cancelled request switched the room to deciding alone: %v", got)
	}
}

// A pass issued alone in a room without renewals goes to the store once, to be counted,
// for what is left of its session; the same ticket brought twice during the outage gets the
// same pass, not a second slot; and a newcomer during the outage runs no join guard.
func TestFallbackPassesCounted(t *testing.T) {
	clock := newSimClock()
	cs := newCountingStore(memory.New(memory.WithClock(clock.Now)))
	r, err := waitingroom.New("room", cs, waitingroom.Config{
		TotalActiveUsers: 4, NewUsersPerMinute: 2, SessionDuration: 10 * time.Minute, DisableSessionRenewal: true,
	}, waitingroom.WithClock(clock.Now), simStoreTimeout, waitingroom.WithFallback(waitingroom.Fallback{Retry: time.Minute}))
	if err != nil {
		t.Fatal(err)
	}
	enter := func(raw string, opts ...waitingroom.EnterOption) waitingroom.Visit {
		t.Helper()
		v, err := r.Enter(context.Background(), raw, opts...)
		if err != nil {
			t.Fatalf("Enter: %v", err)
		}
		return v
	}
	enter("")
	enter("") // the rate spent
	w := enter("")
	if w.Outcome != waitingroom.Waiting {
		t.Fatalf("setup: %v", w.Outcome)
	}
	cs.setFail(errRefused)
	clock.Advance(time.Minute) // the rate frees: this instance's share is 2 a minute
	a := enter(w.Token)
	if a.Outcome != waitingroom.Admitted || !a.Pass.Local || a.Degraded == nil {
		t.Fatalf("the waiter during the outage: %v local %v degraded %v; want admitted alone, the failure reported", a.Outcome, a.Pass.Local, a.Degraded)
	}
	if b := enter(w.Token); b.Token != a.Token {
		t.Errorf("the same ticket again during the outage got another pass")
	}
	guarded := 0
	enter("", waitingroom.BeforeJoin(func() error { guarded++; return nil }))
	if guarded != 0 {
		t.Errorf("a newcomer during the outage ran the join guard %d times, want none (no place is taken)", guarded)
	}
	if f := r.Fallback(); f.Admitted != 1 {
		t.Errorf("admitted alone: %d, want 1", f.Admitted)
	}
	cs.setFail(nil)
	clock.Advance(time.Minute) // the next request asks the store
	v := enter(a.Token)
	if v.Outcome != waitingroom.Admitted || v.Pass.Local || !v.Pass.Expires.Equal(a.Pass.Expires) {
		t.Fatalf("the pass issued alone, once the store is back: %v local %v expires %v; want counted, to %v",
			v.Outcome, v.Pass.Local, v.Pass.Expires, a.Pass.Expires)
	}
	st, err := r.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Active != 3 || st.Waiting != 0 {
		t.Errorf("once counted: active %d waiting %d, want 3 and 0", st.Active, st.Waiting)
	}
}

// The switch is logged both ways, with the room and the store's error.
func TestFallbackLogsTheSwitch(t *testing.T) {
	clock := newSimClock()
	cs := newCountingStore(memory.New(memory.WithClock(clock.Now)))
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	r, err := waitingroom.New("room", cs, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1},
		waitingroom.WithClock(clock.Now), simStoreTimeout, waitingroom.WithFallback(waitingroom.Fallback{Logger: log}))
	if err != nil {
		t.Fatal(err)
	}
	cs.setFail(errRefused)
	r.Enter(context.Background(), "")
	cs.setFail(nil)
	clock.Advance(2 * time.Second)
	r.Enter(context.Background(), "")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 ||
		!strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], "room=room") || !strings.Contains(lines[0], "connection refused") ||
		!strings.Contains(lines[1], "level=INFO") || !strings.Contains(lines[1], "room=room") {
		t.Errorf("logged:\n%s\nwant a warning with the room and the error, then an info line", buf.String())
	}
}

// A newcomer asked about first (AskBeforeJoin, as the middleware's join guards do) takes
// no turn to ask the store: once the retry is due, its join asks it, and ends the outage.
func TestFallbackAskBeforeJoinLeavesTheProbe(t *testing.T) {
	clock := newSimClock()
	cs := newCountingStore(memory.New(memory.WithClock(clock.Now)))
	r, err := waitingroom.New("room", cs, waitingroom.Config{TotalActiveUsers: 5, NewUsersPerMinute: 5},
		waitingroom.WithClock(clock.Now), simStoreTimeout, waitingroom.WithFallback(waitingroom.Fallback{Logger: slog.New(slog.DiscardHandler)}),
		waitingroom.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := r.Enter(ctx, ""); err != nil { // the room seen once
		t.Fatal(err)
	}
	cs.setFail(errRefused)
	if v, err := r.Enter(ctx, ""); err != nil || v.Outcome != waitingroom.Waiting || !v.Status.Reconnecting {
		t.Fatalf("a newcomer as the store fails: %v %+v, %v; want reconnecting", v.Outcome, v.Status, err)
	}
	if v, _ := r.Enter(ctx, "", waitingroom.AskBeforeJoin()); v.Outcome != waitingroom.Waiting || !v.Status.Reconnecting {
		t.Fatalf("asked before the retry is due: %v; want reconnecting, no guard to run", v.Outcome)
	}
	cs.setFail(nil)
	clock.Advance(2 * time.Second) // past Retry (1 s)
	cs.take()
	if v, _ := r.Enter(ctx, "", waitingroom.AskBeforeJoin()); v.Outcome != waitingroom.Joining {
		t.Fatalf("asked once the retry is due: %v; want Joining", v.Outcome)
	}
	v, err := r.Enter(ctx, "")
	if err != nil || v.Status.Reconnecting || v.Outcome != waitingroom.Admitted {
		t.Fatalf("the join after it: %v %+v, %v; want admitted by the store", v.Outcome, v.Status, err)
	}
	if c := cs.take(); c["join"] != 1 || r.Fallback().Local {
		t.Fatalf("store calls %v, local %t; want the join to reach the store and end the outage", c, r.Fallback().Local)
	}
}
