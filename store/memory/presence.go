package memory

import (
	"context"
	"time"

	"github.com/waitingroom-go/waitingroom/store"
)

// presence is the instances that said they serve each room, by when they last did.
type presence struct {
	seen  map[string]map[string]time.Time
	swept time.Time
}

// Present implements store.Presence.
func (s *Store) Present(ctx context.Context, room, instance string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if !store.ValidRoom(room) {
		return 0, store.ErrInvalidRoom
	}
	now := s.clock()
	s.presenceMu.Lock()
	defer s.presenceMu.Unlock()
	if s.presence.seen == nil {
		s.presence.seen = make(map[string]map[string]time.Time)
	}
	if now.Sub(s.presence.swept) >= store.PresenceWindow {
		// Once a window, forget the instances of every room gone quiet: nothing grows forever.
		for id, is := range s.presence.seen {
			for i, at := range is {
				if now.Sub(at) >= store.PresenceWindow {
					delete(is, i)
				}
			}
			if len(is) == 0 {
				delete(s.presence.seen, id)
			}
		}
		s.presence.swept = now
	}
	is := s.presence.seen[room]
	for i, at := range is {
		if now.Sub(at) >= store.PresenceWindow {
			delete(is, i)
		}
	}
	if is == nil {
		is = make(map[string]time.Time)
		s.presence.seen[room] = is
	}
	is[instance] = now
	return len(is), nil
}
