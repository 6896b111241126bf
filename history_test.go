package waitingroom_test

import (
	"context"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/store/memory"
	"github.com/waitingroom-go/waitingroom/token"
)

// Two instances count a crowd minute by minute; the store merges their minutes.
func TestHistory(t *testing.T) {
	clock := newSimClock()
	s := memory.New(memory.WithClock(clock.Now))
	key, err := token.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	cfg := waitingroom.Config{TotalActiveUsers: 2, NewUsersPerMinute: 2, RefreshInterval: 10 * time.Second}
	var inst []*waitingroom.Room
	for range 2 {
		r, err := waitingroom.New("booking", s, cfg, waitingroom.WithClock(clock.Now), simStoreTimeout, waitingroom.WithKeys(key))
		if err != nil {
			t.Fatal(err)
		}
		inst = append(inst, r)
	}
	ctx := context.Background()
	// Minute 0: six arrive, two go in at once, four wait.
	var tickets []string
	var admitted []waitingroom.Visit
	for i := range 6 {
		v, err := inst[i%2].Enter(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if v.Outcome == waitingroom.Waiting {
			tickets = append(tickets, v.Token)
		} else {
			admitted = append(admitted, v)
		}
	}
	if len(tickets) != 4 {
		t.Fatalf("%d waiting, want 4", len(tickets))
	}
	// Minute 1: the two admitted leave; the next two go in at 70 s, having waited 70 s.
	// The other two wait on without polling.
	clock.Advance(70 * time.Second)
	for _, v := range admitted {
		if err := inst[0].Release(ctx, v.Pass); err != nil {
			t.Fatal(err)
		}
	}
	for i, tk := range tickets[:2] {
		v, err := inst[i%2].Enter(ctx, tk)
		if err != nil || v.Outcome != waitingroom.Admitted {
			t.Fatalf("poll %d at 70 s: %v, %v; want admitted", i, v.Outcome, err)
		}
	}
	clock.Advance(10 * time.Minute)
	for _, r := range inst {
		if err := r.FlushHistory(ctx); err != nil {
			t.Fatal(err)
		}
	}
	h, err := inst[0].History(ctx, 15)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 {
		t.Fatalf("%d minutes, want 2: %+v", len(h), h)
	}
	m0, m1 := h[0], h[1]
	if m0.Joins != 6 || m0.Admissions != 2 || m0.PeakWaiting != 4 || m0.PeakActive != 2 || m0.Waiting != 4 || m0.LongestWait != 0 {
		t.Errorf("minute 0: %+v", m0)
	}
	if m1.Joins != 0 || m1.Admissions != 2 || m1.LongestWait != 70*time.Second || m1.P50Wait < time.Minute || m1.P50Wait > 2*time.Minute ||
		m1.Waiting != 2 || m1.Abandonments != 0 || m1.PeakActive != 2 {
		t.Errorf("minute 1: %+v", m1)
	}
	if _, err := inst[0].History(ctx, 0); err == nil {
		t.Errorf("History of 0 minutes: no error")
	}
}
