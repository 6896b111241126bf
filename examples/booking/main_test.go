package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/waitingroom-go/waitingroom/token"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

// TestBookingWalkthrough walks two visitors through the example with one slot: the first
// books, which releases the slot; the second waits, then gets the form.
func TestBookingWalkthrough(t *testing.T) {
	t.Setenv("WAITINGROOM_KEY", "")
	clk := &clock{now: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)}
	h, err := build(options{total: 1, perMinute: 1, session: 2 * time.Minute, refresh: 5 * time.Second, store: "memory"}, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	alice, bob := client(t), client(t)

	code, body := get(t, alice, srv.URL+"/")
	if code != 200 || !strings.Contains(body, "Book your vaccination") {
		t.Fatalf("alice: %d %q", code, body)
	}
	code, body = get(t, bob, srv.URL+"/")
	if code != 200 || !strings.Contains(body, "You are in the queue") || !strings.Contains(body, `id="ahead">0<`) ||
		!strings.Contains(body, `http-equiv="refresh" content="5"`) {
		t.Fatalf("bob should wait with 0 ahead and a 5 s refresh: %d %q", code, body)
	}
	if code, _ := get(t, bob, srv.URL+"/healthz"); code != 200 {
		t.Fatalf("healthz behind the room: %d", code)
	}

	resp, err := alice.PostForm(srv.URL+"/reserve", url.Values{"name": {"Alice"}, "slot": {"09:15"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "booked for <strong>09:15</strong>") {
		t.Fatalf("alice's booking: %d %q", resp.StatusCode, b)
	}

	// The rate allows one a minute: bob gets in at the first poll a minute after alice.
	clk.Advance(61 * time.Second)
	code, body = get(t, bob, srv.URL+"/")
	if code != 200 || !strings.Contains(body, "Book your vaccination") {
		t.Fatalf("bob after alice booked: %d %q", code, body)
	}
	// Alice's session ended with her booking: she queues like anyone new.
	code, body = get(t, alice, srv.URL+"/")
	if !strings.Contains(body, "You are in the queue") {
		t.Fatalf("alice after booking: %d %q", code, body)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-store", "mongodb://x"}, {"-total-active", "0"}, {"-nope"}, {"-method", "lifo"}} {
		if err := run(args); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}

func client(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestTwoProcessesShareOneRoom runs two instances of the app on one Redis with one key:
// a visitor admitted by one is admitted by the other, and the queue is shared.
func TestTwoProcessesShareOneRoom(t *testing.T) {
	key, err := token.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("WAITINGROOM_KEY", key.String())
	m := miniredis.RunT(t)
	clk := &clock{now: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)}
	m.SetTime(clk.Now())
	o := options{total: 1, perMinute: 1, session: 2 * time.Minute, refresh: 5 * time.Second, store: "redis://" + m.Addr() + "/0"}
	var srv [2]*httptest.Server
	for i := range srv {
		h, err := build(o, clk.Now)
		if err != nil {
			t.Fatal(err)
		}
		srv[i] = httptest.NewServer(h)
		defer srv[i].Close()
	}
	alice, bob := client(t), client(t)
	if _, body := get(t, alice, srv[0].URL+"/"); !strings.Contains(body, "Book your vaccination") {
		t.Fatalf("alice on instance 0: %q", body)
	}
	if _, body := get(t, bob, srv[1].URL+"/"); !strings.Contains(body, "You are in the queue") {
		t.Fatalf("bob on instance 1 should queue behind alice: %q", body)
	}
	// Alice's pass works on the other instance (cookies are per host name, so copy it).
	for _, c := range alice.Jar.Cookies(mustURL(t, srv[0].URL)) {
		alice.Jar.SetCookies(mustURL(t, srv[1].URL), []*http.Cookie{c})
	}
	resp, err := alice.PostForm(srv[1].URL+"/reserve", url.Values{"name": {"Alice"}, "slot": {"09:00"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("alice booking on instance 1: %d", resp.StatusCode)
	}
	clk.Advance(61 * time.Second)
	m.SetTime(clk.Now())
	for _, c := range bob.Jar.Cookies(mustURL(t, srv[1].URL)) {
		bob.Jar.SetCookies(mustURL(t, srv[0].URL), []*http.Cookie{c})
	}
	if _, body := get(t, bob, srv[0].URL+"/"); !strings.Contains(body, "Book your vaccination") {
		t.Fatalf("bob on instance 0 after alice booked: %q", body)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
