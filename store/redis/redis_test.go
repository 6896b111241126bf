package redis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/redis"
	"github.com/waitingroom-go/waitingroom/store/storetest"
)

var start = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

// miniHarness runs the store on miniredis, whose TIME and TTLs follow the test clock.
func miniHarness(tb testing.TB) storetest.Harness {
	m := miniredis.RunT(tb)
	m.SetTime(start)
	m.ClockTTL(true)
	clock := storetest.NewClock(start)
	client := goredis.NewClient(&goredis.Options{Addr: m.Addr(), ContextTimeoutEnabled: true})
	tb.Cleanup(func() { client.Close() })
	st, err := redis.New(client)
	if err != nil {
		tb.Fatal(err)
	}
	return storetest.Harness{
		Store:   st,
		Now:     clock.Now,
		Advance: func(d time.Duration) { clock.Advance(d); m.SetTime(clock.Now()) },
		Forget:  m.FlushAll,
		Slow:    true,
	}
}

func TestConformanceMiniredis(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness { return miniHarness(t) })
}

func BenchmarkMiniredis(b *testing.B) { storetest.Benchmark(b, miniHarness) }

// realHarness runs the store on the server at WAITINGROOM_REDIS_ADDR (or the Cluster at
// WAITINGROOM_REDIS_CLUSTER_ADDRS) under a key prefix of its own, passing the test clock to
// the script: a real server's clock cannot be set.
func realHarness(tb testing.TB, client goredis.UniversalClient) storetest.Harness {
	prefix := "wrtest-" + randomHex(6)
	clock := storetest.NewClock(start)
	st, err := redis.New(client, redis.WithPrefix(prefix), redis.WithClock(clock.Now))
	if err != nil {
		tb.Fatal(err)
	}
	forget := func() { deletePrefix(tb, client, prefix) }
	tb.Cleanup(forget)
	return storetest.Harness{Store: st, Now: clock.Now, Advance: clock.Advance, Forget: forget}
}

func TestConformanceRedis(t *testing.T) {
	client := realClient(t)
	storetest.Run(t, func(t *testing.T) storetest.Harness { return realHarness(t, client) })
}

func TestConformanceCluster(t *testing.T) {
	client := clusterClient(t)
	storetest.Run(t, func(t *testing.T) storetest.Harness { return realHarness(t, client) })
}

func BenchmarkRedis(b *testing.B) {
	client := realClient(b)
	storetest.Benchmark(b, func(tb testing.TB) storetest.Harness { return realHarness(tb, client) })
}

func realClient(tb testing.TB) *goredis.Client {
	addr := os.Getenv("WAITINGROOM_REDIS_ADDR")
	if addr == "" {
		tb.Skip("set WAITINGROOM_REDIS_ADDR=127.0.0.1:6379 to run against a real Redis (keys use a prefix of their own)")
	}
	c := goredis.NewClient(&goredis.Options{Addr: addr, ContextTimeoutEnabled: true})
	tb.Cleanup(func() { c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		tb.Fatalf("WAITINGROOM_REDIS_ADDR=%s: %v", addr, err)
	}
	return c
}

func clusterClient(tb testing.TB) *goredis.ClusterClient {
	addrs := os.Getenv("WAITINGROOM_REDIS_CLUSTER_ADDRS")
	if addrs == "" {
		tb.Skip("set WAITINGROOM_REDIS_CLUSTER_ADDRS=host:port,... to run against a Redis Cluster (.ci/run starts one)")
	}
	c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: strings.Split(addrs, ","), ContextTimeoutEnabled: true})
	tb.Cleanup(func() { c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		tb.Fatalf("WAITINGROOM_REDIS_CLUSTER_ADDRS=%s: %v", addrs, err)
	}
	return c
}

// deletePrefix removes the test's own keys (SCAN is fine in a test; the store never scans).
func deletePrefix(tb testing.TB, client goredis.UniversalClient, prefix string) {
	ctx := context.Background()
	del := func(ctx context.Context, c *goredis.Client) error {
		iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		return iter.Err()
	}
	var err error
	switch c := client.(type) {
	case *goredis.ClusterClient:
		err = c.ForEachMaster(ctx, del)
	case *goredis.Client:
		err = del(ctx, c)
	}
	if err != nil {
		tb.Errorf("deleting the test's keys: %v", err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// TestChunkMadeWhole checks that a liveness chunk is made at its full size when the first
// words are written in it (the joins of a bucket, once a join comes in the next): grown a
// word at a time by SETRANGE, Redis would keep doubling its allocation, and a million
// waiters would take 7 MB instead of 4. The words written are the joins' buckets.
func TestChunkMadeWhole(t *testing.T) {
	m := miniredis.RunT(t)
	m.SetTime(start)
	client := goredis.NewClient(&goredis.Options{Addr: m.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { client.Close() })
	st, err := redis.New(client)
	if err != nil {
		t.Fatal(err)
	}
	l := admission.Limits{Capacity: 1, PerMinute: 1, Session: time.Hour, Hold: time.Hour, Grace: 40 * time.Second, Recovery: time.Minute}
	ctx := context.Background()
	var last store.Result
	for range 3 { // one goes in, two wait
		if last, err = st.Join(ctx, "room", l); err != nil {
			t.Fatal(err)
		}
	}
	base := strings.TrimSuffix(redis.Keys("wr", "room")[0], "m")
	key := fmt.Sprintf("%sq:%d:0", base, last.Epoch)
	if n, _ := client.Exists(ctx, key).Result(); n != 0 {
		t.Fatalf("%s exists after the joins of one bucket; they are written with the next bucket's first join", key)
	}
	m.SetTime(start.Add(admission.LiveBucket))
	if _, err = st.Join(ctx, "room", l); err != nil {
		t.Fatal(err)
	}
	if n, err := client.StrLen(ctx, key).Result(); err != nil || n != 4094*4 {
		t.Fatalf("STRLEN %s = %d (%v), want a whole chunk of %d", key, n, err, 4094*4)
	}
	words, err := client.GetRange(ctx, key, 4, 11).Result()
	if err != nil {
		t.Fatal(err)
	}
	b := start.UnixMilli()/admission.LiveBucket.Milliseconds() + 1 // the joins' word
	word := string([]byte{byte(b >> 24), byte(b >> 16), byte(b >> 8), byte(b)})
	if words != word+word {
		t.Errorf("the waiters' words are %x, want %x twice (their join's bucket)", words, word)
	}
	if ttl, _ := client.PTTL(ctx, key).Result(); ttl <= 0 {
		t.Errorf("PTTL %s = %v: the chunk must expire", key, ttl)
	}
}
