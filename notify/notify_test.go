package notify_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/notify"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/memory"
	"github.com/waitingroom-go/waitingroom/store/redis"
	"github.com/waitingroom-go/waitingroom/store/storetest"
	"github.com/waitingroom-go/waitingroom/token"
)

var start = time.Date(2026, 12, 8, 9, 0, 0, 0, time.UTC)

// receiver is a webhook endpoint that keeps what it got; fail answers the first n posts
// with 500.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []notify.Message
	posts  []*http.Request
	bodies [][]byte
	fail   int
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		rc.posts = append(rc.posts, r)
		rc.bodies = append(rc.bodies, body)
		if rc.fail > 0 {
			rc.fail--
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		var m notify.Message
		if err := json.Unmarshal(body, &m); err != nil {
			t.Errorf("a body that is not a message: %s", body)
		}
		rc.got = append(rc.got, m)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) events() map[string][]notify.Message {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[string][]notify.Message{}
	for _, m := range rc.got {
		out[m.Event] = append(out[m.Event], m)
	}
	return out
}

// instance is one app instance: its store client, its room and its notifier.
type instance struct {
	room *waitingroom.Room
	n    *notify.Notifier
}

// TestOnceAcrossInstances fills a room served by three instances, each with its notifier
// and a clock of its own, and counts what the receiver got: one activation, the periodic
// ones on time by the store's clock, one stop, one settings change naming who.
func TestOnceAcrossInstances(t *testing.T) {
	type backend struct {
		stores func(t *testing.T, clock *storetest.Clock) [3]store.Store
	}
	backends := map[string]backend{
		"memory": {func(t *testing.T, clock *storetest.Clock) [3]store.Store {
			s := memory.New(memory.WithClock(clock.Now))
			return [3]store.Store{s, s, s}
		}},
	}
	if addr := os.Getenv("WAITINGROOM_REDIS_ADDR"); addr != "" {
		backends["redis"] = backend{func(t *testing.T, clock *storetest.Clock) [3]store.Store {
			var id [6]byte
			rand.Read(id[:])
			prefix := "wrtest-notify-" + hex.EncodeToString(id[:])
			var out [3]store.Store
			for i := range out {
				c := goredis.NewClient(&goredis.Options{Addr: addr, ContextTimeoutEnabled: true})
				t.Cleanup(func() { c.Close() })
				if i == 0 {
					t.Cleanup(func() { deletePrefix(t, c, prefix) })
				}
				s, err := redis.New(c, redis.WithPrefix(prefix), redis.WithClock(clock.Now))
				if err != nil {
					t.Fatal(err)
				}
				out[i] = s
			}
			return out
		}}
	} else {
		t.Log("real Redis skipped: set WAITINGROOM_REDIS_ADDR=127.0.0.1:6379 to run on it too")
	}
	for name, b := range backends {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			clock := storetest.NewClock(start)
			rc := newReceiver(t)
			key, err := token.GenerateKey("k1")
			if err != nil {
				t.Fatal(err)
			}
			cfg := waitingroom.Config{TotalActiveUsers: 10, NewUsersPerMinute: 10, SessionDuration: 2 * time.Hour}
			var ins [3]instance
			var wg sync.WaitGroup
			for i, st := range b.stores(t, clock) {
				in := &ins[i]
				// The instances' clocks disagree (0, +90 s, -90 s): the spell is named and timed
				// by the store's clock all the same.
				skew := time.Duration([]int{0, 90, -90}[i]) * time.Second
				appClock := func() time.Time { return clock.Now().Add(skew) }
				in.n, err = notify.New(rc.URL, st.(store.Once), func(id string) (*waitingroom.Room, bool) { return in.room, id == "vaccines" },
					notify.WithClock(appClock), notify.WithTick(0), notify.WithRefresh(30*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				in.room, err = waitingroom.New("vaccines", st, cfg, waitingroom.WithKeys(key), waitingroom.WithClock(clock.Now),
					waitingroom.WithHook(in.n.Hook()))
				if err != nil {
					t.Fatal(err)
				}
				wg.Go(func() { in.n.Run(ctx) })
			}
			defer wg.Wait()
			defer cancel()
			check := func() {
				t.Helper()
				for _, in := range ins {
					in.n.Check(ctx)
				}
				fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
				defer fcancel()
				for _, in := range ins {
					if err := in.n.Flush(fctx); err != nil {
						t.Fatalf("flush: %v", err)
					}
				}
			}

			// 30 visitors at 9:00, through the three instances in turn: 10 in, 20 wait.
			var passes []token.Pass
			var tickets []string
			for i := range 30 {
				v, err := ins[i%3].room.Enter(ctx, "")
				if err != nil {
					t.Fatal(err)
				}
				switch v.Outcome {
				case waitingroom.Admitted:
					passes = append(passes, v.Pass)
				case waitingroom.Waiting:
					tickets = append(tickets, v.Token)
				default:
					t.Fatalf("visitor %d: %v", i, v.Outcome)
				}
			}
			if len(passes) != 10 || len(tickets) != 20 {
				t.Fatalf("%d admitted, %d waiting; want 10 and 20", len(passes), len(tickets))
			}
			check()
			if ev := rc.events(); len(ev["queueing"]) != 1 || *ev["queueing"][0].Waiting < 1 || !ev["queueing"][0].At.Equal(start) {
				t.Fatalf("after the crowd came: %+v; want one queueing message at %v", ev, start)
			}

			// Every minute for 40, the waiters poll (each through the next instance) and
			// every notifier checks: the periodic ones come at 5, 10, ... 30 minutes.
			poll := func(minute int) {
				t.Helper()
				for i, tk := range tickets {
					v, err := ins[(i+minute)%3].room.Enter(ctx, tk)
					if err != nil {
						t.Fatal(err)
					}
					if v.Token != "" {
						tickets[i] = v.Token
					}
					if v.Outcome == waitingroom.Admitted {
						passes = append(passes, v.Pass)
						tickets[i] = ""
					}
				}
				live := tickets[:0]
				for _, tk := range tickets {
					if tk != "" {
						live = append(live, tk)
					}
				}
				tickets = live
			}
			for minute := 1; minute <= 40; minute++ {
				clock.Advance(time.Minute)
				poll(minute)
				check()
			}
			ev := rc.events()
			if len(ev["queueing"]) != 1 || len(ev["stopped"]) != 0 {
				t.Fatalf("after 40 minutes: %d queueing, %d stopped; want 1 and 0", len(ev["queueing"]), len(ev["stopped"]))
			}
			if got := ev["queueing_update"]; len(got) != 6 {
				t.Fatalf("periodic messages: %d, want 6 (5 to 30 min): %+v", len(got), got)
			}
			for k, m := range ev["queueing_update"] {
				want := start.Add(time.Duration(k+1) * 5 * time.Minute)
				if !m.At.Equal(want) || m.Minutes != int64(5*(k+1)) || *m.Waiting != 20 {
					t.Errorf("periodic message %d: at %v, %d min, %d waiting; want at %v, %d min, 20 waiting", k, m.At, m.Minutes, *m.Waiting, want, 5*(k+1))
				}
			}

			// An operator changes the cap through instance 2: one message, naming who.
			c, v := ins[1].room.Settings()
			c.TotalActiveUsers = 40
			c.NewUsersPerMinute = 40
			if _, err := ins[1].room.Update(ctx, c, v, store.Change{By: "ops-alice", What: "patch"}); err != nil {
				t.Fatal(err)
			}
			check()
			if got := rc.events()["settings"]; len(got) != 1 || got[0].By != "ops-alice" || !strings.Contains(got[0].Text, "capacity 10 → 40") {
				t.Fatalf("settings messages: %+v; want one by ops-alice naming the capacity", got)
			}

			// The waiters go in; once nobody has waited for a minute, one stop.
			for minute := 41; len(tickets) > 0 && minute < 50; minute++ {
				clock.Advance(time.Minute)
				poll(minute)
				check()
			}
			if len(tickets) > 0 {
				t.Fatalf("%d still waiting after the cap was raised", len(tickets))
			}
			for range 3 {
				clock.Advance(30 * time.Second)
				check()
			}
			ev = rc.events()
			if len(ev["stopped"]) != 1 || len(ev["queueing"]) != 1 || len(ev["queueing_update"]) != 6 || len(ev["settings"]) != 1 {
				t.Fatalf("at the end: %d stopped, %d queueing, %d periodic, %d settings; want 1, 1, 6, 1", len(ev["stopped"]), len(ev["queueing"]), len(ev["queueing_update"]), len(ev["settings"]))
			}
			for _, in := range ins {
				if s := in.n.Stats(); s.Failed != 0 || s.Dropped != 0 || s.LostSignals != 0 {
					t.Errorf("notifier stats: %+v", s)
				}
			}

			// A new crowd: a new spell, announced again.
			for i := range 60 {
				if _, err := ins[i%3].room.Enter(ctx, ""); err != nil {
					t.Fatal(err)
				}
			}
			check()
			if got := rc.events()["queueing"]; len(got) != 2 {
				t.Fatalf("a second crowd: %d queueing messages, want 2", len(got))
			}
		})
	}
}

