package redis_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/rooms"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/redis"
)

// The control plane's target on one Redis and on a Cluster: 10,000 rooms' settings, listed,
// loaded by a registry in one refresh, and spread over the slots by their hash tags.
func TestTenThousandRoomsOnRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 rooms")
	}
	t.Run("single", func(t *testing.T) { tenThousandRooms(t, realClient(t)) })
	t.Run("cluster", func(t *testing.T) { tenThousandRooms(t, clusterClient(t)) })
}

func tenThousandRooms(t *testing.T, client goredis.UniversalClient) {
	prefix := "wrtest-" + randomHex(6)
	t.Cleanup(func() { deletePrefix(t, client, prefix) })
	st, err := redis.New(client, redis.WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cfg := waitingroom.Config{TotalActiveUsers: 100, NewUsersPerMinute: 100}
	// The settings as a Room stores them, written once and copied to every room.
	seed, err := waitingroom.New("seed", st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seed.Update(ctx, cfg, 0, store.Change{By: "test", What: "create"}); err != nil {
		t.Fatal(err)
	}
	stored, err := st.Settings(ctx, "seed")
	if err != nil || stored == nil {
		t.Fatal(stored, err)
	}
	const n = 10_000
	before := usedMemory(t, client)
	start := time.Now()
	// Eight writers, as operators' scripts would be; each change is one script and one
	// update of the list.
	errs := make(chan error, 8)
	for w := range 8 {
		go func() {
			for i := w; i < n; i += 8 {
				if _, err := st.PutSettings(ctx, fmt.Sprintf("city-%05d", i), store.Settings{Limits: stored.Limits, Doc: stored.Doc}, 0, store.Change{By: "test", What: "create"}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	created := time.Since(start)
	_, listed, err := st.ListRooms(ctx)
	if err != nil || len(listed) != n+1 {
		t.Fatalf("ListRooms: %d rooms, %v; want %d", len(listed), err, n)
	}
	used := usedMemory(t, client) - before
	reg, err := rooms.NewRegistry(st)
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := reg.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if reg.Len() != n+1 {
		t.Fatalf("the registry loaded %d rooms, want %d", reg.Len(), n)
	}
	t.Logf("10,000 rooms: created in %v (8 writers), loaded by a registry in %v; %d bytes of Redis memory a room (settings, trail, list)",
		created.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), used/n)
	if cc, ok := client.(*goredis.ClusterClient); ok {
		slots := map[int64]bool{}
		for i := 0; i < 200; i++ {
			s, err := cc.ClusterKeySlot(ctx, prefix+":{"+fmt.Sprintf("city-%05d", i)+"}:cfg").Result()
			if err != nil {
				t.Fatal(err)
			}
			slots[s] = true
		}
		if len(slots) < 150 {
			t.Errorf("200 rooms' settings in %d slots: not spread", len(slots))
		}
	}
}

// usedMemory is the server's (or the Cluster's primaries') used_memory.
func usedMemory(t *testing.T, client goredis.UniversalClient) int64 {
	t.Helper()
	ctx := context.Background()
	read := func(c *goredis.Client) int64 {
		info, err := c.Info(ctx, "memory").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				return n
			}
		}
		return 0
	}
	switch c := client.(type) {
	case *goredis.ClusterClient:
		var sum atomic.Int64
		c.ForEachMaster(ctx, func(ctx context.Context, m *goredis.Client) error {
			sum.Add(read(m))
			return nil
		})
		return sum.Load()
	case *goredis.Client:
		return read(c)
	}
	return 0
}
