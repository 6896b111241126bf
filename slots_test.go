package waitingroom_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"golang.org/x/text/language"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/memory"
	"github.com/waitingroom-go/waitingroom/token"
)

// Two instances of a room on one store: what A sets (a message, through Update as the admin
// API does; the slots left) reaches B's waiter with its next poll, in the one store call
// that poll makes.
func TestMessageAndSlotsReachAnotherInstance(t *testing.T) {
	clock := newSimClock()
	s := memory.New(memory.WithClock(clock.Now))
	countB := newCountingStore(s)
	key, err := token.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	cfg := waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1}
	mk := func(st store.Store) *waitingroom.Room {
		r, err := waitingroom.New("booking", st, cfg, waitingroom.WithClock(clock.Now), simStoreTimeout, waitingroom.WithKeys(key))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := mk(s), mk(countB)
	ctx := context.Background()
	if v, err := a.Enter(ctx, ""); err != nil || v.Outcome != waitingroom.Admitted {
		t.Fatalf("the first visitor: %v, %v", v.Outcome, err)
	}
	w, err := b.Enter(ctx, "")
	if err != nil || w.Outcome != waitingroom.Waiting {
		t.Fatalf("the second visitor: %v, %v", w.Outcome, err)
	}
	if w.Status.SlotsCounted || w.Status.Message.Len() != 0 {
		t.Fatalf("before anything is set: %+v", w.Status)
	}

	with := a.Config()
	with.Messages = map[string]string{"en": "All slots for today are gone.", "ja": "本日の予約枠はすべて埋まりました。"}
	if _, err := a.Update(ctx, with, a.Version(), store.Change{By: "ops", What: "patch"}); err != nil {
		t.Fatal(err)
	}
	if err := a.SetSlots(ctx, 12); err != nil {
		t.Fatal(err)
	}
	if left, err := a.TakeSlots(ctx, 12); err != nil || left != 0 {
		t.Fatalf("TakeSlots(12) = %d, %v; want 0", left, err)
	}
	countB.take()
	clock.Advance(w.Status.RefreshInterval)
	p, err := b.Enter(ctx, w.Token)
	if err != nil || p.Outcome != waitingroom.Waiting {
		t.Fatalf("B's waiter polls: %v, %v", p.Outcome, err)
	}
	if calls := countB.take(); !maps.Equal(calls, map[string]int{"poll": 1}) {
		t.Errorf("B's poll made store calls %v, want one poll", calls)
	}
	if !p.Status.SlotsCounted || p.Status.Slots != 0 || p.Status.SoldOut {
		t.Errorf("B's waiter: slots counted %t, %d, sold out %t; want 0 counted, its place kept", p.Status.SlotsCounted, p.Status.Slots, p.Status.SoldOut)
	}
	if text, _ := p.Status.Message.In(language.Japanese); text != "本日の予約枠はすべて埋まりました。" {
		t.Errorf("B's waiter reads the message in Japanese as %q", text)
	}
	if b.Version() != a.Version() {
		t.Errorf("B runs by version %d, A stored %d", b.Version(), a.Version())
	}
}

// With CloseWhenSoldOut and no slot left a newcomer gets no place (Rejected, SoldOut, no
// token), and the waiters keep theirs, told of the count; a slot given back opens the room.
func TestSoldOutRoom(t *testing.T) {
	clock := newSimClock()
	s := memory.New(memory.WithClock(clock.Now))
	r, err := waitingroom.New("booking", s, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1, CloseWhenSoldOut: true,
		Messages: map[string]string{"en": "Fully booked"}}, waitingroom.WithClock(clock.Now), simStoreTimeout)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	in, err := r.Enter(ctx, "")
	if err != nil || in.Outcome != waitingroom.Admitted {
		t.Fatalf("the first visitor: %v, %v", in.Outcome, err)
	}
	w, err := r.Enter(ctx, "")
	if err != nil || w.Outcome != waitingroom.Waiting {
		t.Fatalf("the second visitor: %v, %v", w.Outcome, err)
	}
	if err := r.SetSlots(ctx, 0); err != nil {
		t.Fatal(err)
	}
	v, err := r.Enter(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if v.Outcome != waitingroom.Rejected || !v.Status.SoldOut || v.Token != "" || v.Status.RefreshInterval != 0 ||
		!v.Status.SlotsCounted || v.Status.Slots != 0 || v.Status.Wait.Known {
		t.Fatalf("a newcomer, sold out: %+v, token %q; want Rejected, SoldOut, no token, no refresh", v.Status, v.Token)
	}
	if text, _ := v.Status.Message.In(language.English); text != "Fully booked" {
		t.Errorf("a newcomer, sold out: message %q", text)
	}
	clock.Advance(w.Status.RefreshInterval)
	p, err := r.Enter(ctx, w.Token)
	if err != nil || p.Outcome != waitingroom.Waiting || p.Status.SoldOut || !p.Status.SlotsCounted || p.Status.Slots != 0 {
		t.Fatalf("the waiter, sold out: %v %+v, %v; want its place, told 0", p.Outcome, p.Status, err)
	}
	if left, err := r.TakeSlots(ctx, -1); err != nil || left != 1 { // a cancellation
		t.Fatalf("TakeSlots(-1) = %d, %v; want 1", left, err)
	}
	if v, err := r.Enter(ctx, ""); err != nil || v.Outcome != waitingroom.Waiting || v.Status.Slots != 1 {
		t.Errorf("a newcomer with a slot back: %v %+v, %v; want a place", v.Outcome, v.Status, err)
	}
	if err := r.SetSlots(ctx, -1); err != nil {
		t.Fatal(err)
	}
	if left, err := r.TakeSlots(ctx, 1); err != nil || left != admission.NotCounted {
		t.Errorf("TakeSlots when not counting: %d, %v; want NotCounted", left, err)
	}
	st, err := r.Stats(ctx)
	if err != nil || st.Slots != admission.NotCounted {
		t.Errorf("Stats.Slots = %d, %v; want not counted", st.Slots, err)
	}
}

