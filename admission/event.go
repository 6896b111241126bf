package admission

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Event is a scheduled event as a store applies it. The phase is read on the store's clock,
// so that no instance admits anyone before the start by its own.
//
//   - Before Prequeue: the room's own limits.
//   - Pre-queue, [Prequeue, Start): every visitor queues; nobody is admitted.
//   - Event, [Start, End): the event's limits. At the first operation at or after Start the
//     store closes the pre-queue (the tickets issued since the first operation at or after
//     Prequeue) and drops the sessions and grants it holds, all from before the start: a
//     pass issued before an event is not valid inside it, so its slot is free for the event.
//     With Shuffle, the pre-queued places are then admitted in the order of Permute(Seed),
//     and later arrivals behind them in ticket order.
//   - From End: the room's own limits again; sessions admitted in the event run out.
type Event struct {
	Prequeue, Start, End int64 // Unix milliseconds; Prequeue == Start: no pre-queue
	Shuffle              bool
	// Seed keys the shuffle, in [0, MaxSeed). Keep it secret: who could compute the order
	// could time a join to land early in it.
	Seed int64

	// The event's limits; the room's Hold, Grace and Recovery stay.
	Capacity, PerMinute int64
	Session             time.Duration
	Renewal             bool
	Method              Method
}

// MaxSeed bounds Event.Seed, so that a Lua script computes the same permutation exactly.
const MaxSeed = 1 << 52

// Phase is where a room stands in its schedule at one instant.
type Phase struct {
	Event    *Event // the event pre-queueing or running, nil when none
	Prequeue bool   // before Event's start: nobody is admitted
}

// Active reports whether an event is running.
func (p Phase) Active() bool { return p.Event != nil && !p.Prequeue }

// ErrEvents is returned by Validate for a schedule that makes no sense.
var ErrEvents = errors.New("admission: events must be in order, not overlap, and each have prequeue <= start < end")

// At is the phase at store time now (Unix ms) and the limits in force: l itself, l with the
// event's limits, or, in a pre-queue, l admitting nobody. The result carries no events.
// Events must be sorted by Start and must not overlap (see Validate).
func (l Limits) At(now int64) (Limits, Phase) {
	evs := l.Events
	l.Events = nil
	for i := range evs {
		e := &evs[i]
		if now >= e.End {
			continue
		}
		switch {
		case now >= e.Start:
			l.Capacity, l.PerMinute, l.Session, l.Renewal, l.Method = e.Capacity, e.PerMinute, e.Session, e.Renewal, e.Method
			return l, Phase{Event: e}
		case now >= e.Prequeue:
			l.QueueAll = true
			return l, Phase{Event: e, Prequeue: true}
		}
		break
	}
	return l, Phase{}
}

func validEvents(evs []Event) error {
	for i, e := range evs {
		switch {
		case e.Prequeue > e.Start || e.Start >= e.End:
			return fmt.Errorf("%w: event %d", ErrEvents, i)
		case i > 0 && e.Prequeue < evs[i-1].End:
			return fmt.Errorf("%w: events %d and %d overlap", ErrEvents, i-1, i)
		case e.Seed < 0 || e.Seed >= MaxSeed:
			return fmt.Errorf("%w: event %d: seed out of range", ErrEvents, i)
		}
		el := Limits{Capacity: e.Capacity, PerMinute: e.PerMinute, Session: e.Session, Hold: time.Second, Grace: time.Second, Method: e.Method}
		if err := el.Validate(); err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
	}
	return nil
}

// Permute is the keyed permutation of [0, n) that orders a shuffled pre-queue: the k-th
// place admitted is the pre-queue's Permute(seed, n, k)-th. It is a Feistel network over
// [0, B*B), B = ceil(sqrt(n)), with Pick's hash as the round function, walking the cycle
// until the value falls below n (B*B < n + 2*sqrt(n) + 1, so it rarely walks). One seed
// stands for the whole order: nothing is written per visitor.
func Permute(seed, n, k int64) int64 { return cycleWalk(seed, n, k, feistel) }

// PermuteIndex is the inverse of Permute: the k with Permute(seed, n, k) == i.
func PermuteIndex(seed, n, i int64) int64 { return cycleWalk(seed, n, i, unfeistel) }

// cycleWalk applies the permutation step of [0, B*B) until the value falls within [0, n).
func cycleWalk(seed, n, x int64, step func(seed, b, x int64) int64) int64 {
	b := feistelBase(n)
	x = step(seed, b, x)
	for x >= n {
		x = step(seed, b, x)
	}
	return x
}

// feistelRounds makes the permutation mix well enough for small pre-queues too, where the
// cycle walk turns any unevenness between pairs of places into a bias: with 6 rounds a
// place of 8 lands on some turns 1.7% more often than on others; with 10 the test cannot
// tell it from uniform.
const feistelRounds = 10

// feistelBase is ceil(sqrt(n)), at least 1.
func feistelBase(n int64) int64 {
	b := max(int64(math.Sqrt(float64(n))), 1)
	for b*b < n {
		b++
	}
	for b > 1 && (b-1)*(b-1) >= n {
		b--
	}
	return b
}

func feistelF(seed, r, round, b int64) int64 { return pickLane(seed, r, round, 2) % b }

func feistel(seed, b, x int64) int64 {
	left, right := x/b, x%b
	for round := range int64(feistelRounds) {
		left, right = right, (left+feistelF(seed, right, round, b))%b
	}
	return left*b + right
}

func unfeistel(seed, b, x int64) int64 {
	left, right := x/b, x%b
	for round := int64(feistelRounds - 1); round >= 0; round-- {
		left, right = ((right-feistelF(seed, left, round, b))%b+b)%b, left
	}
	return left*b + right
}
