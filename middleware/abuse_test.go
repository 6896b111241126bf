package middleware_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/middleware"
)

// verifier answers every join with its verdict, which a test may change, and counts the
// joins it was asked about.
type verifier struct {
	verdict atomic.Uint32
	calls   atomic.Int64
}

func newVerifier(v middleware.Verdict) *verifier {
	var f verifier
	f.verdict.Store(uint32(v))
	return &f
}

func (f *verifier) VerifyJoin(*http.Request) middleware.Verdict {
	f.calls.Add(1)
	return middleware.Verdict(f.verdict.Load())
}

func (f *verifier) wantCalls(t *testing.T, want int64) {
	t.Helper()
	if got := f.calls.Load(); got != want {
		t.Errorf("verifier asked %d times, want %d", got, want)
	}
}

// from makes a request come from ip.
func from(ip string) func(*http.Request) {
	return func(r *http.Request) { r.RemoteAddr = netip.AddrPortFrom(netip.MustParseAddr(ip), 40000).String() }
}

func header(name, value string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set(name, value) }
}

func TestJoinVerifierAllow(t *testing.T) {
	e := newEnv(t)
	room := e.room("r", oneAtATime())
	v := newVerifier(middleware.Allow)
	var site app
	h := e.protect(room, &site, middleware.WithJoinVerifier(v), middleware.WithClock(e.clock.Now))
	var a, b visitor

	if resp := a.get(h, "/"); resp.body != "app" {
		t.Fatalf("allowed join got %d %q, want the app", resp.StatusCode, resp.body)
	}
	e.wantCalls(calls{"Join": 1})
	v.wantCalls(t, 1)

	resp := b.get(h, "/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.body, "You are in the queue") {
		t.Fatalf("allowed join to a full room got %d %q, want the waiting page", resp.StatusCode, resp.body)
	}
	if lastCookie(resp, "wr_r") == nil {
		t.Errorf("allowed join got no ticket")
	}
	e.wantCalls(calls{"Join": 1})
	v.wantCalls(t, 2)
}

// Once in, a visitor's ticket or pass is never verified again, even when the verifier has
// turned against everyone; a lost ticket is a new join and is verified.
func TestValidTicketsAndPassesAreNotVerified(t *testing.T) {
	e := newEnv(t)
	room := e.room("r", oneAtATime())
	v := newVerifier(middleware.Allow)
	var site app
	h := e.protect(room, &site, middleware.WithJoinVerifier(v), middleware.WithClock(e.clock.Now))
	var a, b, c visitor
	a.get(h, "/")
	b.get(h, "/")
	e.calls.take()
	v.wantCalls(t, 2)

	v.verdict.Store(uint32(middleware.Challenge))
	if resp := a.get(h, "/"); resp.body != "app" {
		t.Errorf("pass holder got %d %q, want the app", resp.StatusCode, resp.body)
	}
	if resp := b.get(h, "/"); resp.StatusCode != http.StatusOK || !strings.Contains(resp.body, "in the queue") {
		t.Errorf("ticket holder's early poll got %d %q, want the waiting page", resp.StatusCode, resp.body)
	}
	e.clock.Advance(20 * time.Second)
	if resp := b.get(h, "/"); resp.StatusCode != http.StatusOK || !strings.Contains(resp.body, "in the queue") {
		t.Errorf("ticket holder's poll got %d %q, want the waiting page", resp.StatusCode, resp.body)
	}
	e.wantCalls(calls{"Poll": 1})
	v.wantCalls(t, 2)

	if resp := c.get(h, "/"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("newcomer got %d, want the challenge (403)", resp.StatusCode)
	}
	v.wantCalls(t, 3)

	// b stops polling and loses the place; a keeps the session going.
	for range 6 {
		e.clock.Advance(time.Minute)
		if resp := a.get(h, "/"); resp.body != "app" {
			t.Fatalf("pass holder got %d %q, want the app", resp.StatusCode, resp.body)
		}
	}
	e.calls.take()
	v.wantCalls(t, 3)
	if resp := b.get(h, "/"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("expired ticket got %d, want the challenge (403): it is a new join", resp.StatusCode)
	}
	v.wantCalls(t, 4)
	req := withCookies(httptest.NewRequest(http.MethodGet, "/", nil), "wr_r", "forged.not.atoken")
	if resp := serve(h, req); resp.StatusCode != http.StatusForbidden {
		t.Errorf("forged cookie got %d, want the challenge (403)", resp.StatusCode)
	}
	v.wantCalls(t, 5)
	e.wantCalls(calls{})
	if site.hits.Load() != 8 {
		t.Errorf("app hits = %d, want 8 (a's)", site.hits.Load())
	}
}

