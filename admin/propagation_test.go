package admin_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/admin"
	"github.com/waitingroom-go/waitingroom/rooms"
	redisstore "github.com/waitingroom-go/waitingroom/store/redis"
	"github.com/waitingroom-go/waitingroom/token"
)

// The control plane's promise, measured on a real Redis: a change made through the admin
// API of one instance is applied by a second instance within a second, every time. The
// second instance serves no traffic in the meantime, so only its watch can bring it.
func TestPropagationOnRedis(t *testing.T) {
	addr := os.Getenv("WAITINGROOM_REDIS_ADDR")
	if addr == "" {
		t.Skip("set WAITINGROOM_REDIS_ADDR=127.0.0.1:6379 to run against a real Redis (keys use a prefix of their own)")
	}
	client := goredis.NewClient(&goredis.Options{Addr: addr, ContextTimeoutEnabled: true})
	defer client.Close()
	b := make([]byte, 6)
	rand.Read(b)
	prefix := "wrtest-" + hex.EncodeToString(b)
	defer func() {
		ctx := context.Background()
		keys, _ := client.Keys(ctx, prefix+":*").Result() // a test's own prefix, on a test server
		if len(keys) > 0 {
			client.Del(ctx, keys...)
		}
	}()
	key, err := token.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	ticks := make(chan struct{}, 1)
	instance := func(opts ...rooms.Option) (*rooms.Registry, *redisstore.Store) {
		st, err := redisstore.New(client, redisstore.WithPrefix(prefix))
		if err != nil {
			t.Fatal(err)
		}
		reg, err := rooms.NewRegistry(st, append(opts, rooms.WithRoomOptions(waitingroom.WithKeys(key)))...)
		if err != nil {
			t.Fatal(err)
		}
		return reg, st
	}
	regA, stA := instance()
	regB, _ := instance(rooms.WithTickHook(func(error) {
		select {
		case ticks <- struct{}{}:
		default:
		}
	}))
	const secret = "propagation-test-secret"
	api, err := admin.New(regA, stA, admin.WithTokens(admin.Token{Name: "ops", Secret: secret, Scope: admin.ReadWrite}))
	if err != nil {
		t.Fatal(err)
	}
	send := func(method, path, body string) {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+secret)
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		if rec.Code/100 != 2 {
			t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body.String())
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go regB.Watch(ctx, 0) // the default interval

	// waitFor measures how long B takes to satisfy ok, looking after each round of its
	// watch (giving up after 5 s).
	waitFor := func(ok func() bool) time.Duration {
		start := time.Now()
		give := time.After(5 * time.Second)
		for !ok() {
			select {
			case <-ticks:
			case <-give:
				return time.Since(start)
			}
		}
		return time.Since(start)
	}
	var took []time.Duration
	send("PUT", "/api/rooms/city-001", `{"total_active_users": 10, "new_users_per_minute": 10}`)
	took = append(took, waitFor(func() bool { _, ok := regB.Room("city-001"); return ok }))
	rb := func() *waitingroom.Room { r, _ := regB.Room("city-001"); return r }
	for i := 1; i <= 8; i++ {
		want := 10 + i
		send("PATCH", "/api/rooms/city-001", `{"total_active_users": `+strconv.Itoa(want)+`, "new_users_per_minute": `+strconv.Itoa(want)+`, "queue_all": `+strconv.FormatBool(i%2 == 1)+`}`)
		took = append(took, waitFor(func() bool {
			c := rb().Config()
			return c.TotalActiveUsers == want && c.QueueAll == (i%2 == 1)
		}))
	}
	// A pass released on A is refused on B within the same bound (the watch reads the
	// store's revocation log): B no longer admits its session.
	ra, _ := regA.Room("city-001")
	v, err := ra.Enter(ctx, "")
	if err != nil || v.Outcome != waitingroom.Admitted {
		t.Fatalf("a visitor on A: %v, %v", v.Outcome, err)
	}
	if w, err := rb().Enter(ctx, v.Token); err != nil || w.Outcome != waitingroom.Admitted || w.Pass.Session != v.Pass.Session {
		t.Fatalf("the pass on B: %v, %v", w.Outcome, err)
	}
	if err := ra.Release(ctx, v.Pass); err != nil {
		t.Fatal(err)
	}
	took = append(took, waitFor(func() bool {
		w, err := rb().Enter(ctx, v.Token)
		return err == nil && (w.Outcome != waitingroom.Admitted || w.Pass.Session != v.Pass.Session)
	}))
	send("DELETE", "/api/rooms/city-001", "")
	took = append(took, waitFor(func() bool { _, ok := regB.Room("city-001"); return !ok }))
	sorted := slices.Clone(took)
	slices.Sort(sorted)
	t.Logf("time until the second instance applied a change (create, 8 patches, a released pass, delete): median %v, max %v", sorted[len(sorted)/2].Round(time.Millisecond), sorted[len(sorted)-1].Round(time.Millisecond))
	for i, d := range took {
		if d > time.Second {
			t.Errorf("change %d reached the second instance after %v, over 1 s", i, d)
		}
	}
}