// one is a room on a memory store, at the store's simulated clock, with its notifier
// running until the test ends.
type one struct {
	t     *testing.T
	ctx   context.Context
	clock *storetest.Clock
	st    *memory.Store
	rm    *waitingroom.Room
	n     *notify.Notifier
}

// newOne makes room "forms" with cfg and its notifier, posting to endpoint with opts
// (after the test's defaults: the store's clock, no tick, no log) and claiming through
// claims(st) (st itself when nil).
func newOne(t *testing.T, endpoint string, claims func(*memory.Store) store.Once, cfg waitingroom.Config, opts ...notify.Option) *one {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	o := &one{t: t, ctx: ctx, clock: storetest.NewClock(start)}
	o.st = memory.New(memory.WithClock(o.clock.Now))
	var once store.Once = o.st
	if claims != nil {
		once = claims(o.st)
	}
	defaults := []notify.Option{notify.WithClock(o.clock.Now), notify.WithTick(0), notify.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))}
	var err error
	if o.n, err = notify.New(endpoint, once, func(string) (*waitingroom.Room, bool) { return o.rm, true }, append(defaults, opts...)...); err != nil {
		t.Fatal(err)
	}
	if o.rm, err = waitingroom.New("forms", o.st, cfg, waitingroom.WithClock(o.clock.Now), waitingroom.WithHook(o.n.Hook())); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { o.n.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return o
}

