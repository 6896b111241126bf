package redis_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/middleware"
	"github.com/waitingroom-go/waitingroom/store/redis"
	"github.com/waitingroom-go/waitingroom/store/storetest"
	"github.com/waitingroom-go/waitingroom/token"
)

var testKey = token.HMACKey{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")}

// TestClusterKeySlots asks a real Cluster where a room's keys live: one slot.
func TestClusterKeySlots(t *testing.T) {
	c := clusterClient(t)
	ctx := context.Background()
	for _, room := range []string{"booking", "tenant-7"} {
		keys := redis.Keys("wr", room)
		keys = append(keys, strings.TrimSuffix(keys[0], "m")+"q:1795683600000:3")
		want, err := c.ClusterKeySlot(ctx, keys[0]).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys[1:] {
			if got, _ := c.ClusterKeySlot(ctx, k).Result(); got != want {
				t.Errorf("CLUSTER KEYSLOT %s = %d, want %d", k, got, want)
			}
		}
	}
}

// instance is an app instance: its own clock, its own client, its own Room.
type instance struct {
	room *waitingroom.Room
	now  func() time.Time
}

// TestSkewedInstancesAgree runs one crowd through two app instances whose clocks are 30 s
// apart, sharing one Redis, and again through instances with the same clock: every answer
// is the same, because the store's TIME decides and the rooms correct their clocks by it.
func TestSkewedInstancesAgree(t *testing.T) {
	run := func(skew time.Duration) []string {
		m := miniredis.RunT(t)
		m.SetTime(start)
		m.ClockTTL(true)
		storeNow := start
		var instances []instance
		for i, off := range []time.Duration{-skew / 2, skew / 2} {
			client := goredis.NewClient(&goredis.Options{Addr: m.Addr(), ContextTimeoutEnabled: true})
			t.Cleanup(func() { client.Close() })
			st, err := redis.New(client) // Redis TIME: no store clock here
			if err != nil {
				t.Fatal(err)
			}
			now := func() time.Time { return storeNow.Add(off) }
			room, err := waitingroom.New("skew", st, waitingroom.Config{
				TotalActiveUsers: 3, NewUsersPerMinute: 3, SessionDuration: time.Minute, RefreshInterval: 10 * time.Second,
			}, waitingroom.WithKeys(testKey), waitingroom.WithClock(now))
			if err != nil {
				t.Fatal(err)
			}
			instances = append(instances, instance{room, now})
			_ = i
		}
		var log []string
		cookies := make([]string, 12)
		for step := range 40 {
			for v := range cookies {
				if (step+v)%3 != 0 {
					continue
				}
				in := instances[(step+v)%2] // visitors bounce between instances
				visit, err := in.room.Enter(context.Background(), cookies[v])
				if err != nil {
					t.Fatal(err)
				}
				if visit.Token != "" {
					cookies[v] = visit.Token
				}
				log = append(log, fmt.Sprintf("t=%ds v%d outcome=%d ahead=%d wait=%v renewed=%t",
					step*5, v, visit.Outcome, visit.Status.UsersAhead, visit.Status.Wait.P50, visit.Token != ""))
			}
			storeNow = storeNow.Add(5 * time.Second)
			m.SetTime(storeNow)
		}
		return log
	}
	same, skewed := run(0), run(30*time.Second)
	if len(same) != len(skewed) {
		t.Fatalf("%d answers with one clock, %d with skewed clocks", len(same), len(skewed))
	}
	admitted := 0
	for i := range same {
		if same[i] != skewed[i] {
			t.Fatalf("answer %d differs:\n one clock: %s\n skewed:    %s", i, same[i], skewed[i])
		}
		if strings.Contains(same[i], fmt.Sprintf(" outcome=%d ", waitingroom.Admitted)) {
			admitted++
		}
	}
	if admitted == 0 || admitted == len(same) {
		t.Fatalf("%d of %d answers admitted: the scenario does not exercise the queue", admitted, len(same))
	}
}

// commandCounter counts the commands a client sends.
type commandCounter struct {
	mu   sync.Mutex
	cmds []string
}

func (c *commandCounter) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (c *commandCounter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if name := cmd.Name(); name != "hello" && name != "client" { // a new connection's handshake
			c.mu.Lock()
			c.cmds = append(c.cmds, name)
			c.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}
func (c *commandCounter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		c.mu.Lock()
		for _, cmd := range cmds {
			if name := cmd.Name(); name != "hello" && name != "client" {
				c.cmds = append(c.cmds, name)
			}
		}
		c.mu.Unlock()
		return next(ctx, cmds)
	}
}
func (c *commandCounter) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.cmds
	c.cmds = nil
	return out
}

