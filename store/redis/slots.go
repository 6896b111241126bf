package redis

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
)

// A room's count of slots left is the field "slots" of its settings hash
// (prefix:{room}:cfg): it shares the room's hash tag, so room.lua reads it in the same
// script as the room (one HGET, no round trip of its own), and it lives and expires with
// the settings (store.SettingsTTL from its last change or Touch; DeleteSettings removes
// it), not with the visitors' state, which lapses when the room idles.

// slotsScript is store.Slots's two operations, each one atomic script: "set" (admission.SetSlots)
// and "take" (admission.TakeSlots). ARGV: the operation, n, the TTL in ms, admission.MaxSlots.
// Reply: the count kept, -1 for none.
var slotsScript = goredis.NewScript(`
local n, ttl, most = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local left
if ARGV[1] == 'set' then
  if n < 0 then
    redis.call('HDEL', KEYS[1], 'slots')
    return -1
  end
  left = math.min(n, most)
else
  local have = tonumber(redis.call('HGET', KEYS[1], 'slots'))
  if not have then return -1 end
  if n >= have then
    left = 0
  elseif n <= have - most then
    left = most
  else
    left = have - n
  end
end
redis.call('HSET', KEYS[1], 'slots', string.format('%d', left))
redis.call('PEXPIRE', KEYS[1], ttl)
return left
`)

// SetSlots implements store.Slots.
func (s *Store) SetSlots(ctx context.Context, room string, n int64) error {
	_, err := s.slots(ctx, room, "set", n)
	return err
}

// TakeSlots implements store.Slots.
func (s *Store) TakeSlots(ctx context.Context, room string, n int64) (int64, error) {
	return s.slots(ctx, room, "take", n)
}

func (s *Store) slots(ctx context.Context, room, op string, n int64) (int64, error) {
	if err := ctx.Err(); err != nil {
		return admission.NotCounted, err
	}
	if !store.ValidRoom(room) {
		return admission.NotCounted, store.ErrInvalidRoom
	}
	// Beyond the cap either way the answer is the same (admission.TakeSlots), and the
	// script's numbers (doubles) hold these exactly.
	n = min(max(n, -admission.MaxSlots), admission.MaxSlots)
	left, err := slotsScript.Run(ctx, s.client, s.settingsKeys(room)[:1], op, n, store.SettingsTTL.Milliseconds(), admission.MaxSlots).Int64()
	if err != nil {
		return admission.NotCounted, fmt.Errorf("store/redis: %s slots: %w", op, err)
	}
	return left, nil
}

var _ store.Slots = (*Store)(nil)