func TestJoinVerifierChallenge(t *testing.T) {
	var (
		seen   waitingroom.Status
		seenOK bool
	)
	custom := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, seenOK = middleware.StatusFromContext(r.Context())
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, "solve this")
	})
	tests := []struct {
		name     string
		opts     []middleware.Option
		accept   string
		wantCode int
		wantBody string
	}{
		{name: "default page", wantCode: http.StatusForbidden, wantBody: "could not verify"},
		{name: "custom page", opts: []middleware.Option{middleware.WithChallengePage(custom)}, wantCode: http.StatusUnauthorized, wantBody: "solve this"},
		{name: "JSON", opts: []middleware.Option{middleware.WithChallengePage(custom)}, accept: "application/json", wantCode: http.StatusForbidden, wantBody: `"turnstile":true`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen, seenOK = waitingroom.Status{}, false
			e := newEnv(t)
			room := e.room("r", oneAtATime())
			// The challenge page posts its proof back; the verifier checks it.
			v := middleware.JoinVerifierFunc(func(r *http.Request) middleware.Verdict {
				if r.Header.Get("X-Proof") == "solved" {
					return middleware.Allow
				}
				return middleware.Challenge
			})
			var site app
			h := e.protect(room, &site, append(tt.opts, middleware.WithJoinVerifier(v))...)
			var a visitor

			resp := a.get(h, "/", accept(tt.accept))
			if resp.StatusCode != tt.wantCode || !strings.Contains(resp.body, tt.wantBody) {
				t.Errorf("got %d %q, want %d with %q", resp.StatusCode, resp.body, tt.wantCode, tt.wantBody)
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			if got := resp.Header.Values("Set-Cookie"); len(got) != 0 {
				t.Errorf("challenge set a cookie: %q", got)
			}
			if tt.accept != "" {
				st := decodeStatus(t, resp.body)
				if st["turnstile"] != true || st["infiniteQueue"] != false || st["waitTimeKnown"] != false {
					t.Errorf("JSON challenge: turnstile %v, infiniteQueue %v, waitTimeKnown %v; want true, false, false",
						st["turnstile"], st["infiniteQueue"], st["waitTimeKnown"])
				}
			} else if tt.wantBody == "solve this" && (!seenOK || seen.Room != "r" || seen.RefreshInterval != 20*time.Second) {
				t.Errorf("challenge page saw status %+v (%v), want room r's", seen, seenOK)
			}
			e.wantCalls(calls{})
			if site.hits.Load() != 0 {
				t.Errorf("a challenged request reached the app")
			}

			resp = a.get(h, "/", accept(tt.accept), header("X-Proof", "solved"))
			if resp.body != "app" || lastCookie(resp, "wr_r") == nil {
				t.Errorf("with the proof: got %d %q, want the app and a pass", resp.StatusCode, resp.body)
			}
			e.wantCalls(calls{"Join": 1})
		})
	}
}

// A verdict the verifier should not have returned refuses the join.
func TestUnknownVerdictIsAChallenge(t *testing.T) {
	for _, verdict := range []middleware.Verdict{0, middleware.InfiniteQueue + 1} {
		t.Run(fmt.Sprint(verdict), func(t *testing.T) {
			e := newEnv(t)
			var site app
			h := e.protect(e.room("r", oneAtATime()), &site, middleware.WithJoinVerifier(newVerifier(verdict)))
			if resp := serve(h, httptest.NewRequest(http.MethodGet, "/", nil)); resp.StatusCode != http.StatusForbidden {
				t.Errorf("got %d %q, want the challenge (403)", resp.StatusCode, resp.body)
			}
			e.wantCalls(calls{})
			if site.hits.Load() != 0 {
				t.Errorf("the request reached the app")
			}
		})
	}
}

