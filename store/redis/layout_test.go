package redis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
)

// TestLuaMatchesAdmission runs room.lua's own permutation (Pick's lanes in a Feistel
// network), as the store loads it, against package admission's, on miniredis and (with
// WAITINGROOM_REDIS_ADDR) a real Redis: the constants layout.go copies (pickP,
// feistelRounds) and the arithmetic agree. (Random's spread of polls, admission.Pick, is
// worked out in Go: see decodeResult.)
func TestLuaMatchesAdmission(t *testing.T) {
	m := miniredis.RunT(t)
	clients := map[string]goredis.UniversalClient{"miniredis": goredis.NewClient(&goredis.Options{Addr: m.Addr()})}
	if addr := os.Getenv("WAITINGROOM_REDIS_ADDR"); addr != "" {
		clients["redis"] = goredis.NewClient(&goredis.Options{Addr: addr})
	}
	rng := rand.New(rand.NewPCG(3, 3))
	type tc struct{ seed, n, k int64 }
	var cases []tc
	for range 200 {
		n := 1 + rng.Int64N(5000)
		cases = append(cases, tc{seed: rng.Int64N(admission.MaxSeed), n: n, k: rng.Int64N(n)})
	}
	var args []any
	for _, c := range cases {
		args = append(args, c.seed, c.n, c.k)
	}
	src := luaHeader + "local function getStruct() end\n" + roomLua + `
return (function()
  setup()
  local out = {}
  for i = 1, #ARGV, 3 do
    local seed, n, k = tonumber(ARGV[i]), tonumber(ARGV[i+1]), tonumber(ARGV[i+2])
    out[#out + 1] = {permute(seed, n, k), permuteIndex(seed, n, k)}
  end
  return out
end)()
`
	for name, client := range clients {
		t.Run(name, func(t *testing.T) {
			defer client.Close()
			v, err := client.Eval(context.Background(), src, []string{"x"}, args...).Slice()
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range cases {
				got := v[i].([]any)
				want := []int64{admission.Permute(c.seed, c.n, c.k), admission.PermuteIndex(c.seed, c.n, c.k)}
				for j, w := range want {
					if got[j].(int64) != w {
						t.Fatalf("case %d %+v: Lua %v, Go %v", i, c, got, want)
					}
				}
			}
		})
	}
}

// The header defines every field of the layouts, in order.
func TestLuaHeader(t *testing.T) {
	for _, want := range []string{
		"local A = {OP = 1, NOW = 2, CAPACITY = 3,", "local R = {TICKET = 1, EPOCH = 2, JOINED = 3,", "local S = {NOW = 1, ACTIVE = 2,",
		fmt.Sprintf("local OP = {JOIN = %d, POLL = %d, RENEW = %d, RELEASE = %d, STATS = %d, REVIVE = %d}", opJoin, opPoll, opRenew, opRelease, opStats, opRevive),
		fmt.Sprintf("local A_COUNT, E_COUNT = %d, %d", len(argFields), len(eventFields)),
		fmt.Sprintf("local BUCKET, TAKEN, MAXSCAN, WINDOW, MINGAP, PICK_P = %d, %d, %d, %d, %d,",
			admission.LiveBucket.Milliseconds(), admission.Taken, admission.MaxScan, admission.RateWindow.Milliseconds(), admission.MinPollGap.Milliseconds()),
		fmt.Sprintf("local T = {BLOCK = %d, MAXSKIP = %d}\n", admission.Block, admission.MaxSkip),
	} {
		if !strings.Contains(luaHeader, want) {
			t.Errorf("the header lacks %q:\n%s", want, luaHeader)
		}
	}
	if n := len(encodeArgs(opPoll, 1, admission.Limits{Events: make([]admission.Event, 2)}, store.Ref{})); n != 8*(len(argFields)+2*len(eventFields)) {
		t.Errorf("encodeArgs wrote %d bytes, the layout has %d fields", n, len(argFields)+2*len(eventFields))
	}
}

// A release before CloseWhenSoldOut reads stored limits' queueAll (fields capacity to
// recoveryMs, which its settle copies) as the 0 or 1 it wrote, whatever else is set; the
// sold-out setting rides in "flags", which that settle never reads from stored limits.
// Both settings go and come back, and the offer's overwrite keeps bit 0 of "flags".
func TestStoredLimitsReadByThePreviousRelease(t *testing.T) {
	for _, tt := range []admission.Limits{
		{Capacity: 1, PerMinute: 1},
		{Capacity: 1, PerMinute: 1, QueueAll: true},
		{Capacity: 1, PerMinute: 1, CloseWhenSoldOut: true},
		{Capacity: 1, PerMinute: 1, QueueAll: true, CloseWhenSoldOut: true},
	} {
		b := encodeArgs(0, 0, tt, store.Ref{Number: -1})
		qa := b[8*index(argFields, "queueAll")]
		if want := map[bool]byte{false: 0, true: 1}[tt.QueueAll]; qa != want {
			t.Errorf("limits %+v: queueAll %d, want %d as the previous release reads it", tt, qa, want)
		}
		// The fields the previous release's settle copies are those it knew, in its order.
		if index(argFields, "capacity") != 2 || index(argFields, "recoveryMs") != 11 || index(argFields, "events") != 17 {
			t.Fatalf("the fields moved: %v", argFields)
		}
		got, err := decodeLimits(b)
		if err != nil || got.QueueAll != tt.QueueAll || got.CloseWhenSoldOut != tt.CloseWhenSoldOut {
			t.Errorf("limits %+v came back as %+v, %v", tt, got, err)
		}
	}
	l := admission.Limits{Capacity: 1, PerMinute: 1, CloseWhenSoldOut: true}
	l.Offer.Overwrite = true
	if f := encodeArgs(0, 0, l, store.Ref{Number: -1})[8*index(argFields, "flags")]; f != 3 {
		t.Fatalf("overwrite and sold-out write flags %d, want 3", f)
	}
}