// check applies the rules and waits for what they sent to be delivered.
func (o *one) check() {
	o.t.Helper()
	o.n.Check(o.ctx)
	ctx, cancel := context.WithTimeout(o.ctx, 10*time.Second)
	defer cancel()
	if err := o.n.Flush(ctx); err != nil {
		o.t.Fatal(err)
	}
}

// join brings k newcomers.
func (o *one) join(k int) {
	o.t.Helper()
	for range k {
		if _, err := o.rm.Enter(o.ctx, ""); err != nil {
			o.t.Fatal(err)
		}
	}
}

// change has "ops" change the room's settings with f.
func (o *one) change(what string, f func(*waitingroom.Config)) {
	o.t.Helper()
	c, v := o.rm.Settings()
	f(&c)
	if _, err := o.rm.Update(o.ctx, c, v, store.Change{By: "ops", What: what}); err != nil {
		o.t.Fatal(err)
	}
}

// A receiver that answers 500 and then recovers gets the message again, once, with the
// same delivery ID; a signed one can be checked.
func TestRetryAndSignature(t *testing.T) {
	rc := newReceiver(t)
	rc.fail = 1
	secret := []byte("0123456789abcdef0123456789abcdef")
	o := newOne(t, rc.URL, nil, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1},
		notify.WithRetry(time.Millisecond, time.Minute), notify.WithSecret(secret))
	o.join(2)
	o.check()
	n := o.n
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.posts) != 2 || len(rc.got) != 1 || rc.got[0].Event != "queueing" {
		t.Fatalf("%d posts, %d accepted (%+v); want 2 posts (500, then 200) and one message", len(rc.posts), len(rc.got), rc.got)
	}
	if a, b := rc.posts[0].Header.Get("Waitingroom-Delivery"), rc.posts[1].Header.Get("Waitingroom-Delivery"); a == "" || a != b || !bytes.Equal(rc.bodies[0], rc.bodies[1]) {
		t.Fatalf("the retry is another delivery: %q, %q", a, b)
	}
	if s := n.Stats(); s.Sent != 1 || s.Retried != 1 || s.Failed != 0 {
		t.Fatalf("stats: %+v; want 1 sent, 1 retried", s)
	}
	sig := rc.posts[1].Header.Get("Waitingroom-Signature")
	ts, mac, ok := strings.Cut(strings.TrimPrefix(sig, "t="), ",v1=")
	if !ok {
		t.Fatalf("signature header %q", sig)
	}
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts + "."))
	h.Write(rc.bodies[1])
	if want := hex.EncodeToString(h.Sum(nil)); mac != want {
		t.Fatalf("signature %s, want %s", mac, want)
	}
	if !strings.Contains(string(rc.bodies[1]), `"text":"Room forms started queueing`) {
		t.Fatalf("body: %s", rc.bodies[1])
	}
}