// A bot in the infinite queue polls forever: it never costs a store call, is never asked
// about again, and never gets in, even while the room has space for others.
func TestInfiniteQueue(t *testing.T) {
	e := newEnv(t)
	cfg := oneAtATime()
	cfg.QueueingStatusCode = http.StatusAccepted
	room := e.room("r", cfg)
	var asked atomic.Int64
	v := middleware.JoinVerifierFunc(func(r *http.Request) middleware.Verdict {
		asked.Add(1)
		if r.UserAgent() == "bot" {
			return middleware.InfiniteQueue
		}
		return middleware.Allow
	})
	var site app
	h := e.protect(room, &site, middleware.WithJoinVerifier(v), middleware.WithClock(e.clock.Now))
	var a, bot, c visitor
	ua := header("User-Agent", "bot")

	a.get(h, "/") // a holds the only slot for its five-minute session, then leaves
	e.calls.take()

	resp := bot.get(h, "/", ua)
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(resp.body, "You are in the queue") {
		t.Errorf("bot got %d %q, want the room's waiting page with 202", resp.StatusCode, resp.body)
	}
	marker := lastCookie(resp, "wr_r")
	if marker == nil || marker.MaxAge != 300 || !marker.HttpOnly {
		t.Fatalf("bot's cookie %v, want an HttpOnly marker for the queue hold (300 s)", marker)
	}
	if _, err := room.Codec().ParseTicket("r", marker.Value, e.clock.Now()); err == nil {
		t.Errorf("the marker is a ticket")
	}
	e.wantCalls(calls{})

	// Past a's session: the room has space, and the bot still waits.
	for i := range 20 {
		e.clock.Advance(20 * time.Second)
		resp := bot.get(h, "/", accept("application/json"))
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("poll %d: status %d, want 202", i, resp.StatusCode)
		}
		st := decodeStatus(t, resp.body)
		if st["infiniteQueue"] != true || st["usersAhead"] != 0.0 || st["waitTimeKnown"] != false || st["turnstile"] != false {
			t.Fatalf("poll %d: infiniteQueue %v, usersAhead %v, waitTimeKnown %v, turnstile %v; want true, 0, false, false",
				i, st["infiniteQueue"], st["usersAhead"], st["waitTimeKnown"], st["turnstile"])
		}
		if got := st["lastUpdated"]; got != e.clock.Now().Format(time.RFC3339) {
			t.Errorf("poll %d: lastUpdated %v, want now", i, got)
		}
	}
	e.wantCalls(calls{})
	if got := asked.Load(); got != 2 {
		t.Errorf("verifier asked %d times, want 2 (a, and the bot once)", got)
	}

	if resp := c.get(h, "/"); resp.body != "app" {
		t.Fatalf("a person arriving after a's session got %d %q, want the app", resp.StatusCode, resp.body)
	}
	if resp := bot.get(h, "/", ua); resp.body == "app" {
		t.Errorf("the bot reached the app")
	}
	if site.hits.Load() != 2 {
		t.Errorf("app hits = %d, want 2 (a and c)", site.hits.Load())
	}
	// Dropping the marker is a new join, asked about again.
	var fresh visitor
	fresh.get(h, "/", ua)
	if got := asked.Load(); got != 4 {
		t.Errorf("verifier asked %d times, want 4", got)
	}
}

// The guards look only at joins that take a place: bypassed requests, a suspended room and
// a rejecting room meet neither the verifier nor the limit.
func TestJoinGuardsOnlyWhereAPlaceIsTaken(t *testing.T) {
	tests := []struct {
		name     string
		cfg      func(*waitingroom.Config)
		path     string
		wantBody string
	}{
		{name: "bypass", path: "/healthz", wantBody: "app"},
		{name: "suspended", cfg: func(c *waitingroom.Config) { c.Suspended = true }, path: "/", wantBody: "app"},
		{name: "reject", cfg: func(c *waitingroom.Config) { c.QueueingMethod = waitingroom.Reject }, path: "/", wantBody: "not taking visitors"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := oneAtATime()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			v := newVerifier(middleware.InfiniteQueue)
			h := e.protect(e.room("r", cfg), &app{},
				middleware.WithBypass(func(r *http.Request) bool { return r.URL.Path == "/healthz" }),
				middleware.WithJoinVerifier(v),
				middleware.WithJoinLimit(middleware.JoinLimit{PerMinute: 1, Burst: 1}),
				middleware.WithClock(e.clock.Now))
			for i := range 6 {
				// The marker too: a suspended room lets everyone through.
				req := httptest.NewRequest(http.MethodGet, tt.path, nil)
				if i%2 == 1 {
					withCookies(req, "wr_r", "iq")
				}
				if resp := serve(h, req); !strings.Contains(resp.body, tt.wantBody) {
					t.Fatalf("request %d: got %d %q, want %q", i, resp.StatusCode, resp.body, tt.wantBody)
				}
			}
			v.wantCalls(t, 0)
			e.wantCalls(calls{})
		})
	}
}

