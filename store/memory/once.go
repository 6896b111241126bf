package memory

import (
	"context"
	"time"

	"github.com/waitingroom-go/waitingroom/store"
)

// claims are the Once records of every room, by room and key.
type claims struct {
	at    map[string]claimed
	swept time.Time
}

type claimed struct{ at, until time.Time }

// onceSweep is how often the records that lapsed are dropped, at most.
const onceSweep = time.Minute

// Claim implements store.Once.
func (s *Store) Claim(ctx context.Context, room, key string, ttl time.Duration) (store.Claim, error) {
	if err := s.onceArgs(ctx, room, key, ttl); err != nil {
		return store.Claim{}, err
	}
	now := s.clock()
	s.claimsMu.Lock()
	defer s.claimsMu.Unlock()
	if s.claims.at == nil {
		s.claims.at = make(map[string]claimed)
	}
	if now.Sub(s.claims.swept) >= onceSweep {
		for k, c := range s.claims.at {
			if !now.Before(c.until) {
				delete(s.claims.at, k)
			}
		}
		s.claims.swept = now
	}
	k := room + "\x00" + key
	if c, ok := s.claims.at[k]; ok && now.Before(c.until) {
		return store.Claim{At: c.at, Now: now}, nil
	}
	s.claims.at[k] = claimed{at: now, until: now.Add(ttl)}
	return store.Claim{First: true, At: now, Now: now}, nil
}

// Unclaim implements store.Once.
func (s *Store) Unclaim(ctx context.Context, room, key string, at time.Time) error {
	if err := s.onceArgs(ctx, room, key, time.Millisecond); err != nil {
		return err
	}
	s.claimsMu.Lock()
	defer s.claimsMu.Unlock()
	k := room + "\x00" + key
	if c, ok := s.claims.at[k]; ok && c.at.Equal(at) {
		delete(s.claims.at, k)
	}
	return nil
}

func (s *Store) onceArgs(ctx context.Context, room, key string, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !store.ValidRoom(room) {
		return store.ErrInvalidRoom
	}
	return store.ValidOnce(key, ttl)
}
