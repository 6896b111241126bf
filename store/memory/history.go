package memory

import (
	"context"
	"slices"
	"time"

	"github.com/waitingroom-go/waitingroom/store"
)

// history is a room's recorded minutes, by start (Unix minutes); under Store.hmu.
type history map[int64]*store.Minute

// Record implements store.History.
func (s *Store) Record(ctx context.Context, id string, m store.Minute) error {
	if err := check(ctx, id); err != nil {
		return err
	}
	key := m.Start.Unix() / 60
	s.hmu.Lock()
	defer s.hmu.Unlock()
	h := s.hist[id]
	if h == nil {
		h = history{}
		s.hist[id] = h
	}
	cur := h[key]
	if cur == nil {
		c := m
		c.Start = time.Unix(key*60, 0)
		h[key] = &c
	} else {
		merge(cur, &m)
	}
	// Nothing grows forever: minutes past the TTL before the latest recorded go, and rooms
	// with none, looked for at most once a minute. (By the minutes, not the store's clock:
	// Record may run on a goroutine of its own.)
	oldest := key - int64(store.HistoryTTL/time.Minute)
	if oldest <= s.hpruned {
		return nil
	}
	s.hpruned = oldest
	for id, h := range s.hist {
		for k := range h {
			if k < oldest {
				delete(h, k)
			}
		}
		if len(h) == 0 {
			delete(s.hist, id)
		}
	}
	return nil
}

// merge adds m into cur, as store.History.Record says.
func merge(cur, m *store.Minute) {
	cur.Joins += m.Joins
	cur.Admissions += m.Admissions
	cur.PeakWaiting = max(cur.PeakWaiting, m.PeakWaiting)
	cur.PeakActive = max(cur.PeakActive, m.PeakActive)
	cur.LongestWait = max(cur.LongestWait, m.LongestWait)
	// The later reading of the queue; of two at the same instant, the longer.
	if m.WaitingAt.After(cur.WaitingAt) || m.WaitingAt.Equal(cur.WaitingAt) && m.Waiting > cur.Waiting {
		cur.Waiting, cur.WaitingAt = m.Waiting, m.WaitingAt
	}
	for i := range cur.Waits {
		cur.Waits[i] += m.Waits[i]
	}
}

// Minutes implements store.History.
func (s *Store) Minutes(ctx context.Context, id string, from, to time.Time) ([]store.Minute, error) {
	if err := check(ctx, id); err != nil {
		return nil, err
	}
	lo, hi := from.Unix()/60, to.Unix()/60
	s.hmu.Lock()
	defer s.hmu.Unlock()
	var out []store.Minute
	for k, m := range s.hist[id] {
		if k >= lo && k <= hi {
			out = append(out, *m)
		}
	}
	slices.SortFunc(out, func(a, b store.Minute) int { return a.Start.Compare(b.Start) })
	return out, nil
}

var _ store.History = (*Store)(nil)