func TestJoinLimit(t *testing.T) {
	e := newEnv(t)
	room := e.room("r", oneAtATime())
	var site app
	h := e.protect(room, &site,
		middleware.WithJoinLimit(middleware.JoinLimit{PerMinute: 2, Burst: 2}),
		middleware.WithClock(e.clock.Now))
	var a, b, c, d visitor
	ip1, ip2 := from("192.0.2.1"), from("192.0.2.2")

	a.get(h, "/", ip1)
	b.get(h, "/", ip1)
	e.wantCalls(calls{"Join": 2})

	resp := c.get(h, "/", ip1)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third join in a minute got %d %q, want 429", resp.StatusCode, resp.body)
	}
	if got := resp.Header.Get("Retry-After"); got != "30" {
		t.Errorf("Retry-After = %q, want 30 (one join every 30 s)", got)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	if got := resp.Header.Values("Set-Cookie"); len(got) != 0 {
		t.Errorf("refused join set a cookie: %q", got)
	}
	e.wantCalls(calls{})

	if resp := d.get(h, "/", ip2); resp.StatusCode != http.StatusOK {
		t.Errorf("another address got %d, want 200", resp.StatusCode)
	}
	e.wantCalls(calls{"Join": 1})

	// The holders of a pass and a ticket from the limited address are never limited.
	for range 5 {
		if resp := a.get(h, "/", ip1); resp.body != "app" {
			t.Fatalf("pass holder got %d %q, want the app", resp.StatusCode, resp.body)
		}
		if resp := b.get(h, "/", ip1); resp.StatusCode != http.StatusOK {
			t.Fatalf("ticket holder's early poll got %d, want 200", resp.StatusCode)
		}
	}
	e.clock.Advance(20 * time.Second)
	if resp := b.get(h, "/", ip1); resp.StatusCode != http.StatusOK {
		t.Errorf("ticket holder's poll got %d, want 200", resp.StatusCode)
	}
	e.wantCalls(calls{"Poll": 1})

	resp = c.get(h, "/", ip1)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "10" {
		t.Errorf("20 s later: got %d, Retry-After %q; want 429, 10", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	e.clock.Advance(10 * time.Second)
	if resp := c.get(h, "/", ip1); resp.StatusCode != http.StatusOK || lastCookie(resp, "wr_r") == nil {
		t.Errorf("30 s later: got %d, want 200 with a ticket", resp.StatusCode)
	}
	e.wantCalls(calls{"Join": 1})
}

// The limit comes before the verifier, so a flood never reaches it.
func TestJoinLimitBeforeVerifier(t *testing.T) {
	e := newEnv(t)
	v := newVerifier(middleware.Challenge)
	h := e.protect(e.room("r", oneAtATime()), &app{},
		middleware.WithJoinVerifier(v),
		middleware.WithJoinLimit(middleware.JoinLimit{PerMinute: 1, Burst: 1}),
		middleware.WithClock(e.clock.Now))
	codes := map[int]int{}
	for range 10 {
		codes[serve(h, httptest.NewRequest(http.MethodGet, "/", nil)).StatusCode]++
	}
	if codes[http.StatusForbidden] != 1 || codes[http.StatusTooManyRequests] != 9 {
		t.Errorf("status codes %v, want one 403 then nine 429", codes)
	}
	v.wantCalls(t, 1)
	e.wantCalls(calls{})
}

func TestJoinLimitForwardedFor(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		remote  string
		xff     []string // one request each, in order
		want    []int    // status of each
	}{
		{
			name:   "untrusted proxy: X-Forwarded-For ignored",
			remote: "192.0.2.1",
			xff:    []string{"203.0.113.1", "203.0.113.2", "203.0.113.3"},
			want:   []int{200, 200, 429},
		},
		{
			name:   "not configured: believed from a private address (PrivateNetworks)",
			remote: "10.0.0.1",
			xff:    []string{"203.0.113.1", "203.0.113.2", "203.0.113.1", "203.0.113.1"},
			want:   []int{200, 200, 200, 429},
		},
		{
			name:    "an empty list: X-Forwarded-For ignored even from a private address",
			trusted: []netip.Prefix{},
			remote:  "10.0.0.1",
			xff:     []string{"203.0.113.1", "203.0.113.2", "203.0.113.3"},
			want:    []int{200, 200, 429},
		},
		{
			name:    "trusted proxy: one limit per client",
			trusted: proxies,
			remote:  "10.0.0.1",
			xff:     []string{"203.0.113.1", "203.0.113.2", "203.0.113.1", "203.0.113.2", "203.0.113.1", "203.0.113.3"},
			want:    []int{200, 200, 200, 200, 429, 200},
		},
		{
			name:    "trusted proxies: the client's own entries cannot evade",
			trusted: proxies,
			remote:  "10.0.0.1",
			xff:     []string{"198.51.100.1, 203.0.113.1, 10.0.0.2", "198.51.100.2, 203.0.113.1, 10.0.0.3", "198.51.100.3,203.0.113.1"},
			want:    []int{200, 200, 429},
		},
		{
			name:    "trusted, but the request came from elsewhere",
			trusted: proxies,
			remote:  "192.0.2.1",
			xff:     []string{"203.0.113.1", "203.0.113.2", "203.0.113.3"},
			want:    []int{200, 200, 429},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			h := e.protect(e.room("r", oneAtATime()), &app{},
				middleware.WithJoinLimit(middleware.JoinLimit{PerMinute: 2, Burst: 2, TrustedProxies: tt.trusted}),
				middleware.WithClock(e.clock.Now))
			for i, xff := range tt.xff {
				var newcomer visitor
				resp := newcomer.get(h, "/", from(tt.remote), header("X-Forwarded-For", xff))
				if resp.StatusCode != tt.want[i] {
					t.Errorf("request %d (X-Forwarded-For %q): status %d, want %d", i, xff, resp.StatusCode, tt.want[i])
				}
			}
			e.calls.take()
		})
	}
}

