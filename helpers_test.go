package waitingroom_test

import (
	"context"
	"sync"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/storetest"
)

// simStoreTimeout is the store timeout of rooms in simulated time. The store timeout is the
// one wall-clock time a room keeps: at its default, 500 ms, a loaded machine that leaves a
// test's goroutine unscheduled for half a second fails a store call that took microseconds
// ("context deadline exceeded"). A minute is a hang, not a slow machine.
var simStoreTimeout = waitingroom.WithStoreTimeout(time.Minute)

// newSimClock is a settable clock for simulated time, from the morning the bookings open.
func newSimClock() *storetest.Clock {
	return storetest.NewClock(time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC))
}

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

// SetSlots implements store.Slots by the wrapped store's.
func (c *countingStore) SetSlots(ctx context.Context, room string, n int64) error {
	if err := c.count("slots"); err != nil {
		return err
	}
	return c.Store.(store.Slots).SetSlots(ctx, room, n)
}

// TakeSlots implements store.Slots by the wrapped store's.
func (c *countingStore) TakeSlots(ctx context.Context, room string, n int64) (int64, error) {
	if err := c.count("slots"); err != nil {
		return 0, err
	}
	return c.Store.(store.Slots).TakeSlots(ctx, room, n)
}
