package redis

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/waitingroom-go/waitingroom/store"
)

// presenceScript records an instance in a room's sorted set of instances, scored by the
// server's time, drops those older than the window, and counts the rest; the set expires a
// window after the last instance said so.
var presenceScript = goredis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('PEXPIRE', KEYS[1], 2 * window)
return redis.call('ZCARD', KEYS[1])
`)

// Present implements store.Presence: one script call on the room's slot.
func (s *Store) Present(ctx context.Context, room, instance string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if !store.ValidRoom(room) {
		return 0, store.ErrInvalidRoom
	}
	key := s.prefix + ":{" + room + "}:i"
	n, err := presenceScript.Run(ctx, s.client, []string{key}, instance, store.PresenceWindow.Milliseconds()).Int()
	if err != nil {
		return 0, fmt.Errorf("store/redis: present: %w", err)
	}
	return n, nil
}
