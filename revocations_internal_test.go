package waitingroom

import (
	"context"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom/store/memory"
	"github.com/waitingroom-go/waitingroom/store/storetest"
	"github.com/waitingroom-go/waitingroom/token"
)

// Issue 13, item 6: a released pass is refused at once where it was released, and on
// another instance once it reads the store's revocation log (a registry's watch does,
// four times a second: TestPropagationOnRedis); with WithStrictRevocation, at once
// everywhere. Before, it worked until its next renewal on the
// other instance (24 s here; a whole session with renewal off).
func TestRevocation(t *testing.T) {
	clock := storetest.NewClock(time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC))
	s := memory.New(memory.WithClock(clock.Now))
	key := token.HMACKey{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")}
	cfg := Config{TotalActiveUsers: 1, NewUsersPerMinute: 5, AllowRateAboveCapacity: true, SessionDuration: 2 * time.Minute}
	mk := func(opts ...Option) *Room {
		r, err := New("booking", s, cfg, append([]Option{WithClock(clock.Now), WithKeys(key), WithStoreTimeout(time.Minute)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b, strict := mk(), mk(), mk(WithStrictRevocation())
	ctx := context.Background()
	v, err := a.Enter(ctx, "")
	if err != nil || v.Outcome != Admitted {
		t.Fatal(v.Outcome, err)
	}
	pass := v.Token
	if err := b.ReadRevocations(ctx); err != nil { // b has read the log before
		t.Fatal(err)
	}
	if w, _ := b.Enter(ctx, pass); w.Outcome != Admitted {
		t.Fatal("b does not admit the pass")
	}

	if err := a.Release(ctx, v.Pass); err != nil {
		t.Fatal(err)
	}
	// The slot goes to the next visitor: a released pass that still worked would make two.
	if c, err := a.Enter(ctx, ""); err != nil || c.Outcome != Admitted {
		t.Fatal("the next visitor did not get the freed slot", c.Outcome, err)
	}
	if w, _ := a.Enter(ctx, pass); w.Outcome == Admitted {
		t.Errorf("the releasing instance admits the released pass")
	}
	if w, _ := strict.Enter(ctx, pass); w.Outcome == Admitted {
		t.Errorf("a strict instance admits the released pass")
	}
	if w, _ := b.Enter(ctx, pass); w.Outcome != Admitted {
		t.Errorf("b refused the pass before reading the log: no store call on an admitted request")
	}
	if err := b.ReadRevocations(ctx); err != nil {
		t.Fatal(err)
	}
	if w, _ := b.Enter(ctx, pass); w.Outcome == Admitted {
		t.Errorf("b admits the released pass after reading the log")
	}
}

// Revive takes the binding into account as Enter does: a bound pass revives only for its
// own client, whoever calls it.
func TestReviveBound(t *testing.T) {
	clock := storetest.NewClock(time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC))
	r, err := New("booking", memory.New(memory.WithClock(clock.Now)), Config{TotalActiveUsers: 2, NewUsersPerMinute: 2},
		WithClock(clock.Now), WithStoreTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v, err := r.Enter(ctx, "", BindTo("client-a"))
	if err != nil || v.Outcome != Admitted || v.Pass.Binding == "" {
		t.Fatal(v.Outcome, err)
	}
	clock.Advance(5*time.Minute + time.Second) // the session ran out; the room is not yet idle
	if w, err := r.Revive(ctx, v.Pass, BindTo("client-b")); err != nil || w.Outcome == Admitted {
		t.Errorf("another client revived the bound pass: %v, %v", w.Outcome, err)
	}
	if w, err := r.Revive(ctx, v.Pass); err != nil || w.Outcome == Admitted {
		t.Errorf("a caller without the binding revived the bound pass: %v, %v", w.Outcome, err)
	}
	if w, err := r.Revive(ctx, v.Pass, BindTo("client-a")); err != nil || w.Outcome != Admitted || w.Pass.Binding != v.Pass.Binding {
		t.Errorf("its own client: %v, %v; want revived, still bound", w.Outcome, err)
	}
}
