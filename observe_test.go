package waitingroom_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/memory"
)

func TestHookAndCounters(t *testing.T) {
	clock := newSimClock()
	mem := memory.New(memory.WithClock(clock.Now))
	cs := newCountingStore(mem)
	var got []waitingroom.Signal
	rm, err := waitingroom.New("room", cs, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1},
		waitingroom.WithClock(clock.Now), simStoreTimeout, waitingroom.WithHook(func(s waitingroom.Signal) { got = append(got, s) }))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	enter := func(raw string) waitingroom.Visit {
		t.Helper()
		v, err := rm.Enter(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	kinds := func() []waitingroom.SignalKind {
		var ks []waitingroom.SignalKind
		for _, s := range got {
			ks = append(ks, s.Kind)
		}
		got = nil
		return ks
	}
	a := enter("")
	if a.Outcome != waitingroom.Admitted || len(got) != 0 {
		t.Fatalf("first join: %v, signals %v; want admitted, none", a.Outcome, kinds())
	}
	b := enter("")
	if b.Outcome != waitingroom.Waiting {
		t.Fatalf("second join: %v", b.Outcome)
	}
	if len(got) != 1 || got[0].Kind != waitingroom.Queueing || got[0].Room != "room" || got[0].Waiting != 1 || got[0].Active != 1 || !got[0].At.Equal(clock.Now()) {
		t.Fatalf("signals after a visitor queued: %+v; want one Queueing, 1 waiting, 1 active, at the store's time", got)
	}
	got = nil
	c := enter("") // a second waiter: still queueing, no signal
	if len(got) != 0 {
		t.Fatalf("a second waiter signalled %v", kinds())
	}
	if err := rm.Release(ctx, a.Pass); err != nil {
		t.Fatal(err)
	}
	clock.Advance(61 * time.Second)
	b = enter(b.Token)
	if b.Outcome != waitingroom.Admitted {
		t.Fatalf("b after a's release: %v", b.Outcome)
	}
	if len(got) != 0 {
		t.Fatalf("c still waits, yet signalled %v", kinds())
	}
	// c is granted b's slot when d joins a minute later, and comes back after the grant
	// lapsed (ArrivalGrace), within the hold: its place is gone, it goes to the back.
	if err := rm.Release(ctx, b.Pass); err != nil {
		t.Fatal(err)
	}
	clock.Advance(61 * time.Second)
	if v := enter(""); v.Outcome != waitingroom.Waiting {
		t.Fatalf("d: %v", v.Outcome)
	}
	clock.Advance(time.Minute)
	if v := enter(c.Token); v.Outcome != waitingroom.Waiting || len(got) != 0 {
		t.Fatalf("c after its grant lapsed: %v, signals %v; want waiting (requeued), none", v.Outcome, kinds())
	}
	// Everyone's place lapses; the stats read shows the queue empty.
	clock.Advance(10 * time.Minute)
	st, err := rm.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Waiting != 0 || len(got) != 1 || got[0].Kind != waitingroom.Drained {
		t.Fatalf("stats after every place lapsed: waiting %d, signals %+v; want Drained", st.Waiting, got)
	}
	got = nil

	// The store fails twice, then answers: one StoreDown, one StoreUp.
	boom := errors.New("boom")
	cs.fail = boom
	for range 2 {
		if _, err := rm.Enter(ctx, ""); !errors.Is(err, boom) {
			t.Fatalf("join on a failing store: %v", err)
		}
	}
	if len(got) != 1 || got[0].Kind != waitingroom.StoreDown || !errors.Is(got[0].Err, boom) || !errors.Is(got[0].Err, waitingroom.ErrStore) {
		t.Fatalf("signals while the store fails: %+v; want one StoreDown with the store's error", got)
	}
	got = nil
	cs.fail = nil
	enter("")
	if ks := kinds(); len(ks) == 0 || ks[0] != waitingroom.StoreUp {
		t.Fatalf("signals once the store answers: %v; want StoreUp first", ks)
	}
	// A client that went away is not the store failing.
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := rm.Enter(gone, ""); !errors.Is(err, waitingroom.ErrCanceled) || len(got) != 0 {
		t.Fatalf("a cancelled request: %v, signals %v; want ErrCanceled and none", err, kinds())
	}

	// Settings changed here, naming who (a store that keeps settings).
	other, err := waitingroom.New("other", mem, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1},
		waitingroom.WithClock(clock.Now), waitingroom.WithHook(func(s waitingroom.Signal) { got = append(got, s) }))
	if err != nil {
		t.Fatal(err)
	}
	cfg, v := other.Settings()
	next := cfg
	next.TotalActiveUsers = 5
	nv, err := other.Update(ctx, next, v, store.Change{By: "ops", What: "patch"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Kind != waitingroom.SettingsChanged || got[0].Room != "other" || got[0].Version != nv ||
		got[0].Change.By != "ops" || got[0].Before.TotalActiveUsers != 1 || got[0].After.TotalActiveUsers != 5 {
		t.Fatalf("signals after an update: %+v", got)
	}
	if c := other.Counters().Calls[waitingroom.OpControl]; c.Count != 1 {
		t.Fatalf("control calls of the update: %+v", c)
	}

	n := rm.Counters()
	if n.Joins != 6 || n.Admissions != 3 || n.Requeues != 1 {
		t.Fatalf("counters: joins %d, admissions %d, requeues %d; want 6 (a, b, c, d, c again, e), 3 (a, b, e), 1 (c)", n.Joins, n.Admissions, n.Requeues)
	}
	if j := n.Calls[waitingroom.OpJoin]; j.Count != 7 || j.Errors != 2 || sum(j.Buckets[:]) != j.Count {
		t.Fatalf("join calls: %+v; want 7, 2 failed, every one in a bucket", j)
	}
	if p := n.Calls[waitingroom.OpPoll]; p.Count != 2 || p.Errors != 0 {
		t.Fatalf("poll calls: %+v", p)
	}
	if n.Calls[waitingroom.OpRelease].Count != 2 || n.Calls[waitingroom.OpStats].Count != 1 {
		t.Fatalf("release, stats, control calls: %+v", n.Calls)
	}
	if !n.Seen.At.Equal(clock.Now()) {
		t.Fatalf("seen at %v, want the store's latest answer %v", n.Seen.At, clock.Now())
	}
	for op := range waitingroom.NumStoreOps {
		if op.String() == "" || op.String()[0] == 'S' {
			t.Fatalf("op %d has no name: %q", op, op)
		}
	}
}

// A stats read whose caller gave up, before or during the call, is no store failure.
func TestStatsAbandonedIsNoOutage(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var got []waitingroom.Signal
	rm, err := waitingroom.New("room", abandoning{memory.New(), cancel}, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1},
		waitingroom.WithHook(func(s waitingroom.Signal) { got = append(got, s) }))
	if err != nil {
		t.Fatal(err)
	}
	for _, when := range []string{"during", "before"} {
		if _, err := rm.Stats(ctx); !errors.Is(err, waitingroom.ErrCanceled) || errors.Is(err, waitingroom.ErrStore) {
			t.Errorf("%s the call: %v; want ErrCanceled", when, err)
		}
	}
	if c := rm.Counters().Calls[waitingroom.OpStats]; len(got) != 0 || c.Count != 0 {
		t.Errorf("signals %+v, stats calls %+v; want none counted", got, c)
	}
}

// abandoning is a store whose Stats ends its caller's context and waits for it to end.
type abandoning struct {
	store.Store
	cancel func()
}

func (a abandoning) Stats(ctx context.Context, room string, l admission.Limits) (store.Stats, error) {
	a.cancel()
	<-ctx.Done()
	return store.Stats{}, ctx.Err()
}

func sum(xs []int64) (n int64) {
	for _, x := range xs {
		n += x
	}
	return n
}

// The room logs the store failing and answering again once each way, not per request, and
// the settings it stored.
func TestLogger(t *testing.T) {
	clock := newSimClock()
	mem := memory.New(memory.WithClock(clock.Now))
	cs := newCountingStore(mem)
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	rm, err := waitingroom.New("room", cs, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1},
		waitingroom.WithClock(clock.Now), simStoreTimeout, waitingroom.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cs.fail = errors.New("connection refused")
	for range 5 {
		rm.Enter(ctx, "")
	}
	cs.fail = nil
	for range 5 {
		if _, err := rm.Enter(ctx, ""); err != nil {
			t.Fatal(err)
		}
	}
	out := buf.String()
	if n := strings.Count(out, "a store call failed"); n != 1 || !strings.Contains(out, "connection refused") || !strings.Contains(out, "op=join") {
		t.Fatalf("%d failure lines (want 1, with the error and the op):\n%s", n, out)
	}
	if n := strings.Count(out, "the store answers again"); n != 1 {
		t.Fatalf("%d recovery lines, want 1:\n%s", n, out)
	}
	other, err := waitingroom.New("other", mem, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1},
		waitingroom.WithClock(clock.Now), waitingroom.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	cfg, v := other.Settings()
	if _, err := other.Update(ctx, cfg, v, store.Change{By: "ops", What: "patch"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `settings stored" room=other version=1 by=ops what=patch`) {
		t.Fatalf("no settings line:\n%s", buf.String())
	}
	if _, err := waitingroom.New("x", mem, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1}, waitingroom.WithLogger(nil)); !errors.Is(err, waitingroom.ErrConfig) {
		t.Fatalf("nil logger: %v", err)
	}
}

// A change refused because another came first is the store's answer, not its failure: no
// StoreDown, no error counted, and the error is a *store.VersionError, not ErrStore.
func TestVersionConflictIsNoOutage(t *testing.T) {
	clock := newSimClock()
	var got []waitingroom.Signal
	rm, err := waitingroom.New("room", memory.New(memory.WithClock(clock.Now)), waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1},
		waitingroom.WithClock(clock.Now), waitingroom.WithHook(func(s waitingroom.Signal) { got = append(got, s) }))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cfg, v := rm.Settings()
	if _, err := rm.Update(ctx, cfg, v, store.Change{By: "a", What: "patch"}); err != nil {
		t.Fatal(err)
	}
	got = nil
	_, err = rm.Update(ctx, cfg, v, store.Change{By: "b", What: "patch"}) // v is stale now
	var ve *store.VersionError
	if !errors.As(err, &ve) || errors.Is(err, waitingroom.ErrStore) {
		t.Fatalf("a stale update: %v; want a *store.VersionError, not ErrStore", err)
	}
	if len(got) != 0 {
		t.Fatalf("signals of a stale update: %+v; want none", got)
	}
	if c := rm.Counters().Calls[waitingroom.OpControl]; c.Errors != 0 || c.Count != 2 {
		t.Fatalf("control calls: %+v; want 2, no error", c)
	}
}