// TestRoundTripsPerPath counts what each request sends to Redis: an admitted request
// nothing, a poll one command, a join one command. That command is FCALL on a server with
// Functions (which gets the library loaded on the first call: FCALL, FUNCTION LOAD, FCALL)
// and EVALSHA on miniredis, which has none (the first call: FCALL refused, EVALSHA, EVAL).
func TestRoundTripsPerPath(t *testing.T) {
	type server struct {
		client  *goredis.Client
		advance func(time.Duration)
		clock   *storetest.Clock
		opts    []redis.Option
		first   []string
		each    string
	}
	servers := map[string]func(t *testing.T) server{
		"miniredis": func(t *testing.T) server {
			m := miniredis.RunT(t)
			m.SetTime(start)
			clock := storetest.NewClock(start)
			c := goredis.NewClient(&goredis.Options{Addr: m.Addr(), ContextTimeoutEnabled: true})
			t.Cleanup(func() { c.Close() })
			return server{c, func(d time.Duration) { clock.Advance(d); m.SetTime(clock.Now()) }, clock, nil,
				[]string{"fcall", "evalsha", "eval"}, "evalsha"}
		},
	}
	if addr := os.Getenv("WAITINGROOM_REDIS_ADDR"); addr != "" {
		servers["redis"] = func(t *testing.T) server {
			clock := storetest.NewClock(start)
			c := goredis.NewClient(&goredis.Options{Addr: addr, ContextTimeoutEnabled: true})
			t.Cleanup(func() { c.Close() }) // after the keys are deleted
			// Our own library only; other tests on this server load it again as they need.
			c.FunctionDelete(t.Context(), redis.LibName)
			prefix := "wrtest-" + randomHex(6)
			t.Cleanup(func() { deletePrefix(t, c, prefix) })
			return server{c, clock.Advance, clock, []redis.Option{redis.WithPrefix(prefix), redis.WithClock(clock.Now)},
				[]string{"fcall", "function", "fcall"}, "fcall"}
		}
	} else {
		t.Log("real Redis skipped: set WAITINGROOM_REDIS_ADDR=127.0.0.1:6379 to count on it too")
	}
	for name, mk := range servers {
		t.Run(name, func(t *testing.T) {
			sv := mk(t)
			counter := &commandCounter{}
			sv.client.AddHook(counter)
			st, err := redis.New(sv.client, sv.opts...)
			if err != nil {
				t.Fatal(err)
			}
			room, err := waitingroom.New("count", st, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1},
				waitingroom.WithKeys(testKey), waitingroom.WithClock(sv.clock.Now))
			if err != nil {
				t.Fatal(err)
			}
			h := middleware.Protect(room, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			get := func(cookie string) *http.Response {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				if cookie != "" {
					r.AddCookie(&http.Cookie{Name: "wr_count", Value: cookie})
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w.Result()
			}
			cookie := func(resp *http.Response, old string) string {
				for _, c := range resp.Cookies() {
					if c.Name == "wr_count" {
						return c.Value
					}
				}
				return old
			}
			one := func(what string) {
				t.Helper()
				if cmds := counter.take(); len(cmds) != 1 || cmds[0] != sv.each {
					t.Fatalf("%s: %v, want one %s", what, cmds, sv.each)
				}
			}
			a := cookie(get(""), "")
			if cmds := counter.take(); !slices.Equal(cmds, sv.first) {
				t.Fatalf("first join: %v, want %v", cmds, sv.first)
			}
			b := cookie(get(""), "")
			one("join")
			for range 5 {
				sv.advance(5 * time.Second)
				get(a)
				if cmds := counter.take(); len(cmds) != 0 {
					t.Fatalf("admitted request: %v, want none", cmds)
				}
			}
			sv.advance(20 * time.Second)
			b = cookie(get(b), b)
			one("poll")
			sv.advance(5 * time.Second)
			get(b)
			if cmds := counter.take(); len(cmds) != 0 {
				t.Fatalf("early poll: %v, want none", cmds)
			}
			sv.advance(time.Minute) // past RenewInterval: one renewal
			get(a)
			one("renewal")
		})
	}
}

// TestUnresponsiveRedisTimesOut points the store at a server that accepts connections and
// never answers: every call ends at the room's deadline with an error, and the middleware
// answers 503 instead of hanging.
func TestUnresponsiveRedisTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // read nothing, answer nothing
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	client := goredis.NewClient(&goredis.Options{Addr: ln.Addr().String(), ContextTimeoutEnabled: true, MaxRetries: -1})
	defer client.Close()
	st, err := redis.New(client)
	if err != nil {
		t.Fatal(err)
	}
	room, err := waitingroom.New("slow", st, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1},
		waitingroom.WithStoreTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var reported error
	h := middleware.Protect(room, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}),
		middleware.WithErrorHandler(func(r *http.Request, err error) { reported = err }))
	began := time.Now()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	if took := time.Since(began); took > 2*time.Second {
		t.Fatalf("the request took %v against a silent Redis; the store timeout is 100ms", took)
	}
	if w.Code != http.StatusServiceUnavailable || !errors.Is(reported, waitingroom.ErrStore) || !errors.Is(reported, context.DeadlineExceeded) {
		t.Fatalf("got %d, error %v; want 503 and a deadline error", w.Code, reported)
	}
}

