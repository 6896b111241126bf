package waitingroom_test

import (
	"context"
	"sync"
	"time"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
)

// simClock is a settable clock for simulated time.
type simClock struct {
	mu  sync.Mutex
	now time.Time
}

func newSimClock() *simClock {
	return &simClock{now: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)}
}

func (c *simClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *simClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *simClock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// countingStore counts the operations a room sends to its store.
type countingStore struct {
	store.Store
	mu    sync.Mutex
	calls map[string]int
	fail  error
}

func newCountingStore(s store.Store) *countingStore {
	return &countingStore{Store: s, calls: map[string]int{}}
}

func (c *countingStore) count(op string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[op]++
	return c.fail
}

// take returns the calls so far and starts counting again.
func (c *countingStore) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.calls
	c.calls = map[string]int{}
	return m
}

func (c *countingStore) Join(ctx context.Context, room string, l admission.Limits) (store.Result, error) {
	if err := c.count("join"); err != nil {
		return store.Result{}, err
	}
	return c.Store.Join(ctx, room, l)
}

func (c *countingStore) Poll(ctx context.Context, room string, t store.Ref, l admission.Limits) (store.Result, error) {
	if err := c.count("poll"); err != nil {
		return store.Result{}, err
	}
	return c.Store.Poll(ctx, room, t, l)
}

func (c *countingStore) Renew(ctx context.Context, room string, s store.Ref, l admission.Limits) (store.Renewal, error) {
	if err := c.count("renew"); err != nil {
		return store.Renewal{}, err
	}
	return c.Store.Renew(ctx, room, s, l)
}

func (c *countingStore) Release(ctx context.Context, room string, s store.Ref) error {
	if err := c.count("release"); err != nil {
		return err
	}
	return c.Store.Release(ctx, room, s)
}