func TestClientKey(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	tests := []struct {
		name   string
		remote string
		xff    []string // header lines
		want   string
	}{
		{name: "IPv4", remote: "192.0.2.1:1234", want: "192.0.2.1"},
		{name: "IPv6 by its /64", remote: "[2001:db8:1:2:3:4:5:6]:1234", want: "2001:db8:1:2::/64"},
		{name: "IPv4-mapped", remote: "[::ffff:192.0.2.1]:1234", want: "192.0.2.1"},
		{name: "no port", remote: "192.0.2.1", want: "192.0.2.1"},
		{name: "no address", remote: "@", want: ""},
		{name: "untrusted sender", remote: "192.0.2.1:1", xff: []string{"203.0.113.9"}, want: "192.0.2.1"},
		{name: "trusted, no header", remote: "10.1.1.1:1", want: "10.1.1.1"},
		{name: "one proxy", remote: "10.1.1.1:1", xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "forged left entries", remote: "10.1.1.1:1", xff: []string{"1.1.1.1, 2.2.2.2, 203.0.113.9"}, want: "203.0.113.9"},
		{name: "two proxies", remote: "10.1.1.1:1", xff: []string{"1.1.1.1, 203.0.113.9, 10.2.2.2"}, want: "203.0.113.9"},
		{name: "several header lines", remote: "10.1.1.1:1", xff: []string{"1.1.1.1, 203.0.113.9", "10.2.2.2"}, want: "203.0.113.9"},
		{name: "entries with ports", remote: "10.1.1.1:1", xff: []string{"[2001:db8:5:6::1]:443, 10.2.2.2:80"}, want: "2001:db8:5:6::/64"},
		{name: "IPv6 proxy", remote: "[2001:db8:ffff::1]:1", xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "garbage: the last trusted hop", remote: "10.1.1.1:1", xff: []string{"203.0.113.9, garbage, 10.2.2.2"}, want: "10.2.2.2"},
		{name: "all trusted", remote: "10.1.1.1:1", xff: []string{"10.3.3.3, 10.2.2.2"}, want: "10.3.3.3"},
		{name: "empty entries", remote: "10.1.1.1:1", xff: []string{"203.0.113.9,, "}, want: "203.0.113.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := middleware.ClientKey(r, trusted); got != tt.want {
				t.Errorf("key %q, want %q", got, tt.want)
			}
		})
	}
}

// However many addresses come, the limit remembers at most MaxClients; a client is
// remembered for at least MaxClients/2 new ones.
func TestJoinLimitMemoryBound(t *testing.T) {
	e := newEnv(t)
	h := e.protect(e.room("r", oneAtATime()), &app{},
		middleware.WithJoinLimit(middleware.JoinLimit{PerMinute: 1, Burst: 1, MaxClients: 100}),
		middleware.WithClock(e.clock.Now))
	join := func(ip string) int {
		var v visitor
		return v.get(h, "/", from(ip)).StatusCode
	}
	addr := func(i int) string { return fmt.Sprintf("198.51.%d.%d", i/256, i%256) }
	peak := 0
	for i := range 1000 {
		if code := join(addr(i)); code == http.StatusTooManyRequests {
			t.Fatalf("address %d was limited on its first join", i)
		}
		peak = max(peak, middleware.LimitedClients(h))
	}
	if peak > 100 {
		t.Errorf("the limit remembered %d clients, want at most 100", peak)
	}
	if n := middleware.LimitedClients(h); n < 50 {
		t.Errorf("the limit remembers %d clients, want at least 50", n)
	}

	join("192.0.2.1")
	for i := range 50 {
		join(addr(2000 + i))
	}
	if code := join("192.0.2.1"); code != http.StatusTooManyRequests {
		t.Errorf("after 50 new clients: status %d, want 429 (still remembered)", code)
	}
	for i := range 101 {
		join(addr(3000 + i))
	}
	if code := join("192.0.2.1"); code == http.StatusTooManyRequests {
		t.Errorf("after 101 new clients: still limited; the bound does not hold")
	}
	e.calls.take()
}

