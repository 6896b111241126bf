package waitingroom

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/waitingroom-go/waitingroom/store"
)

// History: each instance counts, minute by minute, what its store answers showed (joins,
// admissions and their waits, the peaks of waiting and active), and records each minute in
// the store once it is over (store.History), where the instances' counts merge. It costs no
// store call on a request: a finished minute is recorded in the background after the next
// answer, or by FlushHistory (which a registry's watch calls for rooms gone quiet).

// HistoryMinute is one minute of a room's history.
type HistoryMinute struct {
	Start        time.Time
	Joins        int64 // places taken
	Admissions   int64
	Abandonments int64 // places given up: joins less admissions less the growth of the queue
	PeakWaiting  int64
	PeakActive   int64
	Waiting      int64         // live waiters at the end of the minute
	LongestWait  time.Duration // of the visitors admitted in the minute
	P50Wait      time.Duration // median wait of the visitors admitted in the minute (interpolated)
}

// maxUnrecorded bounds the finished minutes an instance keeps while its store fails.
const maxUnrecorded = 60

// recorder counts the current minute of a room on this instance.
type recorder struct {
	mu   sync.Mutex
	cur  *store.Minute // nil until the room's first answer: an idle room costs a pointer
	done []store.Minute
	// recording is held while minutes are recorded: one recording at a time, and
	// FlushHistory waits for one in the background.
	recording sync.Mutex

	// The earliest place of the waiters this instance answered lately: when it was taken
	// and when such a waiter was last answered (for Snapshot's LongestWait).
	oldestJoined, oldestSeen time.Time
}

// waiter counts a waiting answer at store time now for a place taken at joined, which
// lapses after hold without an answer; rc.mu is held.
func (rc *recorder) waiter(now, joined time.Time, hold time.Duration) {
	if joined.IsZero() {
		return
	}
	if joined.Before(rc.oldestJoined) || now.Sub(rc.oldestSeen) > hold || rc.oldestSeen.IsZero() {
		rc.oldestJoined = joined
	}
	if !joined.After(rc.oldestJoined) {
		rc.oldestSeen = now
	}
}

// longest is the longest wait at now of the waiters answered within hold.
func (rc *recorder) longest(now time.Time, hold time.Duration) time.Duration {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.oldestSeen.IsZero() || now.Sub(rc.oldestSeen) > hold {
		return 0
	}
	return max(0, now.Sub(rc.oldestJoined))
}

// note counts one store answer at store time now (one lock: it runs on every join and
// poll), a waiter's place taken at place (zero when admitted) lapsing after hold. It
// reports whether finished minutes wait to be recorded.
func (rc *recorder) note(now time.Time, joined, admitted bool, wait time.Duration, waiting, active int64, place time.Time, hold time.Duration) bool {
	start := now.Truncate(time.Minute)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.waiter(now, place, hold)
	if rc.cur == nil {
		rc.cur = &store.Minute{Start: start}
	}
	if !rc.cur.Start.Equal(start) {
		if !rc.cur.Start.IsZero() && start.After(rc.cur.Start) {
			rc.finish()
		}
		if start.After(rc.cur.Start) {
			*rc.cur = store.Minute{Start: start}
		}
	}
	m := rc.cur
	if joined {
		m.Joins++
	}
	if admitted {
		m.Admissions++
		m.LongestWait = max(m.LongestWait, wait)
		i := 0
		for i < len(store.WaitBounds) && wait > store.WaitBounds[i] {
			i++
		}
		m.Waits[i]++
	}
	m.PeakWaiting, m.PeakActive = max(m.PeakWaiting, waiting), max(m.PeakActive, active)
	if !now.Before(m.WaitingAt) {
		m.Waiting, m.WaitingAt = waiting, now
	}
	return len(rc.done) > 0
}

// finish moves the current minute to those to record; rc.mu is held.
func (rc *recorder) finish() {
	rc.done = append(rc.done, *rc.cur)
	if n := len(rc.done) - maxUnrecorded; n > 0 {
		rc.done = append(rc.done[:0:0], rc.done[n:]...)
	}
	*rc.cur = store.Minute{}
}

// take returns the minutes to record, those over at now included; rc.recording is held.
func (rc *recorder) take(now time.Time) []store.Minute {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.cur != nil && !rc.cur.Start.IsZero() && !now.Before(rc.cur.Start.Add(time.Minute)) {
		rc.finish()
	}
	d := rc.done
	rc.done = nil
	return d
}