// A store that keeps no count: the room says so, and its visitors see none.
func TestSlotsNeedAStoreThatCounts(t *testing.T) {
	clock := newSimClock()
	r, err := waitingroom.New("booking", struct{ store.Store }{memory.New(memory.WithClock(clock.Now))},
		waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1}, waitingroom.WithClock(clock.Now), simStoreTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetSlots(context.Background(), 3); !errors.Is(err, waitingroom.ErrConfig) {
		t.Errorf("SetSlots on a store without store.Slots: %v, want ErrConfig", err)
	}
	if _, err := r.TakeSlots(context.Background(), 1); !errors.Is(err, waitingroom.ErrConfig) {
		t.Errorf("TakeSlots on a store without store.Slots: %v, want ErrConfig", err)
	}
	r.Enter(context.Background(), "") // in
	v, err := r.Enter(context.Background(), "")
	if err != nil || v.Outcome != waitingroom.Waiting || v.Status.SlotsCounted {
		t.Errorf("a waiter: %v %+v, %v; want no count", v.Outcome, v.Status, err)
	}
}

// A store that keeps no count of slots (one of the host's own around the engine, whose
// answers carry a zero) tells no waiter "0 left", and a room on it cannot close when sold
// out.
func TestNoCountWithoutAStoreThatCounts(t *testing.T) {
	clock := newSimClock()
	cs := zeroSlots{memory.New(memory.WithClock(clock.Now))} // no store.Slots; its answers carry 0
	rm, err := waitingroom.New("room", cs, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1}, waitingroom.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rm.Enter(ctx, "")
	v, err := rm.Enter(ctx, "")
	if err != nil || v.Outcome != waitingroom.Waiting {
		t.Fatalf("second visitor: %v, %v", v.Outcome, err)
	}
	if v.Status.SlotsCounted || v.Status.SoldOut {
		t.Fatalf("a store that counts nothing: %+v; want no count and not sold out", v.Status)
	}
	if early, err := rm.Enter(ctx, v.Token); err != nil || early.Status.SlotsCounted { // answered without the store
		t.Fatalf("an early poll on a store that counts nothing: %+v, %v; want no count", early.Status, err)
	}
	if _, err := waitingroom.New("other", cs, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1, CloseWhenSoldOut: true}); !errors.Is(err, waitingroom.ErrConfig) || !strings.Contains(err.Error(), "store.Slots") {
		t.Fatalf("CloseWhenSoldOut on a store that counts nothing: %v, want a config error", err)
	}
	cfg := rm.Config()
	cfg.CloseWhenSoldOut = true
	if err := rm.SetConfig(cfg); !errors.Is(err, waitingroom.ErrConfig) {
		t.Fatalf("SetConfig with CloseWhenSoldOut on a store that counts nothing: %v", err)
	}
}

// zeroSlots is a store of the host's own around the engine: it keeps no count of slots, and
// its answers carry the zero value.
type zeroSlots struct{ store.Store }

func (z zeroSlots) Join(ctx context.Context, room string, l admission.Limits) (store.Result, error) {
	res, err := z.Store.Join(ctx, room, l)
	res.Slots = 0
	return res, err
}

func (z zeroSlots) Poll(ctx context.Context, room string, t store.Ref, l admission.Limits) (store.Result, error) {
	res, err := z.Store.Poll(ctx, room, t, l)
	res.Slots = 0
	return res, err
}