// Concurrent joins at one instant: each address gets exactly its burst.
func TestJoinLimitConcurrent(t *testing.T) {
	e := newEnv(t)
	cfg := oneAtATime()
	cfg.TotalActiveUsers, cfg.NewUsersPerMinute = 1000, 1000
	h := e.protect(e.room("r", cfg), &app{},
		middleware.WithJoinVerifier(newVerifier(middleware.Allow)),
		middleware.WithJoinLimit(middleware.JoinLimit{PerMinute: 1, Burst: 3, MaxClients: 4}),
		middleware.WithClock(e.clock.Now))
	const addrs, each = 8, 10
	var wg sync.WaitGroup
	var refused atomic.Int64
	for i := range addrs {
		for range each {
			wg.Go(func() {
				req := httptest.NewRequest(http.MethodGet, "/", nil)
				from(fmt.Sprintf("192.0.2.%d", i+1))(req)
				if serve(h, req).StatusCode == http.StatusTooManyRequests {
					refused.Add(1)
				}
			})
		}
	}
	wg.Wait()
	// With MaxClients 4 some addresses may be forgotten between joins and get a new
	// burst, but never fewer than 3 joins each.
	joined := e.calls.take()["Join"]
	if joined < addrs*3 || int64(joined)+refused.Load() != addrs*each {
		t.Errorf("%d joins and %d refused, want at least %d joins and %d in all", joined, refused.Load(), addrs*3, addrs*each)
	}
	if n := middleware.LimitedClients(h); n > 4 {
		t.Errorf("the limit remembers %d clients, want at most 4", n)
	}
}

func TestJoinLimitConcurrentExact(t *testing.T) {
	e := newEnv(t)
	cfg := oneAtATime()
	cfg.TotalActiveUsers, cfg.NewUsersPerMinute = 1000, 1000
	h := e.protect(e.room("r", cfg), &app{},
		middleware.WithJoinLimit(middleware.JoinLimit{PerMinute: 1, Burst: 3}),
		middleware.WithClock(e.clock.Now))
	const addrs, each = 8, 10
	var wg sync.WaitGroup
	for i := range addrs {
		for range each {
			wg.Go(func() {
				req := httptest.NewRequest(http.MethodGet, "/", nil)
				from(fmt.Sprintf("192.0.2.%d", i+1))(req)
				serve(h, req)
			})
		}
	}
	wg.Wait()
	if joined := e.calls.take()["Join"]; joined != addrs*3 {
		t.Errorf("%d joins reached the store, want %d (the burst of each address)", joined, addrs*3)
	}
}

func TestJoinLimitValidate(t *testing.T) {
	for _, l := range []middleware.JoinLimit{
		{PerMinute: -1},
		{PerMinute: math.Inf(1)},
		{PerMinute: math.NaN()},
		{Burst: -1},
		{MaxClients: 1},
		{MaxClients: -5},
	} {
		if err := l.Validate(); !errors.Is(err, middleware.ErrJoinLimit) {
			t.Errorf("%+v.Validate() = %v, want ErrJoinLimit", l, err)
		}
		if _, err := middleware.New(oneRoom(t), middleware.WithJoinLimit(l)); !errors.Is(err, middleware.ErrJoinLimit) {
			t.Errorf("WithJoinLimit(%+v): %v, want ErrJoinLimit", l, err) // refused, not replaced
		}
	}
	if err := (middleware.JoinLimit{}).Validate(); err != nil {
		t.Errorf("the zero JoinLimit (all defaults): %v", err)
	}
	// Zero fields take their defaults: 30 a minute, a burst of 30; no option at all is
	// JoinLimit{}, and WithoutJoinLimit turns it off.
	for _, tt := range []struct {
		name string
		opts []middleware.Option
		want int
	}{
		{"JoinLimit{}", []middleware.Option{middleware.WithJoinLimit(middleware.JoinLimit{})}, 2},
		{"no option", nil, 2},
		{"WithoutJoinLimit", []middleware.Option{middleware.WithoutJoinLimit()}, 0},
	} {
		e := newEnv(t)
		room := e.room("r", oneAtATime())
		h := e.protect(room, &app{}, append(tt.opts, middleware.WithClock(e.clock.Now))...)
		refused := 0
		for range 32 {
			var v visitor
			if resp := v.get(h, "/", from("192.0.2.7")); resp.StatusCode == http.StatusTooManyRequests {
				refused++
			}
		}
		if refused != tt.want {
			t.Errorf("%s: %d of 32 joins from one address refused, want %d", tt.name, refused, tt.want)
		}
	}
}