// A full queue drops what does not fit, and says so in the log and the stats; nothing
// logged names the endpoint's secret path.
func TestQueueFullDrops(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(start)
	st := memory.New(memory.WithClock(clock.Now))
	var logs bytes.Buffer
	var rm *waitingroom.Room
	n, err := notify.New("https://hooks.example.com/services/T000/B000/SECRETPATH", st, func(string) (*waitingroom.Room, bool) { return rm, true },
		notify.WithClock(clock.Now), notify.WithTick(0), notify.WithQueue(1), notify.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	rm, err = waitingroom.New("forms", st, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1},
		waitingroom.WithClock(clock.Now), waitingroom.WithHook(n.Hook()))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // three changes, nobody delivering: one queued, two dropped
		c, v := rm.Settings()
		c.TotalActiveUsers = 2 + i
		if _, err := rm.Update(ctx, c, v, store.Change{By: "ops", What: "patch"}); err != nil {
			t.Fatal(err)
		}
	}
	n.Check(ctx)
	if s := n.Stats(); s.Dropped != 2 {
		t.Fatalf("stats: %+v; want 2 dropped", s)
	}
	if !strings.Contains(logs.String(), "notification dropped") || strings.Contains(logs.String(), "SECRETPATH") {
		t.Fatalf("log: %s", logs.String())
	}
	if s := n.String(); strings.Contains(s, "SECRETPATH") {
		t.Fatalf("String prints the secret path: %s", s)
	}
}

func TestNewRefusesBadInput(t *testing.T) {
	st := memory.New()
	lookup := func(string) (*waitingroom.Room, bool) { return nil, false }
	for _, tc := range []struct {
		name string
		url  string
		st   store.Once
		opts []notify.Option
	}{
		{"no scheme", "hooks.example.com/x", st, nil},
		{"ftp", "ftp://example.com/x", st, nil},
		{"nil store", "https://example.com/x", nil, nil},
		{"nil memory store", "https://example.com/x", (*memory.Store)(nil), nil},
		{"short secret", "https://example.com/x", st, []notify.Option{notify.WithSecret([]byte("short"))}},
		{"periodic under a minute", "https://example.com/x", st, []notify.Option{notify.WithPeriodic(time.Second, time.Minute)}},
		{"empty queue", "https://example.com/x", st, []notify.Option{notify.WithQueue(0)}},
		{"negative age", "https://example.com/x", st, []notify.Option{notify.WithRetry(time.Second, -1)}},
	} {
		if _, err := notify.New(tc.url, tc.st, lookup, tc.opts...); err == nil {
			t.Errorf("%s: New succeeded", tc.name)
		}
	}
}