// putBack returns minutes that failed to be recorded, ahead of those that came since.
func (rc *recorder) putBack(failed []store.Minute) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(failed) > 0 {
		rc.done = append(failed, rc.done...)
		if n := len(rc.done) - maxUnrecorded; n > 0 {
			rc.done = rc.done[n:]
		}
	}
}

// FlushHistory records in the store the minutes this instance has counted that are over.
// Rooms record them by themselves after a store answer; a registry calls this for rooms
// that have gone quiet. A store that keeps no history makes it a no-op.
func (r *Room) FlushHistory(ctx context.Context) error {
	if _, ok := r.store.(store.History); !ok {
		return nil
	}
	r.hist.recording.Lock()
	defer r.hist.recording.Unlock()
	return r.record(ctx, r.now())
}

// record records the minutes finished at now; r.hist.recording is held.
func (r *Room) record(ctx context.Context, now time.Time) error {
	h, ok := r.store.(store.History)
	if !ok {
		return nil
	}
	ms := r.hist.take(now)
	for i, m := range ms {
		err := r.call(ctx, OpHistory, func(ctx context.Context) error { return h.Record(ctx, r.id, m) })
		if err != nil {
			r.hist.putBack(ms[i:])
			return err
		}
	}
	return nil
}

// recordLater records the minutes finished at now (the store's time of an answer) in the
// background, unless a recording is under way. It reads no clock: the app's may not be
// safe to read from another goroutine.
func (r *Room) recordLater(now time.Time) {
	if !r.hist.recording.TryLock() {
		return
	}
	go func() {
		defer r.hist.recording.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*r.timeout)
		defer cancel()
		_ = r.record(ctx, now) // kept, and tried again after the next answer
	}()
}

// History returns the room's last minutes, oldest first, as the store recorded them from
// every instance (at most store.HistoryTTL back); minutes without a record are left out.
func (r *Room) History(ctx context.Context, minutes int) ([]HistoryMinute, error) {
	h, ok := r.store.(store.History)
	if !ok {
		return nil, fmt.Errorf("%w: the store keeps no history (store.History)", ErrConfig)
	}
	if minutes < 1 || time.Duration(minutes)*time.Minute > store.HistoryTTL {
		return nil, fmt.Errorf("%w: minutes must be from 1 to %d, got %d", ErrConfig, int(store.HistoryTTL/time.Minute), minutes)
	}
	now := r.now()
	var ms []store.Minute
	err := r.call(ctx, OpHistory, func(ctx context.Context) (err error) {
		// One minute more, for the queue's length before the first.
		ms, err = h.Minutes(ctx, r.id, now.Add(-time.Duration(minutes)*time.Minute), now)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]HistoryMinute, 0, len(ms))
	var before *store.Minute
	for i := range ms {
		m := &ms[i]
		hm := HistoryMinute{
			Start: m.Start, Joins: m.Joins, Admissions: m.Admissions, PeakWaiting: m.PeakWaiting,
			PeakActive: m.PeakActive, Waiting: m.Waiting, LongestWait: m.LongestWait, P50Wait: p50(m.Waits),
		}
		grew := m.Waiting
		if before != nil && before.Start.Equal(m.Start.Add(-time.Minute)) {
			grew -= before.Waiting
		}
		hm.Abandonments = max(0, m.Joins-m.Admissions-grew)
		before = m
		if !m.Start.Before(now.Add(-time.Duration(minutes) * time.Minute).Truncate(time.Minute).Add(time.Minute)) {
			out = append(out, hm)
		}
	}
	return out, nil
}

// p50 is the median of waits counted in store.WaitBounds's buckets, interpolated within
// its bucket.
func p50(waits [len(store.WaitBounds) + 1]int64) time.Duration {
	var n int64
	for _, c := range waits {
		n += c
	}
	if n == 0 {
		return 0
	}
	half, seen := float64(n)/2, int64(0)
	for i, c := range waits {
		if c == 0 || float64(seen+c) < half {
			seen += c
			continue
		}
		var lo time.Duration
		if i > 0 {
			lo = store.WaitBounds[i-1]
		}
		if i == len(store.WaitBounds) {
			return lo // the last bucket has no bound
		}
		frac := (half - float64(seen)) / float64(c)
		return lo + time.Duration(frac*float64(store.WaitBounds[i]-lo))
	}
	return store.WaitBounds[len(store.WaitBounds)-1]
}