func oneRoom(t *testing.T) *waitingroom.Room {
	t.Helper()
	return newEnv(t).room("r", oneAtATime())
}

// BenchmarkAdmittedRequestJoinGuarded is BenchmarkAdmittedRequest with a verifier and a join
// limit: it should cost the same, since the room runs the guards only before a join.
func BenchmarkAdmittedRequestJoinGuarded(b *testing.B) {
	benchAdmitted(b,
		middleware.WithJoinVerifier(newVerifier(middleware.Allow)),
		middleware.WithJoinLimit(middleware.JoinLimit{}))
}

// BenchmarkRefusedJoin is a flood from one address: the join limit answers it.
func BenchmarkRefusedJoin(b *testing.B) {
	room := benchRoom(b, 1)
	h := middleware.Protect(room, ok, middleware.WithJoinLimit(middleware.JoinLimit{PerMinute: 1, Burst: 1}))
	r := benchRequest("")
	r.RemoteAddr = "192.0.2.1:1234"
	w := &discard{h: http.Header{}}
	h.ServeHTTP(w, r)
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}

// BenchmarkInfiniteQueuePoll is a bot in the infinite queue polling with its marker.
func BenchmarkInfiniteQueuePoll(b *testing.B) {
	room := benchRoom(b, 1)
	h := middleware.Protect(room, ok, middleware.WithJoinVerifier(newVerifier(middleware.InfiniteQueue)))
	benchJSON(b, h, "iq")
}

// A pass whose session was revoked is a new join once it next renews: the room runs the
// guards then too, so a replayed pass cannot take a place unverified.
func TestRevokedPassReplayIsVerified(t *testing.T) {
	e := newEnv(t)
	room := e.room("r", oneAtATime())
	v := newVerifier(middleware.Allow)
	revoke := false
	h := e.protect(room, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if revoke {
			w.Header().Set(middleware.CommandHeader, "revoke")
		}
		io.WriteString(w, "app")
	}), middleware.WithJoinVerifier(v), middleware.WithClock(e.clock.Now))
	var a visitor
	first := a.get(h, "/") // admitted
	v.wantCalls(t, 1)
	pass := lastCookie(first, "wr_r")
	if pass == nil {
		t.Fatal("no pass was issued")
	}
	revoke = true
	if resp := a.get(h, "/"); resp.body != "app" { // the app ends the session
		t.Fatalf("revoking request got %d %q", resp.StatusCode, resp.body)
	}
	revoke = false
	v.verdict.Store(uint32(middleware.Challenge))
	e.calls.take()
	e.clock.Advance(2 * time.Minute)
	req := withCookies(httptest.NewRequest(http.MethodGet, "/", nil), "wr_r", pass.Value)
	if resp := serve(h, req); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("replayed revoked pass got %d, want the challenge (403)", resp.StatusCode)
	}
	v.wantCalls(t, 2)
	e.wantCalls(calls{}) // the room knows the session was released: no store call to find out
}

// A form another site posts carries none of the room's cookies (SameSite=Lax): it must
// neither take a place nor replace the visitor's cookie (issue 13, item 10). The room
// refuses it with 403 before anything else; the site's own posts go on as usual, and
// WithCrossOriginProtection(nil) leaves the check to the host.
func TestCrossSitePostTakesNoPlace(t *testing.T) {
	e := newEnv(t)
	room := e.room("r", oneAtATime())
	var site app
	h := e.protect(room, &site, middleware.WithClock(e.clock.Now))
	var a, mallory visitor
	if resp := a.get(h, "/"); resp.body != "app" {
		t.Fatalf("first visitor: %d %q", resp.StatusCode, resp.body)
	}
	for _, mod := range []func(*http.Request){
		header("Sec-Fetch-Site", "cross-site"),
		header("Origin", "https://evil.example"),
	} {
		req := httptest.NewRequest(http.MethodPost, "/book", strings.NewReader("x=1"))
		resp := mallory.do(h, req, mod)
		if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 || site.hits.Load() != 1 {
			t.Errorf("a cross-site post: %d, cookies %v, app calls %d; want 403, none, 1", resp.StatusCode, resp.Cookies(), site.hits.Load())
		}
	}
	e.wantCalls(calls{"Join": 1}) // a's only
	// The site's own form, from a visitor who has none of the room's cookies yet: a place.
	req := httptest.NewRequest(http.MethodPost, "/book", strings.NewReader("x=1"))
	if resp := mallory.do(h, req, header("Sec-Fetch-Site", "same-origin")); lastCookie(resp, "wr_r") == nil {
		t.Errorf("a same-origin post: %d, no ticket", resp.StatusCode)
	}
	e.wantCalls(calls{"Join": 1})

	off := e.protect(room, &site, middleware.WithClock(e.clock.Now), middleware.WithCrossOriginProtection(nil))
	var b visitor
	req = httptest.NewRequest(http.MethodPost, "/book", strings.NewReader("x=1"))
	if resp := b.do(off, req, header("Sec-Fetch-Site", "cross-site")); resp.StatusCode == http.StatusForbidden {
		t.Errorf("with the check off, a cross-site post was refused")
	}
}