func deletePrefix(t *testing.T, c *goredis.Client, prefix string) {
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	for iter.Next(ctx) {
		c.Del(ctx, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Errorf("deleting the test's keys: %v", err)
	}
}

// Thresholds on the waiting count and a newcomer's wait are sent once per spell.
func TestThresholds(t *testing.T) {
	rc := newReceiver(t)
	o := newOne(t, rc.URL, nil, waitingroom.Config{TotalActiveUsers: 2, NewUsersPerMinute: 2, SessionDuration: time.Hour},
		notify.WithRefresh(time.Second), notify.WithThresholds(15, 10*time.Minute))
	ctx, clock, rm := o.ctx, o.clock, o.rm
	var passes []token.Pass
	var tickets []string
	// step brings joins more visitors, then a minute later lets the two inside go and
	// everyone waiting poll (two go in), and checks.
	step := func(joins int) map[string][]notify.Message {
		t.Helper()
		for range joins {
			v, err := rm.Enter(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			if v.Outcome == waitingroom.Admitted {
				passes = append(passes, v.Pass)
			} else {
				tickets = append(tickets, v.Token)
			}
		}
		clock.Advance(time.Minute)
		for _, p := range passes {
			rm.Release(ctx, p)
		}
		passes = nil
		waiting := tickets[:0]
		for _, tk := range tickets {
			v, err := rm.Enter(ctx, tk)
			if err != nil {
				t.Fatal(err)
			}
			if v.Outcome == waitingroom.Admitted {
				passes = append(passes, v.Pass)
			} else {
				waiting = append(waiting, v.Token)
			}
		}
		tickets = waiting
		o.check()
		return rc.events()
	}
	if ev := step(12); len(ev["queueing"]) != 1 || len(ev["threshold_waiting"]) != 0 || len(ev["threshold_wait"]) != 0 {
		t.Fatalf("8 waiting: %v", ev)
	}
	ev := step(12) // 18 waiting, two a minute: a newcomer waits about 9 minutes
	if got := ev["threshold_waiting"]; len(got) != 1 || got[0].Threshold != 15 || *got[0].Waiting != 18 {
		t.Fatalf("18 waiting: %+v; want one waiting threshold", got)
	}
	if got := ev["threshold_wait"]; len(got) != 0 {
		t.Fatalf("a wait under 10 minutes: %+v; want no wait threshold", got)
	}
	ev = step(12) // 28 waiting: about 14 minutes
	snap, err := rm.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := ev["threshold_wait"]; !snap.Wait.Known || snap.Wait.P50 < 10*time.Minute || len(got) != 1 || got[0].ThresholdSeconds != 600 || !strings.Contains(got[0].Text, "threshold 10 minutes") {
		t.Fatalf("a newcomer waits %+v: %+v; want one wait threshold", snap.Wait, got)
	}
	if ev := step(12); len(ev["threshold_waiting"]) != 1 || len(ev["threshold_wait"]) != 1 {
		t.Fatalf("38 waiting: the thresholds again: %v", ev)
	}
}

// flakyOnce fails its first fail claims.
type flakyOnce struct {
	store.Once
	mu   sync.Mutex
	fail int
}

func (f *flakyOnce) Claim(ctx context.Context, room, key string, ttl time.Duration) (store.Claim, error) {
	f.mu.Lock()
	if f.fail > 0 {
		f.fail--
		f.mu.Unlock()
		return store.Claim{}, errors.New("store down")
	}
	f.mu.Unlock()
	return f.Once.Claim(ctx, room, key, ttl)
}

// A spell whose claim failed (the store was down) is claimed at a check once the room's
// store has been left alone for a while, and announced then, once.
func TestClaimRetried(t *testing.T) {
	rc := newReceiver(t)
	o := newOne(t, rc.URL, func(st *memory.Store) store.Once { return &flakyOnce{Once: st, fail: 1} },
		waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1})
	o.join(3)
	o.check() // the claim failed at the signal: the room's store is left alone for a while
	if got := rc.events()["queueing"]; len(got) != 0 {
		t.Fatalf("queueing messages right after a failed claim: %d, want 0 (not asked again yet)", len(got))
	}
	o.clock.Advance(11 * time.Second)
	o.check()
	if got := rc.events()["queueing"]; len(got) != 1 {
		t.Fatalf("queueing messages after a failed claim: %d, want 1", len(got))
	}
}

// A receiver that is down loses only what overflows the queue: the notification in flight
// and those queued behind it are delivered, in order, once it is back.
func TestReceiverDownLosesOnlyTheOverflow(t *testing.T) {
	first, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var posts int
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		posts++
		n := posts
		mu.Unlock()
		if n == 1 {
			close(first)
			<-release
		}
		if n <= 6 {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		var m notify.Message
		json.Unmarshal(b, &m)
		mu.Lock()
		got = append(got, m.Text)
		mu.Unlock()
	}))
	defer srv.Close()
	defer close(release)
	o := newOne(t, srv.URL, nil, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1},
		notify.WithQueue(2), notify.WithRetry(time.Millisecond, time.Minute))
	ctx, n := o.ctx, o.n
	change := func(capacity int) {
		t.Helper()
		o.change("patch", func(c *waitingroom.Config) { c.TotalActiveUsers = capacity })
		n.Check(ctx)
	}
	change(2)
	select {
	case <-first: // the first is in flight, and the receiver hangs
	case <-time.After(10 * time.Second):
		t.Fatal("the first notification was not posted")
	}
	for c := 3; c <= 5; c++ { // two wait in the queue, the third overflows
		change(c)
	}
	release <- struct{}{}
	fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
	defer fcancel()
	if err := n.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"capacity 1 → 2", "capacity 2 → 3", "capacity 3 → 4"}
	if len(got) != len(want) {
		t.Fatalf("delivered %q, want the three of %q", got, want)
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("delivery %d: %q, want %q", i, got[i], want[i])
		}
	}
	if s := n.Stats(); s.Sent != 3 || s.Dropped != 1 || s.Failed != 0 || s.Retried != 6 {
		t.Fatalf("stats: %+v; want 3 sent, 1 dropped (the overflow), none failed, 6 retries", s)
	}
}

