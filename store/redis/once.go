package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/waitingroom-go/waitingroom/store"
)

// onceScript records a claim as "at:until" (the server's time in ms, or the store's
// clock under WithClock, and when it lapses), with PX as well so that Redis drops it, and
// answers whether it did, the time recorded and the time now: one key, one call.
var onceScript = goredis.NewScript(`
local now = tonumber(ARGV[2])
if now == 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local ttl = tonumber(ARGV[1])
local v = redis.call('GET', KEYS[1])
if v then
  local at, lapse = string.match(v, '^(%d+):(%d+)$')
  if at and now < tonumber(lapse) then
    return {0, tonumber(at), now}
  end
end
redis.call('SET', KEYS[1], string.format('%d:%d', now, now + ttl), 'PX', ttl)
return {1, now, now}
`)

// unclaimScript removes a claim recorded at ARGV[1].
var unclaimScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.match(v, '^(%d+):') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// Claim implements store.Once: one script call on the room's slot.
func (s *Store) Claim(ctx context.Context, room, key string, ttl time.Duration) (store.Claim, error) {
	if err := onceArgs(ctx, room, key, ttl); err != nil {
		return store.Claim{}, err
	}
	var now int64 // 0: the server's TIME
	if s.clock != nil {
		now = s.clock().UnixMilli()
	}
	v, err := onceScript.Run(ctx, s.client, []string{s.onceKey(room, key)}, ttl.Milliseconds(), now).Int64Slice()
	if err != nil {
		return store.Claim{}, fmt.Errorf("store/redis: claim: %w", err)
	}
	if len(v) != 3 {
		return store.Claim{}, fmt.Errorf("store/redis: claim: %d values in the answer, want 3", len(v))
	}
	return store.Claim{First: v[0] == 1, At: time.UnixMilli(v[1]), Now: time.UnixMilli(v[2])}, nil
}

// Unclaim implements store.Once.
func (s *Store) Unclaim(ctx context.Context, room, key string, at time.Time) error {
	if err := onceArgs(ctx, room, key, time.Millisecond); err != nil {
		return err
	}
	err := unclaimScript.Run(ctx, s.client, []string{s.onceKey(room, key)}, strconv.FormatInt(at.UnixMilli(), 10)).Err()
	if err != nil {
		return fmt.Errorf("store/redis: unclaim: %w", err)
	}
	return nil
}

func (s *Store) onceKey(room, key string) string { return s.prefix + ":{" + room + "}:o:" + key }

func onceArgs(ctx context.Context, room, key string, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !store.ValidRoom(room) {
		return store.ErrInvalidRoom
	}
	return store.ValidOnce(key, ttl)
}
