package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/redis"
)

// A room's count of slots lives in its settings hash, under the room's hash tag, and
// expires as the settings do: SettingsTTL after its last change or Touch, whatever the
// room's visitors do (their state lapses within minutes of the last of them).
func TestSlotsExpireWithTheSettings(t *testing.T) {
	m := miniredis.RunT(t)
	m.SetTime(start)
	m.ClockTTL(true)
	client := goredis.NewClient(&goredis.Options{Addr: m.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { client.Close() })
	st, err := redis.New(client)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := start
	advance := func(d time.Duration) { now = now.Add(d); m.SetTime(now) }
	slots := func(what string, want int64) {
		t.Helper()
		s, err := st.Stats(ctx, "booking", admission.Limits{})
		if err != nil || s.Slots != want {
			t.Fatalf("%s: Slots %d, %v; want %d", what, s.Slots, err, want)
		}
	}

	if err := st.SetSlots(ctx, "booking", 40); err != nil {
		t.Fatal(err)
	}
	key := "wr:{booking}:cfg"
	if ttl := m.TTL(key); ttl != store.SettingsTTL {
		t.Fatalf("TTL of %s after SetSlots: %v, want SettingsTTL (%v)", key, ttl, store.SettingsTTL)
	}
	if got, _ := client.HGet(ctx, key, "slots").Result(); got != "40" {
		t.Fatalf("%s slots = %q, want 40", key, got)
	}
	advance(store.SettingsTTL - time.Hour)
	if left, err := st.TakeSlots(ctx, "booking", 1); err != nil || left != 39 {
		t.Fatalf("TakeSlots a day before expiry: %d, %v; want 39", left, err)
	}
	advance(store.SettingsTTL - time.Hour) // the take renewed it
	slots("a take renews the count's TTL", 39)
	if err := st.Touch(ctx, []string{"booking"}); err != nil {
		t.Fatal(err)
	}
	advance(store.SettingsTTL - time.Hour)
	slots("Touch renews it", 39)
	advance(2 * time.Hour)
	slots("SettingsTTL after the last change or Touch", admission.NotCounted)
	if left, err := st.TakeSlots(ctx, "booking", 1); err != nil || left != admission.NotCounted {
		t.Errorf("TakeSlots of an expired count: %d, %v; want not counted", left, err)
	}
	if m.Exists(key) {
		t.Errorf("a take from no count made %s", key)
	}
	// Stopping the count of a room with no settings leaves no key without a TTL.
	if err := st.SetSlots(ctx, "booking", -1); err != nil {
		t.Fatal(err)
	}
	if m.Exists(key) {
		t.Errorf("SetSlots(-1) made %s", key)
	}
}