// An instance that served nobody while the spell it followed ended (another instance
// stopped it) and the next one began follows the next one: no notification by the old
// spell's clock, each of the new one's once.
func TestSpellEndedElsewhere(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock := storetest.NewClock(start)
	st := memory.New(memory.WithClock(clock.Now))
	rc := newReceiver(t)
	key, err := token.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	cfg := waitingroom.Config{TotalActiveUsers: 10, NewUsersPerMinute: 10, SessionDuration: 2 * time.Hour}
	mk := func(refresh time.Duration) (*waitingroom.Room, *notify.Notifier) {
		var rm *waitingroom.Room
		n, err := notify.New(rc.URL, st, func(string) (*waitingroom.Room, bool) { return rm, true },
			notify.WithClock(clock.Now), notify.WithTick(0), notify.WithRefresh(refresh))
		if err != nil {
			t.Fatal(err)
		}
		rm, err = waitingroom.New("vaccines", st, cfg, waitingroom.WithKeys(key), waitingroom.WithClock(clock.Now), waitingroom.WithHook(n.Hook()))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { n.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		return rm, n
	}
	a, na := mk(10 * time.Second)
	b, nb := mk(10 * time.Minute) // B reads the room's counters rarely
	check := func() {
		t.Helper()
		na.Check(ctx)
		nb.Check(ctx)
		fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
		defer fcancel()
		for _, n := range []*notify.Notifier{na, nb} {
			if err := n.Flush(fctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	var tickets []string
	join := func(rm *waitingroom.Room, k int) {
		t.Helper()
		for range k {
			v, err := rm.Enter(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			if v.Outcome == waitingroom.Waiting {
				tickets = append(tickets, v.Token)
			}
		}
	}
	pollAll := func() { // through A only: B serves nobody
		t.Helper()
		live := tickets[:0]
		for _, tk := range tickets {
			v, err := a.Enter(ctx, tk)
			if err != nil {
				t.Fatal(err)
			}
			if v.Outcome == waitingroom.Waiting {
				live = append(live, v.Token)
			}
		}
		tickets = live
	}
	join(a, 10)
	join(b, 5) // B sees its crowd wait: it follows spell 1
	join(a, 5) // and so does A
	check()
	// A raises the cap and lets everyone in; only A hears the queue drain, and stops it.
	clock.Advance(time.Minute)
	c, v := a.Settings()
	c.TotalActiveUsers, c.NewUsersPerMinute = 100, 100
	if _, err := a.Update(ctx, c, v, store.Change{By: "ops", What: "patch"}); err != nil {
		t.Fatal(err)
	}
	pollAll()
	if len(tickets) != 0 {
		t.Fatalf("%d still waiting", len(tickets))
	}
	check()
	clock.Advance(70 * time.Second)
	check()
	if ev := rc.events(); len(ev["stopped"]) != 1 {
		t.Fatalf("after the drain: %d stopped, want 1", len(ev["stopped"]))
	}
	// A second crowd, through A: spell 2.
	clock.Advance(50 * time.Second)
	spell2 := clock.Now()
	join(a, 200)
	check()
	for range 40 {
		clock.Advance(time.Minute)
		pollAll()
		check()
	}
	ev := rc.events()
	if len(ev["queueing"]) != 2 || len(ev["stopped"]) != 1 {
		t.Fatalf("%d queueing, %d stopped; want 2 and 1", len(ev["queueing"]), len(ev["stopped"]))
	}
	if got := ev["queueing_update"]; len(got) != 6 {
		for _, m := range got {
			t.Logf("%v %s", m.At, m.Text)
		}
		t.Fatalf("periodic messages: %d, want spell 2's six", len(got))
	}
	for k, m := range ev["queueing_update"] {
		if want := spell2.Add(time.Duration(k+1) * 5 * time.Minute); !m.At.Equal(want) {
			t.Errorf("periodic message %d at %v, want %v (by spell 2's clock)", k, m.At, want)
		}
	}
}

// flakyUnclaim fails its first fail unclaims.
type flakyUnclaim struct {
	store.Once
	mu   sync.Mutex
	fail int
}

func (f *flakyUnclaim) Unclaim(ctx context.Context, room, key string, at time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail > 0 {
		f.fail--
		return errors.New("store down")
	}
	return f.Once.Unclaim(ctx, room, key, at)
}

// A spell whose claim could not be removed when it stopped is removed at a later check:
// the next spell is announced, not taken for the old one.
func TestUnclaimRetried(t *testing.T) {
	rc := newReceiver(t)
	o := newOne(t, rc.URL, func(st *memory.Store) store.Once { return &flakyUnclaim{Once: st, fail: 1} },
		waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1, SessionDuration: time.Hour})
	o.join(3)
	o.check()
	// Their places lapse: nobody waits; a minute later the spell stops, its unclaim fails.
	o.clock.Advance(6 * time.Minute)
	o.check()
	o.clock.Advance(2 * time.Minute)
	o.check()
	o.check() // the unclaim again
	if ev := rc.events(); len(ev["queueing"]) != 1 || len(ev["stopped"]) != 1 {
		t.Fatalf("%v; want one queueing, one stopped", ev)
	}
	o.clock.Advance(time.Minute)
	o.join(3)
	o.check()
	if ev := rc.events(); len(ev["queueing"]) != 2 {
		t.Fatalf("the next crowd: %d queueing messages, want 2", len(ev["queueing"]))
	}
}

// A settings change whose claim failed (the store down) is claimed and sent at a later
// check.
func TestChangeClaimRetried(t *testing.T) {
	rc := newReceiver(t)
	o := newOne(t, rc.URL, func(st *memory.Store) store.Once { return &flakyOnce{Once: st, fail: 1} },
		waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1})
	o.change("suspend", func(c *waitingroom.Config) { c.Suspended = true })
	o.check()
	o.clock.Advance(11 * time.Second)
	o.check()
	if got := rc.events()["settings"]; len(got) != 1 || !strings.Contains(got[0].Text, "ops suspended the room") {
		t.Fatalf("settings messages after a failed claim: %+v, want one", got)
	}
}
