package waitingroom_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/memory"
	"github.com/waitingroom-go/waitingroom/token"
)

// The operator's scenario of the control-plane issue: two instances of one room, A with
// TotalActiveUsers 2 and B with 20 (a rolling deploy). Before, the store held 20 active
// against A's cap of 2; now the first to reach the store seeds it, and B runs by it.
func TestInstancesWithDifferentConfigs(t *testing.T) {
	clock := newSimClock()
	s := memory.New(memory.WithClock(clock.Now))
	key, err := token.GenerateKey("k1") // every instance signs with the same key
	if err != nil {
		t.Fatal(err)
	}
	mk := func(capacity int, opts ...waitingroom.Option) *waitingroom.Room {
		cfg := waitingroom.Config{TotalActiveUsers: capacity, NewUsersPerMinute: capacity}
		r, err := waitingroom.New("booking", s, cfg, append([]waitingroom.Option{waitingroom.WithClock(clock.Now), simStoreTimeout, waitingroom.WithKeys(key)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := mk(2), mk(20)
	ctx := context.Background()
	admitted := 0
	for i := range 40 {
		r := a
		if i%2 == 1 {
			r = b
		}
		v, err := r.Enter(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if v.Outcome == waitingroom.Admitted {
			admitted++
		}
	}
	if admitted != 2 {
		t.Errorf("%d admitted by two instances, want the stored capacity 2", admitted)
	}
	st, err := a.Stats(ctx)
	if err != nil || st.Active != 2 {
		t.Errorf("Stats: %d active, %v; want 2", st.Active, err)
	}
	if a.Version() != 1 || b.Version() != 1 || b.Config().TotalActiveUsers != 2 {
		t.Errorf("versions %d and %d, B's capacity %d; want both at 1 and B following A's 2", a.Version(), b.Version(), b.Config().TotalActiveUsers)
	}

	// A's code changes its settings: stored as version 2, B follows at its next answer.
	cfg := a.Config()
	cfg.TotalActiveUsers, cfg.NewUsersPerMinute = 5, 5
	if err := a.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Enter(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if a.Version() != 2 {
		t.Errorf("A at version %d after its change was stored, want 2", a.Version())
	}
	if _, err := b.Enter(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if b.Version() != 2 || b.Config().TotalActiveUsers != 5 {
		t.Errorf("B at version %d with capacity %d, want version 2 and 5", b.Version(), b.Config().TotalActiveUsers)
	}

	// A deploy that overwrites: C's settings replace the stored ones, once.
	c := mk(7, waitingroom.WithOverwrite())
	if _, err := c.Enter(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Enter(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if c.Version() != 3 {
		t.Errorf("C at version %d after overwriting, want 3 (one overwrite, not one per call)", c.Version())
	}
	if _, err := a.Enter(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if a.Config().TotalActiveUsers != 7 {
		t.Errorf("A's capacity %d after C's overwrite, want 7", a.Config().TotalActiveUsers)
	}
	trail, err := s.Changes(ctx, "booking")
	if err != nil || len(trail) != 3 || trail[0].What != "overwrite" || trail[2].What != "seed" || trail[0].By != "code" {
		t.Errorf("the trail: %+v, %v; want overwrite, overwrite, seed by code", trail, err)
	}
}

// An operator's change reaches an instance that sees no traffic through Sync; a suspended
// room makes no store call, so only Sync can bring it back.
func TestSyncFollowsStoredSettings(t *testing.T) {
	clock := newSimClock()
	s := memory.New(memory.WithClock(clock.Now))
	cfg := waitingroom.Config{TotalActiveUsers: 3, NewUsersPerMinute: 3, Suspended: true}
	r, err := waitingroom.New("booking", s, cfg, waitingroom.WithClock(clock.Now), simStoreTimeout)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := r.Sync(ctx); err != nil || r.Version() != 0 {
		t.Fatalf("Sync with nothing stored: version %d, %v", r.Version(), err)
	}
	resumed := cfg
	resumed.Suspended = false
	doc, err := waitingroom.EncodeConfig(resumed)
	if err != nil {
		t.Fatal(err)
	}
	l := admission.Limits{Capacity: 3, PerMinute: 3, Session: 5 * time.Minute, Renewal: true, Hold: 5 * time.Minute, Grace: 40 * time.Second, Refresh: 20 * time.Second}
	if _, err := s.PutSettings(ctx, "booking", store.Settings{Limits: l, Doc: doc}, 0, store.Change{By: "ops", What: "create"}); err != nil {
		t.Fatal(err)
	}
	if v, _ := r.Enter(ctx, ""); v.Outcome != waitingroom.Suspended {
		t.Fatalf("before Sync: %v, want still suspended (no store call)", v.Outcome)
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if r.Version() != 1 || r.Config().Suspended {
		t.Fatalf("after Sync: version %d, suspended %v", r.Version(), r.Config().Suspended)
	}
	if v, _ := r.Enter(ctx, ""); v.Outcome != waitingroom.Admitted {
		t.Errorf("after Sync: %v, want admitted", v.Outcome)
	}

	// A document this release cannot read: the store enforces its limits all the same, and
	// the room keeps the settings it has, saying why once.
	l.Capacity, l.PerMinute = 1, 1
	if _, err := s.PutSettings(ctx, "booking", store.Settings{Limits: l, Doc: []byte(`{"from_the_future":1}`)}, 1, store.Change{By: "ops"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(ctx); !errors.Is(err, waitingroom.ErrConfig) {
		t.Errorf("Sync of an unreadable document: %v, want ErrConfig", err)
	}
	for i := range 3 {
		if v, err := r.Enter(ctx, ""); err != nil || v.Outcome != waitingroom.Waiting {
			t.Errorf("join %d under the stored capacity 1 (one active): %v, %v; want waiting", i, v.Outcome, err)
		}
	}
	if r.Version() != 1 {
		t.Errorf("version %d, want 1 still", r.Version())
	}
}

func TestSnapshot(t *testing.T) {
	clock := newSimClock()
	s := memory.New(memory.WithClock(clock.Now))
	cfg := waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1, TypicalSession: time.Minute}
	r, err := waitingroom.New("booking", s, cfg, waitingroom.WithClock(clock.Now), simStoreTimeout)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	snap, err := r.Snapshot(ctx)
	if err != nil || !snap.Wait.Known || snap.Wait.P50 != 0 || snap.Active != 0 {
		t.Fatalf("an empty room: %+v, %v; want a known zero wait", snap, err)
	}
	if _, err := r.Enter(ctx, ""); err != nil {
		t.Fatal(err)
	}
	w, err := r.Enter(ctx, "")
	if err != nil || w.Outcome != waitingroom.Waiting {
		t.Fatal(w.Outcome, err)
	}
	clock.Advance(30 * time.Second)
	if _, err := r.Enter(ctx, w.Token); err != nil {
		t.Fatal(err)
	}
	snap, err = r.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Active != 1 || snap.Waiting != 1 || snap.LongestWait != 30*time.Second || !snap.Wait.Known || snap.Wait.P50 <= 0 || snap.Version != 1 {
		t.Errorf("one in, one waiting 30 s: %+v", snap)
	}
	clock.Advance(time.Minute) // nobody answered for two refresh intervals: no reading
	if snap, _ = r.Snapshot(ctx); snap.LongestWait != 0 {
		t.Errorf("a minute without a poll: longest wait %v, want 0 (unknown)", snap.LongestWait)
	}
}

// Issue 13, item 7: an instance with other keys than the room's others refuses to serve
// the room, naming the key, instead of requeueing every visitor of theirs.
func TestCheckKeys(t *testing.T) {
	clock := newSimClock()
	s := memory.New(memory.WithClock(clock.Now))
	ctx := context.Background()
	key := func(id, secret string) token.HMACKey {
		return token.HMACKey{ID: id, Secret: []byte(secret + "0123456789abcdef0123456789abcdef")}
	}
	k1, k1other, k2 := key("k1", "a"), key("k1", "b"), key("k2", "c")
	mk := func(keys ...token.HMACKey) *waitingroom.Room {
		r, err := waitingroom.New("booking", s, waitingroom.Config{TotalActiveUsers: 5, NewUsersPerMinute: 5},
			waitingroom.WithClock(clock.Now), simStoreTimeout, waitingroom.WithKeys(keys...))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a := mk(k1)
	if err := a.CheckKeys(ctx); err != nil {
		t.Fatalf("the first instance: %v", err)
	}
	v, err := a.Enter(ctx, "")
	if err != nil || v.Outcome != waitingroom.Admitted {
		t.Fatal(v.Outcome, err)
	}
	for _, tc := range []struct {
		name string
		keys []token.HMACKey
		want string
	}{
		{"started without the key", []token.HMACKey{k1other}, `key "k1" here has another secret`},
		{"another key", []token.HMACKey{k2}, `signed with key "k1", which this instance does not have`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := mk(tc.keys...)
			err := b.CheckKeys(ctx)
			if !errors.Is(err, waitingroom.ErrKeyMismatch) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckKeys: %v, want ErrKeyMismatch saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), string(tc.keys[0].Secret)) {
				t.Errorf("the error shows the secret")
			}
			// The visitor of the other instance is not requeued here: it is refused.
			_, err = b.Enter(ctx, v.Token)
			if !errors.Is(err, waitingroom.ErrKeyMismatch) || errors.Is(err, waitingroom.ErrStore) {
				t.Errorf("Enter: %v, want ErrKeyMismatch and not a store failure (no failing open)", err)
			}
		})
	}
	// A rotation with overlap: the new key verifies first, then signs.
	if err := mk(k1, k2).CheckKeys(ctx); err != nil {
		t.Errorf("k2 joins as a second key: %v", err)
	}
	if err := mk(k2, k1).CheckKeys(ctx); err != nil {
		t.Errorf("k2 signs, k1 still verifies: %v", err)
	}
	if err := mk(k1).CheckKeys(ctx); !errors.Is(err, waitingroom.ErrKeyMismatch) {
		t.Errorf("an instance left with k1 alone after the rotation: %v, want ErrKeyMismatch", err)
	}
	if err := mk(k2).CheckKeys(ctx); err != nil {
		t.Errorf("k1 retired: %v", err)
	}
}

// Issue 13, item 3: a ticket replayed by 1,000 clients costs the store one poll per
// refresh interval, not one per request, whether the replays come at once or one after
// another, and each gets the answer the first got.
func TestReplayedTicketPollsOnce(t *testing.T) {
	clock := newSimClock()
	cs := newCountingStore(memory.New(memory.WithClock(clock.Now)))
	r, err := waitingroom.New("booking", cs, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1, RefreshInterval: 20 * time.Second},
		waitingroom.WithClock(clock.Now), simStoreTimeout)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := r.Enter(ctx, ""); err != nil {
		t.Fatal(err)
	}
	w, err := r.Enter(ctx, "")
	if err != nil || w.Outcome != waitingroom.Waiting {
		t.Fatal(w.Outcome, err)
	}
	clock.Advance(20 * time.Second)
	cs.take()
	var wg sync.WaitGroup
	tokens := make(chan string, 1000)
	for range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := r.Enter(ctx, w.Token)
			if err != nil || v.Outcome != waitingroom.Waiting {
				t.Errorf("a replay: %v, %v", v.Outcome, err)
			}
			tokens <- v.Token
		}()
	}
	wg.Wait()
	close(tokens)
	if c := cs.take(); c["poll"] != 1 {
		t.Errorf("1,000 replays at once: %d store polls, want 1", c["poll"])
	}
	first := ""
	for tk := range tokens {
		if first == "" {
			first = tk
		}
		if tk != first {
			t.Fatalf("the replays got different tickets")
		}
	}
	// One after another through the refresh interval: still the one answer.
	for range 19 {
		clock.Advance(time.Second)
		for range 50 {
			if _, err := r.Enter(ctx, w.Token); err != nil {
				t.Fatal(err)
			}
		}
	}
	if c := cs.take(); c["poll"] != 1 {
		t.Errorf("950 replays over the next 19 s: %d store polls, want 1 (at 18 s, when the new ticket is due)", c["poll"])
	}
}