// TestScriptedJoins measures what a script that sends 1,000 requests a second without
// cookies, for 10 s, does to the next real visitor of a room that is otherwise empty (100
// places, 60 a minute): how many it finds ahead, and how long it waits until it is in,
// polling when told. Without a join limit each request takes a place, and those admitted hold
// theirs until their sessions run out (issue 13, item 5: 1,034 ahead and a 2,114-minute
// estimate, measured then); with the default limit the script takes 30 places and one
// more every 2 s. The README quotes the figures this logs.
func TestScriptedJoins(t *testing.T) {
	for _, tt := range []struct {
		name    string
		opts    []middleware.Option
		maxWait time.Duration
	}{
		{"no join limit", []middleware.Option{middleware.WithoutJoinLimit()}, 0},
		{"the default join limit", nil, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			room := e.room("r", waitingroom.Config{TotalActiveUsers: 100, NewUsersPerMinute: 60})
			h := e.protect(room, &app{}, append(tt.opts, middleware.WithClock(e.clock.Now))...)
			script := from("198.51.100.7")
			for range 10 {
				for range 1000 {
					req := httptest.NewRequest(http.MethodGet, "/", nil)
					script(req)
					serve(h, req)
				}
				e.clock.Advance(time.Second)
			}
			var v visitor
			resp := v.get(h, "/", from("203.0.113.9"), header("Accept", "application/json"))
			var body struct {
				St struct {
					UsersAhead int64   `json:"usersAhead"`
					Known      bool    `json:"waitTimeKnown"`
					P50        int64   `json:"waitTime50Percentile"` // minutes
					Refresh    float64 `json:"refreshIntervalMilliseconds"`
				} `json:"cfWaitingRoom"`
			}
			st := &body.St
			start := e.clock.Now()
			admitted := resp.body == "app"
			if !admitted {
				if err := json.Unmarshal([]byte(resp.body), &body); err != nil {
					t.Fatalf("not JSON: %v %.200q", err, resp.body)
				}
			}
			ahead, estimate := st.UsersAhead, "unknown"
			if st.Known {
				estimate = fmt.Sprint(time.Duration(st.P50) * time.Minute)
			}
			for !admitted && e.clock.Now().Sub(start) < 24*time.Hour {
				e.clock.Advance(max(time.Duration(st.Refresh)*time.Millisecond, time.Second))
				resp = v.get(h, "/", header("Accept", "application/json"))
				if admitted = resp.body == "app"; !admitted {
					json.Unmarshal([]byte(resp.body), &body)
				}
			}
			wait := e.clock.Now().Sub(start)
			t.Logf("%s: the real visitor found %d ahead (estimated wait %s) and waited %v", tt.name, ahead, estimate, wait)
			if tt.name == "the default join limit" && (ahead > 0 || wait > 0) {
				t.Errorf("with the default join limit: %d ahead, waited %v; want none and none (35 places taken of 100, 35 admissions of 60)", ahead, wait)
			}
		})
	}
}

// Where the default key knows no client, the default join limit does not put everyone
// under one bucket: a Unix socket, or a trusted proxy (a private address) that sent no
// X-Forwarded-For, as an L4 balancer rewriting the source does.
func TestJoinLimitWithoutAClient(t *testing.T) {
	for _, remote := range []string{"@", "10.0.0.5:40000", "[fd00::5]:40000"} {
		e := newEnv(t)
		h := e.protect(e.room("r", oneAtATime()), &app{}, middleware.WithClock(e.clock.Now))
		refused := 0
		for range 40 {
			var v visitor
			if resp := v.get(h, "/", func(r *http.Request) { r.RemoteAddr = remote }); resp.StatusCode == http.StatusTooManyRequests {
				refused++
			}
		}
		if refused != 0 {
			t.Errorf("from %s: %d of 40 joins refused, want none", remote, refused)
		}
		e.calls.take()
	}
}