func TestNewRefusesClientsWithoutDeadlines(t *testing.T) {
	c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if _, err := redis.New(c); !errors.Is(err, redis.ErrNoDeadlines) {
		t.Fatalf("New: %v, want ErrNoDeadlines", err)
	}
	cc := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer cc.Close()
	for _, p := range []string{"", "a{b", "x}"} {
		if _, err := redis.New(cc, redis.WithPrefix(p)); !errors.Is(err, redis.ErrPrefix) {
			t.Errorf("WithPrefix(%q): %v, want ErrPrefix", p, err)
		}
	}
}

// TestNoFunctionsForThisUser: a server whose ACL denies this client FCALL and FUNCTION still
// serves the room, through scripts.
func TestNoFunctionsForThisUser(t *testing.T) {
	admin := realClient(t)
	user, pass := "wrtest-"+randomHex(6), randomHex(12)
	ctx := t.Context()
	if err := admin.Do(ctx, "ACL", "SETUSER", user, "on", ">"+pass, "~*", "+@all", "-fcall", "-function").Err(); err != nil {
		t.Skipf("cannot make an ACL user here: %v", err)
	}
	t.Cleanup(func() { admin.Do(context.Background(), "ACL", "DELUSER", user) })
	c := goredis.NewClient(&goredis.Options{Addr: os.Getenv("WAITINGROOM_REDIS_ADDR"), Username: user, Password: pass, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	h := realHarness(t, c)
	l := admission.Limits{Capacity: 1, PerMinute: 1, Session: time.Minute, Renewal: true, Hold: time.Minute, Grace: 20 * time.Second}
	for i := range 3 {
		res, err := h.Store.Join(ctx, "acl", l)
		if err != nil || res.Admitted != (i == 0) {
			t.Fatalf("join %d without Functions: %+v, %v", i, res, err)
		}
	}
}

// TestRemoveOldLibraries: libraries of other versions go, this version's stays, and so do
// libraries that are not the store's.
func TestRemoveOldLibraries(t *testing.T) {
	c := realClient(t)
	ctx := t.Context()
	lib := func(name string) string {
		return "#!lua name=" + name + "\nredis.register_function('" + name + "_f', function() return 1 end)\n"
	}
	old, other := "waitingroom_000000000000", "wrtest_"+randomHex(6)
	for _, name := range []string{old, other} {
		if err := c.FunctionLoadReplace(ctx, lib(name)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { c.FunctionDelete(context.Background(), other) })
	prefix := "wrtest-" + randomHex(6)
	t.Cleanup(func() { deletePrefix(t, c, prefix) })
	st, err := redis.New(c, redis.WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Join(ctx, "lib", admission.Limits{Capacity: 1, PerMinute: 1, Session: time.Minute, Hold: time.Minute, Grace: 20 * time.Second}); err != nil {
		t.Fatal(err) // loads this version's library
	}
	n, err := st.RemoveOldLibraries(ctx)
	if err != nil || n < 1 {
		t.Fatalf("RemoveOldLibraries: %d, %v", n, err)
	}
	libs, err := c.FunctionList(ctx, goredis.FunctionListQuery{}).Result()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, l := range libs {
		have[l.Name] = true
	}
	if have[old] || !have[redis.LibName] || !have[other] {
		t.Fatalf("after RemoveOldLibraries: %v; want %s gone, %s and %s kept", have, old, redis.LibName, other)
	}
}

// The control-plane issue's scenario on Redis (miniredis, and a real server when
// WAITINGROOM_REDIS_ADDR is set): two app instances of one room, one configured for 2
// active and one for 20. The first to reach the store seeds its settings; the other runs by
// them and adopts them: 2 active, not 20, and no more than 2 admissions in the window.
func TestInstancesWithDifferentConfigsOnRedis(t *testing.T) {
	clients := map[string]goredis.UniversalClient{}
	m := miniredis.RunT(t)
	clients["miniredis"] = goredis.NewClient(&goredis.Options{Addr: m.Addr(), ContextTimeoutEnabled: true})
	if os.Getenv("WAITINGROOM_REDIS_ADDR") != "" {
		clients["redis"] = realClient(t)
	}
	for name, client := range clients {
		t.Run(name, func(t *testing.T) {
			prefix := "wrtest-" + randomHex(6)
			t.Cleanup(func() { deletePrefix(t, client, prefix) })
			var rooms []*waitingroom.Room
			for _, capacity := range []int{2, 20} {
				st, err := redis.New(client, redis.WithPrefix(prefix))
				if err != nil {
					t.Fatal(err)
				}
				r, err := waitingroom.New("booking", st, waitingroom.Config{TotalActiveUsers: capacity, NewUsersPerMinute: capacity}, waitingroom.WithKeys(testKey))
				if err != nil {
					t.Fatal(err)
				}
				rooms = append(rooms, r)
			}
			ctx := context.Background()
			admitted := 0
			for i := range 40 {
				v, err := rooms[i%2].Enter(ctx, "")
				if err != nil {
					t.Fatal(err)
				}
				if v.Outcome == waitingroom.Admitted {
					admitted++
				}
			}
			st, err := rooms[1].Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if admitted != 2 || st.Active != 2 || st.Window != 2 {
				t.Errorf("two instances (2 and 20) admitted %d; the store holds %d active, %d in the window; want 2, 2, 2", admitted, st.Active, st.Window)
			}
			if c := rooms[1].Config(); c.TotalActiveUsers != 2 || rooms[1].Version() != 1 {
				t.Errorf("the second instance runs by %d active at version %d, want the stored 2 at version 1", c.TotalActiveUsers, rooms[1].Version())
			}
		})
	}
}
