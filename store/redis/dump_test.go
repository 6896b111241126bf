package redis_test

import (
	"context"
	"encoding/binary"
	"fmt"

	goredis "github.com/redis/go-redis/v9"
)

// dumpRoom prints a room's header (hot fields, then cold: see room.lua's load) and rate
// window, for a failure's log.
func dumpRoom(c goredis.UniversalClient, prefix, room string) string {
	ctx := context.Background()
	base := prefix + ":{" + room + "}:"
	var vals []int64
	for _, f := range []string{"h", "c"} {
		h, _ := c.HGet(ctx, base+"m", f).Bytes()
		for i := 0; i+8 <= len(h); i += 8 {
			vals = append(vals, int64(binary.LittleEndian.Uint64(h[i:])))
		}
	}
	w, _ := c.Get(ctx, base+"w").Bytes()
	var ws []int64
	for i := 0; i+8 <= len(w); i += 8 {
		ws = append(ws, int64(binary.LittleEndian.Uint64(w[i:])))
	}
	return fmt.Sprintf("h=%v\nw=%v", vals, ws)
}

// dumpSets prints a room's sessions, grants and recovered places.
func dumpSets(c goredis.UniversalClient, prefix, room string) string {
	ctx := context.Background()
	base := prefix + ":{" + room + "}:"
	s, _ := c.ZRangeWithScores(ctx, base+"s", 0, -1).Result()
	g, _ := c.ZRangeWithScores(ctx, base+"g", 0, -1).Result()
	r, _ := c.ZRange(ctx, base+"r", 0, -1).Result()
	return fmt.Sprintf("KS=%v\nKG=%v\nKR=%v", s, g, r)
}
