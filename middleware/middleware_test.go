package middleware_test

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/middleware"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/memory"
	"github.com/waitingroom-go/waitingroom/store/storetest"
	"github.com/waitingroom-go/waitingroom/token"
)

// The tests run on a fake clock that starts at t0 and moves only when a test advances it.
// The store and the rooms share it, so every token time and admission decision is exact.

func TestTransparentWhenCapacityIsFree(t *testing.T) {
	proxy := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name       string
		tls        bool
		remote     string // RemoteAddr; default httptest's 192.0.2.1:1234
		proto      string // X-Forwarded-Proto
		cookie     middleware.Cookie
		wantName   string
		wantSecure bool
	}{
		{name: "plain HTTP", wantSecure: false},
		{name: "TLS", tls: true, wantSecure: true},
		{name: "Cookie.Secure over plain HTTP", cookie: middleware.Cookie{Secure: true}, wantSecure: true},
		// TLS ends at a proxy: its X-Forwarded-Proto counts only if the proxy is trusted.
		{name: "https from a trusted proxy", remote: "10.1.2.3:4567", proto: "https",
			cookie: middleware.Cookie{TrustedProxies: proxy}, wantSecure: true},
		{name: "https through two proxies, the nearest trusted", remote: "10.1.2.3:4567", proto: "http, https",
			cookie: middleware.Cookie{TrustedProxies: proxy}, wantSecure: true},
		{name: "http from a trusted proxy", remote: "10.1.2.3:4567", proto: "http",
			cookie: middleware.Cookie{TrustedProxies: proxy}, wantSecure: false},
		{name: "https claimed by an untrusted client", proto: "https",
			cookie: middleware.Cookie{TrustedProxies: proxy}, wantSecure: false},
		{name: "https claimed with no proxy trusted", remote: "10.1.2.3:4567", proto: "https", wantSecure: false},
		{name: "HostPrefix", cookie: middleware.Cookie{HostPrefix: true}, wantName: "__Host-wr_r", wantSecure: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			room := e.room("r", oneAtATime())
			var site app
			h := e.protect(room, &site, middleware.WithCookie(tt.cookie))

			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.tls {
				req.TLS = &tls.ConnectionState{}
			}
			if tt.remote != "" {
				req.RemoteAddr = tt.remote
			}
			if tt.proto != "" {
				req.Header.Set("X-Forwarded-Proto", tt.proto)
			}
			resp := serve(h, req)

			if resp.StatusCode != http.StatusOK || resp.body != "app" || site.hits.Load() != 1 {
				t.Fatalf("got %d %q with %d app hits, want 200 from the app", resp.StatusCode, resp.body, site.hits.Load())
			}
			name := cmp.Or(tt.wantName, "wr_r")
			c := lastCookie(resp, name)
			if c == nil {
				t.Fatalf("no %s cookie in %q", name, resp.Header.Values("Set-Cookie"))
			}
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
				t.Errorf("cookie %q: want HttpOnly, SameSite=Lax, Path=/, host-only", c.Raw)
			}
			if c.Secure != tt.wantSecure {
				t.Errorf("cookie %q: Secure = %v, want %v", c.Raw, c.Secure, tt.wantSecure)
			}
			if c.MaxAge != 300+3600 {
				t.Errorf("cookie Max-Age = %d, want 3900 (the session duration and an hour, to tell a late form it came late)", c.MaxAge)
			}
			if _, err := room.Codec().ParsePass("r", c.Value, e.clock.Now()); err != nil {
				t.Errorf("cookie does not hold a pass: %v", err)
			}
			e.wantCalls(calls{"Join": 1})
		})
	}
}

// A __Host- cookie must be host-only with Path "/": WithCookie refuses anything else, and a
// pass in the prefixed cookie is read back.
func TestHostPrefixCookie(t *testing.T) {
	e := newEnv(t)
	room := e.room("r", oneAtATime())
	for _, c := range []middleware.Cookie{{HostPrefix: true, Domain: "example.com"}, {HostPrefix: true, Path: "/book"}} {
		if _, err := middleware.New(room, middleware.WithCookie(c)); !errors.Is(err, middleware.ErrOption) {
			t.Errorf("WithCookie(%+v): %v, want ErrOption", c, err)
		}
	}
	var site app
	h := e.protect(room, &site, middleware.WithCookie(middleware.Cookie{HostPrefix: true}))
	var v visitor
	v.get(h, "/")
	if v.cookies["__Host-wr_r"] == "" {
		t.Fatalf("cookies %v, want __Host-wr_r", v.cookies)
	}
	v.get(h, "/")
	if site.hits.Load() != 2 {
		t.Errorf("the second request with the __Host- pass: %d app hits, want 2", site.hits.Load())
	}
	e.wantCalls(calls{"Join": 1})
}

func TestCookieOptions(t *testing.T) {
	e := newEnv(t)
	room := e.room("r", oneAtATime())
	h := e.protect(room, &app{}, middleware.WithCookie(middleware.Cookie{Name: "queue", Path: "/shop", Domain: "example.com"}))

	resp := serve(h, httptest.NewRequest(http.MethodGet, "/shop", nil))
	c := lastCookie(resp, "queue")
	if c == nil {
		t.Fatalf("no cookie named queue in %q", resp.Header.Values("Set-Cookie"))
	}
	if c.Path != "/shop" || c.Domain != "example.com" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
		t.Errorf("cookie %q: want Path=/shop, Domain=example.com, HttpOnly, SameSite=Lax", c.Raw)
	}
	if lastCookie(resp, "wr_r") != nil {
		t.Errorf("the default cookie name was used too")
	}
}

func TestAdmittedVisitorRenewsOncePerInterval(t *testing.T) {
	e := newEnv(t)
	room := e.room("r", oneAtATime()) // RenewInterval defaults to 1 minute
	var site app
	h := e.protect(room, &site)
	var v visitor

	v.get(h, "/")
	first := v.cookies["wr_r"]
	if first == "" {
		t.Fatal("no pass on entry")
	}
	e.calls.take()

	e.clock.Advance(59 * time.Second)
	resp := v.get(h, "/")
	if resp.StatusCode != http.StatusOK || resp.body != "app" {
		t.Fatalf("pass holder got %d %q, want the app", resp.StatusCode, resp.body)
	}
	if got := resp.Header.Values("Set-Cookie"); len(got) != 0 {
		t.Errorf("cookie rewritten before the renew interval: %q", got)
	}
	e.wantCalls(calls{})

	e.clock.Advance(2 * time.Second) // 61 s after admission
	resp = v.get(h, "/")
	if resp.StatusCode != http.StatusOK || resp.body != "app" {
		t.Fatalf("after the renew interval: got %d %q, want the app", resp.StatusCode, resp.body)
	}
	e.wantCalls(calls{"Renew": 1})
	c := lastCookie(resp, "wr_r")
	if c == nil || c.Value == first {
		t.Fatalf("no new pass after the renewal (Set-Cookie %q)", resp.Header.Values("Set-Cookie"))
	}
	p, err := room.Codec().ParsePass("r", c.Value, e.clock.Now())
	if err != nil {
		t.Fatalf("renewed cookie: %v", err)
	}
	if want := e.clock.Now().Add(5 * time.Minute); !p.Expires.Equal(want) {
		t.Errorf("renewed pass expires %v, want %v", p.Expires, want)
	}

	v.get(h, "/")
	e.wantCalls(calls{})
	if site.hits.Load() != 4 {
		t.Errorf("app hits = %d, want 4", site.hits.Load())
	}
}

func TestDisabledRenewalNeverCallsTheStore(t *testing.T) {
	e := newEnv(t)
	cfg := oneAtATime()
	cfg.DisableSessionRenewal = true
	room := e.room("r", cfg)
	h := e.protect(room, &app{})
	var v visitor
	v.get(h, "/")
	e.calls.take()

	for range 4 {
		e.clock.Advance(time.Minute)
		if resp := v.get(h, "/"); resp.body != "app" {
			t.Fatalf("got %d %q, want the app", resp.StatusCode, resp.body)
		}
	}
	e.wantCalls(calls{})

	// The session has run its five minutes: the visitor comes in as a newcomer would, to
	// a new session.
	old, err := room.Codec().ParsePass("r", v.cookies["wr_r"], e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	v.get(h, "/")
	e.wantCalls(calls{"Join": 1})
	p, err := room.Codec().ParsePass("r", v.cookies["wr_r"], e.clock.Now())
	if err != nil || p.Session == old.Session {
		t.Errorf("after the session ended: pass %+v (%v), want a new session", p, err)
	}
}

func TestDefaultWaitingPage(t *testing.T) {
	tests := []struct {
		name string
		code int // Config.QueueingStatusCode
		want int
	}{
		{name: "default", code: 0, want: http.StatusOK},
		{name: "202", code: http.StatusAccepted, want: http.StatusAccepted},
		{name: "429", code: http.StatusTooManyRequests, want: http.StatusTooManyRequests},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := oneAtATime()
			cfg.QueueingStatusCode = tt.code
			cfg.RefreshInterval = 15 * time.Second
			room := e.room("r", cfg)
			var site app
			h := e.protect(room, &site)

			var a, b, c visitor
			a.get(h, "/")
			e.calls.take()
			for i, v := range []*visitor{&b, &c} {
				resp := v.get(h, "/")
				if resp.StatusCode != tt.want {
					t.Errorf("visitor %d: status %d, want %d", i+1, resp.StatusCode, tt.want)
				}
				if got := resp.Header.Get("Cache-Control"); got != "no-store" {
					t.Errorf("Cache-Control = %q, want no-store", got)
				}
				if got := resp.Header.Get("Refresh"); got != "" {
					t.Errorf("Refresh = %q, want none: the page updates in place (a refresh without JavaScript only)", got)
				}
				if !strings.Contains(resp.body, `<noscript><meta http-equiv="refresh" content="15"></noscript>`) {
					t.Errorf("no noscript refresh at the refresh interval:\n%s", resp.body)
				}
				if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, "text/html") {
					t.Errorf("Content-Type = %q, want text/html", got)
				}
				want := `id="wr-ahead">You are next<`
				if i > 0 {
					want = fmt.Sprintf(`id="wr-ahead">%d<`, i)
				}
				if !strings.Contains(resp.body, want) {
					t.Errorf("body does not say %q:\n%s", want, resp.body)
				}
				ck := lastCookie(resp, "wr_r")
				if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Secure {
					t.Fatalf("waiting visitor's cookie: %q", resp.Header.Values("Set-Cookie"))
				}
				if ck.MaxAge != 300 {
					t.Errorf("ticket Max-Age = %d, want 300 (the queue hold)", ck.MaxAge)
				}
				if _, err := room.Codec().ParseTicket("r", ck.Value, e.clock.Now()); err != nil {
					t.Errorf("waiting visitor's cookie is not a ticket: %v", err)
				}
			}
			e.wantCalls(calls{"Join": 2})
			if site.hits.Load() != 1 {
				t.Errorf("app hits = %d, want 1 (the first visitor only)", site.hits.Load())
			}
		})
	}
}

func TestCustomWaitingPageAndPolls(t *testing.T) {
	e := newEnv(t)
	cfg := oneAtATime()
	cfg.QueueingStatusCode = http.StatusAccepted
	cfg.RefreshInterval = 15 * time.Second
	room := e.room("r", cfg)
	var (
		seen   waitingroom.Status
		seenOK bool
	)
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, seenOK = middleware.StatusFromContext(r.Context())
		fmt.Fprintf(w, "ahead %d", seen.UsersAhead)
	})
	var site app
	h := e.protect(room, &site, middleware.WithWaitingPage(page))

	var a, b, c visitor
	a.get(h, "/")
	b.get(h, "/")
	e.calls.take()

	resp := c.get(h, "/")
	if !seenOK {
		t.Fatal("StatusFromContext found no status in the waiting page's request")
	}
	if resp.StatusCode != http.StatusAccepted || resp.body != "ahead 1" {
		t.Errorf("got %d %q, want 202 \"ahead 1\"", resp.StatusCode, resp.body)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("custom page: Cache-Control = %q, want no-store", resp.Header.Get("Cache-Control"))
	}
	if seen.Room != "r" || seen.UsersAhead != 1 || seen.RefreshInterval != 15*time.Second || seen.Method != waitingroom.FIFO {
		t.Errorf("status = %+v, want room r, 1 ahead, refresh 15s, fifo", seen)
	}
	if !seen.LastUpdated.Equal(t0) {
		t.Errorf("LastUpdated = %v, want %v", seen.LastUpdated, t0)
	}
	e.wantCalls(calls{"Join": 1})
	counted := seen
	ticket := c.cookies["wr_r"]

	// A poll before the refresh interval is answered from the ticket.
	e.clock.Advance(5 * time.Second)
	seen = waitingroom.Status{}
	resp = c.get(h, "/")
	if resp.StatusCode != http.StatusAccepted || resp.body != "ahead 1" {
		t.Errorf("early poll: got %d %q, want 202 \"ahead 1\"", resp.StatusCode, resp.body)
	}
	// The same answer, but for when to poll next: 5 s have gone by since.
	if seen.UsersAhead != counted.UsersAhead || !seen.LastUpdated.Equal(counted.LastUpdated) || seen.RefreshInterval != counted.RefreshInterval-5*time.Second {
		t.Errorf("early poll: status %+v, want as the last counted %+v, 5 s sooner to poll", seen, counted)
	}
	if got := resp.Header.Values("Set-Cookie"); len(got) != 0 {
		t.Errorf("early poll rewrote the cookie: %q", got)
	}
	e.wantCalls(calls{})

	// The poll after the interval is counted: one store call and a fresh ticket.
	e.clock.Advance(10 * time.Second)
	resp = c.get(h, "/")
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("counted poll: status %d, want 202", resp.StatusCode)
	}
	e.wantCalls(calls{"Poll": 1})
	if !seen.LastUpdated.Equal(t0.Add(15 * time.Second)) {
		t.Errorf("counted poll: LastUpdated = %v, want %v", seen.LastUpdated, t0.Add(15*time.Second))
	}
	if c.cookies["wr_r"] == ticket {
		t.Errorf("counted poll kept the old ticket")
	}
	if site.hits.Load() != 1 {
		t.Errorf("app hits = %d, want 1", site.hits.Load())
	}
}

func TestStatusFromContextOutsideTheWaitingPage(t *testing.T) {
	e := newEnv(t)
	room := e.room("r", oneAtATime())
	ok := true
	h := e.protect(room, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, ok = middleware.StatusFromContext(r.Context())
	}))
	serve(h, httptest.NewRequest(http.MethodGet, "/", nil))
	if ok {
		t.Error("StatusFromContext reported a status to an admitted request")
	}
}

// The room's status code replaces 200 however the waiting page produces its response.
func TestWaitingPageStatusCode(t *testing.T) {
	tests := []struct {
		name string // non-empty: a known bug, see the report
		page http.HandlerFunc
		want int
	}{
		{
			name: "writes the body only",
			page: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "wait") },
			want: http.StatusTooManyRequests,
		},
		{
			name: "WriteHeader(200)",
			page: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK); io.WriteString(w, "wait") },
			want: http.StatusTooManyRequests,
		},
		{
			name: "WriteHeader(503) is kept",
			page: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) },
			want: http.StatusServiceUnavailable,
		},
		{
			name: "writes nothing",
			page: func(w http.ResponseWriter, r *http.Request) {},
			want: http.StatusTooManyRequests,
		},
		{
			name: "flushes first",
			page: func(w http.ResponseWriter, r *http.Request) {
				if err := http.NewResponseController(w).Flush(); err != nil {
					t.Errorf("Flush: %v", err)
				}
				io.WriteString(w, "wait")
			},
			want: http.StatusTooManyRequests,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := oneAtATime()
			cfg.QueueingStatusCode = http.StatusTooManyRequests
			room := e.room("r", cfg)
			h := e.protect(room, &app{}, middleware.WithWaitingPage(tt.page))
			var a, b visitor
			a.get(h, "/")
			if resp := b.get(h, "/"); resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}

func TestJSONStatus(t *testing.T) {
	e := newEnv(t)
	cfg := oneAtATime()
	cfg.QueueingStatusCode = http.StatusAccepted
	cfg.TypicalSession = 2 * time.Minute // a basis for the wait from the first visitor
	room := e.room("r", cfg)
	var site app
	h := e.protect(room, &site)
	var a, b visitor
	a.get(h, "/")
	e.calls.take()

	resp := b.get(h, "/", accept("application/json"))
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("status %d, want 202", resp.StatusCode)
	}
	if got := resp.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	if lastCookie(resp, "wr_r") == nil {
		t.Errorf("JSON answer set no ticket cookie")
	}
	e.wantCalls(calls{"Join": 1})
	if site.hits.Load() != 1 {
		t.Errorf("app hits = %d, want 1", site.hits.Load())
	}

	st := decodeStatus(t, resp.body)
	// Every field the hosted rooms send, with its JSON type, plus usersAhead.
	types := map[string]string{
		"inWaitingRoom":                "bool",
		"waitTimeKnown":                "bool",
		"waitTime":                     "number",
		"waitTime25Percentile":         "number",
		"waitTime50Percentile":         "number",
		"waitTime75Percentile":         "number",
		"waitTimeFormatted":            "string",
		"queueIsFull":                  "bool",
		"queueAll":                     "bool",
		"lastUpdated":                  "string",
		"refreshIntervalSeconds":       "number",
		"queueingMethod":               "string",
		"isFIFOQueue":                  "bool",
		"isRandomQueue":                "bool",
		"isPassthroughQueue":           "bool",
		"isRejectQueue":                "bool",
		"isEventActive":                "bool",
		"isEventPrequeueing":           "bool",
		"timeUntilEventStart":          "number",
		"timeUntilEventStartFormatted": "string",
		"timeUntilEventEnd":            "number",
		"timeUntilEventEndFormatted":   "string",
		"shuffleAtEventStart":          "bool",
		"turnstile":                    "bool",
		"infiniteQueue":                "bool",
		"usersAhead":                   "number",
		"usersAheadAtEntry":            "number",
		"joined":                       "string",
		"refreshIntervalMilliseconds":  "number",
	}
	for field, want := range types {
		v, ok := st[field]
		if !ok {
			t.Errorf("field %s missing", field)
			continue
		}
		if got := jsonType(v); got != want {
			t.Errorf("field %s is a %s (%v), want a %s", field, got, v, want)
		}
	}
	for field := range st {
		if _, ok := types[field]; !ok {
			t.Errorf("unexpected field %s", field)
		}
	}

	wantValues := map[string]any{
		"inWaitingRoom":          true,
		"queueAll":               false,
		"queueIsFull":            false,
		"refreshIntervalSeconds": 20.0,
		"queueingMethod":         "fifo",
		"isFIFOQueue":            true,
		"isRandomQueue":          false,
		"isPassthroughQueue":     false,
		"isRejectQueue":          false,
		"isEventActive":          false,
		"usersAhead":             0.0,
	}
	for field, want := range wantValues {
		if st[field] != want {
			t.Errorf("%s = %v, want %v", field, st[field], want)
		}
	}
	updated, err := time.Parse(time.RFC3339, fmt.Sprint(st["lastUpdated"]))
	if err != nil {
		t.Errorf("lastUpdated: %v", err)
	} else if !updated.Equal(t0) {
		t.Errorf("lastUpdated = %v, want %v", updated, t0)
	}
	// With nobody admitted yet the wait comes from the limits: it is known and consistent.
	if st["waitTimeKnown"] != true {
		t.Errorf("waitTimeKnown = %v, want true", st["waitTimeKnown"])
	}
	if st["waitTime"] != st["waitTime50Percentile"] {
		t.Errorf("waitTime %v differs from waitTime50Percentile %v", st["waitTime"], st["waitTime50Percentile"])
	}
	if w, _ := st["waitTime"].(float64); w < 1 {
		t.Errorf("waitTime = %v, want at least 1 minute", st["waitTime"])
	}
	if f, _ := st["waitTimeFormatted"].(string); !strings.HasSuffix(f, "minutes") && !strings.HasSuffix(f, "minute") {
		t.Errorf("waitTimeFormatted = %q, want minutes", f)
	}
}

func TestJSONAcceptHeaders(t *testing.T) {
	for _, a := range []string{"application/json", "application/json; charset=utf-8", "text/html, application/json;q=0.9"} {
		t.Run(a, func(t *testing.T) {
			e := newEnv(t)
			h := e.protect(e.room("r", oneAtATime()), &app{})
			var first, second visitor
			first.get(h, "/")
			resp := second.get(h, "/", accept(a))
			if resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("Accept %q: Content-Type %q, want JSON", a, resp.Header.Get("Content-Type"))
			}
			decodeStatus(t, resp.body)
		})
	}
	for _, a := range []string{"text/html,*/*;q=0.8", "application/json;q=0", "application/jsonp", "text/html; application/json"} {
		t.Run("HTML for "+a, func(t *testing.T) {
			e := newEnv(t)
			h := e.protect(e.room("r", oneAtATime()), &app{})
			var first, second visitor
			first.get(h, "/")
			resp := second.get(h, "/", accept(a))
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Errorf("Content-Type %q, want the HTML page", resp.Header.Get("Content-Type"))
			}
		})
	}
}

// A poll before the refresh interval changes nothing: the app sees the same answer as at
// the last counted poll, but for the time left until the next poll.
func TestEarlyPollAnswersAsTheLastCountedPoll(t *testing.T) {
	tests := []struct {
		name    string
		waiters int
	}{
		{name: "short queue", waiters: 3},
		{
			// With the limits' prior of 0.2 admissions a minute, 290 people ahead wait over a day.
			name:    "queue full",
			waiters: 291,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			room := e.room("r", oneAtATime())
			h := e.protect(room, &app{}, middleware.WithoutJoinLimit()) // 291 from one address
			var a visitor
			a.get(h, "/")
			var last visitor
			var counted map[string]any
			for range tt.waiters {
				last = visitor{}
				counted = decodeStatus(t, last.get(h, "/", accept("application/json")).body)
			}
			e.calls.take()
			e.clock.Advance(10 * time.Second)
			early := decodeStatus(t, last.get(h, "/", accept("application/json")).body)
			e.wantCalls(calls{})
			// The next poll is 10 s nearer.
			counted["refreshIntervalSeconds"] = counted["refreshIntervalSeconds"].(float64) - 10
			counted["refreshIntervalMilliseconds"] = counted["refreshIntervalMilliseconds"].(float64) - 10000
			if !maps.Equal(early, counted) {
				t.Errorf("early poll answered\n%v\nwant the counted answer\n%v", early, counted)
			}
		})
	}
}

func TestQueueAll(t *testing.T) {
	e := newEnv(t)
	cfg := oneAtATime()
	cfg.TotalActiveUsers, cfg.NewUsersPerMinute = 5, 5
	cfg.QueueAll = true
	room := e.room("r", cfg)
	var site app
	h := e.protect(room, &site)

	visitors := make([]visitor, 3)
	for round := range 3 {
		for i := range visitors {
			resp := visitors[i].get(h, "/", accept("application/json"))
			st := decodeStatus(t, resp.body)
			if st["waitTimeKnown"] != false || st["waitTimeFormatted"] != "unavailable" || st["queueAll"] != true {
				t.Errorf("round %d visitor %d: waitTimeKnown %v, waitTimeFormatted %v, queueAll %v; want false, unavailable, true",
					round, i, st["waitTimeKnown"], st["waitTimeFormatted"], st["queueAll"])
			}
		}
		e.clock.Advance(30 * time.Second)
	}
	var html visitor
	if resp := html.get(h, "/"); !strings.Contains(resp.body, "paused") {
		t.Errorf("default page does not say entry is paused:\n%s", resp.body)
	}
	if n := site.hits.Load(); n != 0 {
		t.Errorf("%d requests reached the app with queue all on", n)
	}
}

func TestQueueAllKeepsAdmittedVisitors(t *testing.T) {
	e := newEnv(t)
	cfg := oneAtATime()
	cfg.TotalActiveUsers, cfg.NewUsersPerMinute = 2, 2
	room := e.room("r", cfg)
	var site app
	h := e.protect(room, &site)
	var a, b visitor
	a.get(h, "/")

	cfg.QueueAll = true
	if err := room.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if resp := a.get(h, "/"); resp.body != "app" {
		t.Errorf("admitted visitor lost the session: %d %q", resp.StatusCode, resp.body)
	}
	if resp := b.get(h, "/"); resp.body == "app" {
		t.Errorf("a new visitor was admitted with queue all on")
	}
}

func TestRejectMethod(t *testing.T) {
	e := newEnv(t)
	cfg := oneAtATime()
	cfg.QueueingMethod = waitingroom.Reject
	cfg.QueueingStatusCode = http.StatusTooManyRequests
	room := e.room("r", cfg)
	var site app
	h := e.protect(room, &site)
	var v visitor

	resp := v.get(h, "/")
	if !strings.Contains(resp.body, "not taking visitors") {
		t.Errorf("not the closed page: %d %q", resp.StatusCode, resp.body)
	}
	if resp.Header.Get("Refresh") != "" {
		t.Errorf("closed page refreshes: %q", resp.Header.Get("Refresh"))
	}
	if got := resp.Header.Values("Set-Cookie"); len(got) != 0 {
		t.Errorf("closed page set a cookie: %q", got)
	}

	resp = v.get(h, "/", accept("application/json"))
	st := decodeStatus(t, resp.body)
	if st["refreshIntervalSeconds"] != 0.0 || st["isRejectQueue"] != true || st["queueingMethod"] != "reject" || st["isFIFOQueue"] != false {
		t.Errorf("JSON: refreshIntervalSeconds %v, isRejectQueue %v, queueingMethod %v, isFIFOQueue %v; want 0, true, reject, false",
			st["refreshIntervalSeconds"], st["isRejectQueue"], st["queueingMethod"], st["isFIFOQueue"])
	}
	e.wantCalls(calls{})
	if site.hits.Load() != 0 {
		t.Errorf("the app was reached")
	}
}

func TestCustomClosedPage(t *testing.T) {
	e := newEnv(t)
	cfg := oneAtATime()
	cfg.QueueingMethod = waitingroom.Reject
	room := e.room("r", cfg)
	var ok bool
	closed := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var st waitingroom.Status
		st, ok = middleware.StatusFromContext(r.Context())
		ok = ok && st.Method == waitingroom.Reject
		io.WriteString(w, "closed")
	})
	h := e.protect(room, &app{}, middleware.WithClosedPage(closed))
	if resp := serve(h, httptest.NewRequest(http.MethodGet, "/", nil)); resp.body != "closed" {
		t.Errorf("got %q, want the custom closed page", resp.body)
	}
	if !ok {
		t.Errorf("the closed page did not see a reject status")
	}
}

func TestSuspended(t *testing.T) {
	e := newEnv(t)
	cfg := oneAtATime()
	cfg.Suspended = true
	room := e.room("r", cfg)
	var site app
	h := e.protect(room, &site)
	for i, cookie := range []string{"", "wr_r=junk"} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp := serve(h, req)
		if resp.body != "app" {
			t.Errorf("request %d: got %d %q, want the app", i, resp.StatusCode, resp.body)
		}
		if got := resp.Header.Values("Set-Cookie"); len(got) != 0 {
			t.Errorf("request %d set a cookie: %q", i, got)
		}
	}
	e.wantCalls(calls{})
}

func TestPassthrough(t *testing.T) {
	e := newEnv(t)
	cfg := oneAtATime()
	cfg.QueueingMethod = waitingroom.Passthrough
	room := e.room("r", cfg)
	var site app
	h := e.protect(room, &site)
	for i := range 5 {
		var v visitor
		if resp := v.get(h, "/"); resp.body != "app" {
			t.Errorf("visitor %d: got %d %q, want the app", i, resp.StatusCode, resp.body)
		}
	}
	if site.hits.Load() != 5 {
		t.Errorf("app hits = %d, want 5", site.hits.Load())
	}
}

// Visitor A is admitted, B and C wait; A's session ends through the handler, and B, first in
// line, takes the slot at the next counted poll while C waits on.
func TestEndingASessionAdmitsTheNextInOrder(t *testing.T) {
	tests := []struct {
		name string
		end  http.HandlerFunc // A's last request, which ends the session
	}{
		{
			name: "revoke header",
			end: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set(middleware.CommandHeader, "revoke")
				io.WriteString(w, "bye")
			},
		},
		{
			name: "revoke header, explicit WriteHeader",
			end: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("waiting-room-command", " Revoke ")
				w.WriteHeader(http.StatusSeeOther)
			},
		},
		{
			name: "revoke header, nothing written",
			end: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set(middleware.CommandHeader, "revoke")
			},
		},
		{
			name: "Release",
			end: func(w http.ResponseWriter, r *http.Request) {
				if err := middleware.Release(r); err != nil {
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				if err := middleware.Release(r); err != nil { // again: a no-op
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				io.WriteString(w, "booked")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := oneAtATime()
			cfg.SessionDuration, cfg.RenewInterval = 10*time.Minute, 2*time.Minute
			room := e.room("r", cfg)
			mux := http.NewServeMux()
			mux.Handle("/", &app{})
			mux.Handle("/end", tt.end)
			h := e.protect(room, mux)

			var a, b, c visitor
			if resp := a.get(h, "/"); resp.body != "app" {
				t.Fatalf("A was not admitted: %d %q", resp.StatusCode, resp.body)
			}
			b.get(h, "/", accept("application/json"))
			c.get(h, "/", accept("application/json"))

			// A minute on the rate window is clear, but A still holds the only slot.
			e.clock.Advance(61 * time.Second)
			if st := decodeStatus(t, b.get(h, "/", accept("application/json")).body); st["usersAhead"] != 0.0 {
				t.Errorf("B: usersAhead %v, want 0", st["usersAhead"])
			}
			if st := decodeStatus(t, c.get(h, "/", accept("application/json")).body); st["usersAhead"] != 1.0 {
				t.Errorf("C: usersAhead %v, want 1", st["usersAhead"])
			}
			e.calls.take()

			resp := a.get(h, "/end")
			if resp.StatusCode >= 500 {
				t.Fatalf("ending the session: %d %q", resp.StatusCode, resp.body)
			}
			if got := resp.Header.Values(middleware.CommandHeader); len(got) != 0 {
				t.Errorf("command header leaked to the visitor: %q", got)
			}
			ck := lastCookie(resp, "wr_r")
			if ck == nil || ck.MaxAge >= 0 || ck.Value != "" {
				t.Errorf("A's cookie not cleared: Set-Cookie %q", resp.Header.Values("Set-Cookie"))
			}
			e.wantCalls(calls{"Release": 1})
			if _, ok := a.cookies["wr_r"]; ok {
				t.Errorf("A still holds a cookie")
			}

			e.clock.Advance(20 * time.Second)
			if resp := b.get(h, "/"); resp.body != "app" {
				t.Errorf("B was not admitted after A left: %d %q", resp.StatusCode, resp.body)
			}
			st := decodeStatus(t, c.get(h, "/", accept("application/json")).body)
			if st["inWaitingRoom"] != true || st["usersAhead"] != 0.0 {
				t.Errorf("C: inWaitingRoom %v, usersAhead %v; want true, 0", st["inWaitingRoom"], st["usersAhead"])
			}
		})
	}
}

func TestRevokeOnTheAdmittingRequest(t *testing.T) {
	e := newEnv(t)
	room := e.room("r", oneAtATime())
	h := e.protect(room, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(middleware.CommandHeader, "revoke")
	}))
	var a visitor
	resp := a.get(h, "/")
	if ck := lastCookie(resp, "wr_r"); ck == nil || ck.MaxAge >= 0 {
		t.Errorf("the last Set-Cookie does not clear the pass: %q", resp.Header.Values("Set-Cookie"))
	}
	if got := resp.Header.Values("Set-Cookie"); len(got) != 1 {
		t.Errorf("want one Set-Cookie for the room (RFC 6265 4.1.1), got %q", got)
	}
	e.wantCalls(calls{"Join": 1, "Release": 1})
	// The slot is free at once (the rate window still counts A, so check the store).
	st, err := room.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Active != 0 {
		t.Errorf("active sessions = %d after the revoke, want 0", st.Active)
	}
}

func TestUnknownCommandIsDroppedAndIgnored(t *testing.T) {
	e := newEnv(t)
	room := e.room("r", oneAtATime())
	h := e.protect(room, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(middleware.CommandHeader, "promote")
		io.WriteString(w, "app")
	}))
	var a visitor
	a.get(h, "/")
	e.calls.take()
	resp := a.get(h, "/")
	if got := resp.Header.Values(middleware.CommandHeader); len(got) != 0 {
		t.Errorf("command header leaked: %q", got)
	}
	if got := resp.Header.Values("Set-Cookie"); len(got) != 0 {
		t.Errorf("unknown command touched the cookie: %q", got)
	}
	e.wantCalls(calls{})
}

func TestReleaseOutsideAnAdmittedRequestIsANoop(t *testing.T) {
	if err := middleware.Release(httptest.NewRequest(http.MethodGet, "/", nil)); err != nil {
		t.Errorf("Release on a request that never met the middleware: %v", err)
	}

	e := newEnv(t)
	room := e.room("r", oneAtATime())
	var holder visitor
	holder.get(e.protect(room, &app{}), "/")

	release := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := middleware.Release(r); err != nil {
			t.Errorf("Release: %v", err)
		}
		io.WriteString(w, "released")
	})
	h := e.protect(room, release,
		middleware.WithWaitingPage(release),
		middleware.WithBypass(func(r *http.Request) bool { return r.URL.Path == "/healthz" }))
	e.calls.take()

	var v visitor
	resp := v.get(h, "/healthz")
	if resp.body != "released" || len(resp.Header.Values("Set-Cookie")) != 0 {
		t.Errorf("bypassed request: %d %q, Set-Cookie %q", resp.StatusCode, resp.body, resp.Header.Values("Set-Cookie"))
	}
	e.wantCalls(calls{})

	resp = v.get(h, "/") // the room is full: the waiting page calls Release
	if resp.body != "released" {
		t.Fatalf("got %d %q, want the waiting page", resp.StatusCode, resp.body)
	}
	if c := lastCookie(resp, "wr_r"); c == nil || c.MaxAge <= 0 {
		t.Errorf("the waiting visitor's ticket was cleared: %q", resp.Header.Values("Set-Cookie"))
	}
	e.wantCalls(calls{"Join": 1})
	if resp := holder.get(e.protect(room, &app{}), "/"); resp.body != "app" {
		t.Errorf("the holder lost the session: %d %q", resp.StatusCode, resp.body)
	}
}

func TestReleaseFailureIsReported(t *testing.T) {
	e := newEnv(t)
	room := e.room("r", oneAtATime())
	var releaseErr error
	mux := http.NewServeMux()
	mux.Handle("/", &app{})
	mux.HandleFunc("/reserve", func(w http.ResponseWriter, r *http.Request) {
		releaseErr = middleware.Release(r)
		io.WriteString(w, "booked")
	})
	mux.HandleFunc("/revoke", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(middleware.CommandHeader, "revoke")
	})
	h := e.protect(room, mux)
	var a visitor
	a.get(h, "/")
	pass := a.cookies["wr_r"]
	e.flaky.err = errors.New("connection reset")
	e.flaky.failing.Store(true)

	if resp := a.get(h, "/reserve"); resp.body != "booked" {
		t.Errorf("got %d %q, want the handler's answer", resp.StatusCode, resp.body)
	}
	if !errors.Is(releaseErr, waitingroom.ErrStore) {
		t.Errorf("Release returned %v, want an error wrapping ErrStore", releaseErr)
	}
	if errs := e.takeErrors(); len(errs) != 0 {
		t.Errorf("error handler called with %v; Release's caller has the error", errs)
	}

	a.cookies["wr_r"] = pass
	resp := a.get(h, "/revoke")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("revoke with the store down: status %d", resp.StatusCode)
	}
	if errs := e.takeErrors(); len(errs) != 1 || !errors.Is(errs[0], waitingroom.ErrStore) {
		t.Errorf("error handler got %v, want one error wrapping ErrStore", errs)
	}
}

// Whatever a client sends, the middleware answers as for a newcomer: no panic, no 5xx, no
// admission to a full room, and a fresh ticket.
func TestBadInputIsTreatedAsNoTicket(t *testing.T) {
	otherRoomToken := func(f *fixture, wantPass bool) string {
		other := f.e.room("other", oneAtATime())
		var v visitor
		oh := f.e.protect(other, &app{})
		if wantPass {
			v.get(oh, "/")
		} else {
			var first visitor
			first.get(oh, "/")
			v.get(oh, "/")
		}
		return v.cookies["wr_other"]
	}
	forger := func(t *testing.T) *token.Codec {
		k, err := token.GenerateKey("k1") // the room's key ID, another secret
		if err != nil {
			t.Fatal(err)
		}
		c, err := token.NewCodec([]token.HMACKey{k})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name      string
		cookie    func(t *testing.T, f *fixture) string // the Cookie header
		accept    string
		noRenewal bool
	}{
		{name: "forged pass", cookie: func(t *testing.T, f *fixture) string {
			p := f.holder
			p.Issued, p.RenewAt, p.Expires = f.e.clock.Now(), f.e.clock.Now().Add(time.Hour), f.e.clock.Now().Add(2*time.Hour)
			raw, err := forger(t).SignPass(p)
			if err != nil {
				t.Fatal(err)
			}
			return "wr_r=" + raw
		}},
		{name: "forged ticket for the admitted number", cookie: func(t *testing.T, f *fixture) string {
			now := f.e.clock.Now()
			raw, err := forger(t).SignTicket(token.Ticket{
				Room: "r", Number: f.holder.Session, Epoch: f.holder.Epoch,
				Joined: now.Add(-time.Minute), LastUpdated: now.Add(-time.Minute), Expires: now.Add(time.Hour),
			})
			if err != nil {
				t.Fatal(err)
			}
			return "wr_r=" + raw
		}},
		{name: "pass for another room", cookie: func(t *testing.T, f *fixture) string {
			return "wr_r=" + otherRoomToken(f, true)
		}},
		{name: "ticket for another room", cookie: func(t *testing.T, f *fixture) string {
			f.e.clock.Advance(30 * time.Second) // a poll, were it accepted
			return "wr_r=" + otherRoomToken(f, false)
		}},
		{name: "alg none", cookie: func(t *testing.T, f *fixture) string {
			parts := strings.Split(f.raw, ".")
			h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"k1","typ":"wr-pass+jwt"}`))
			return "wr_r=" + h + "." + parts[1] + "."
		}},
		{name: "signature stripped", cookie: func(t *testing.T, f *fixture) string {
			parts := strings.Split(f.raw, ".")
			return "wr_r=" + parts[0] + "." + parts[1] + "."
		}},
		{name: "tampered expiry", cookie: func(t *testing.T, f *fixture) string {
			parts := strings.Split(f.raw, ".")
			payload, err := base64.RawURLEncoding.DecodeString(parts[1])
			if err != nil {
				t.Fatal(err)
			}
			var claims map[string]any
			if err := json.Unmarshal(payload, &claims); err != nil {
				t.Fatal(err)
			}
			claims["exp"] = claims["exp"].(float64) + 3600
			claims["rn"] = claims["rn"].(float64) + 3600_000
			payload, _ = json.Marshal(claims)
			return "wr_r=" + parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
		}},
		{name: "pass relabelled as a ticket", cookie: func(t *testing.T, f *fixture) string {
			parts := strings.Split(f.raw, ".")
			h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"k1","typ":"wr-ticket+jwt"}`))
			return "wr_r=" + h + "." + parts[1] + "." + parts[2]
		}},
		{name: "ticket relabelled as a pass", cookie: func(t *testing.T, f *fixture) string {
			var w visitor
			w.get(f.h, "/")
			parts := strings.Split(w.cookies["wr_r"], ".")
			h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"k1","typ":"wr-pass+jwt"}`))
			return "wr_r=" + h + "." + parts[1] + "." + parts[2]
		}},
		{name: "expired pass", cookie: func(t *testing.T, f *fixture) string {
			f.refill(t, f.holder.Expires.Sub(f.e.clock.Now())+time.Second)
			return "wr_r=" + f.raw
		}},
		{name: "expired pass, renewal disabled", noRenewal: true, cookie: func(t *testing.T, f *fixture) string {
			f.refill(t, f.holder.Expires.Sub(f.e.clock.Now())+time.Second)
			return "wr_r=" + f.raw
		}},
		{name: "expired ticket", cookie: func(t *testing.T, f *fixture) string {
			var w visitor
			w.get(f.h, "/")
			// Past the ticket's expiry and the store's hold, which counts in 5-second buckets.
			f.refill(t, f.holder.Expires.Sub(f.e.clock.Now())+15*time.Second)
			return "wr_r=" + w.cookies["wr_r"]
		}},
		{name: "oversized", cookie: func(t *testing.T, f *fixture) string {
			return "wr_r=" + strings.Repeat("a", 5000)
		}},
		{name: "oversized pass", cookie: func(t *testing.T, f *fixture) string {
			return "wr_r=" + f.raw + strings.Repeat("A", 5000)
		}},
		{name: "empty", cookie: func(t *testing.T, f *fixture) string { return "wr_r=" }},
		{name: "junk", cookie: func(t *testing.T, f *fixture) string { return "wr_r=junk" }},
		{name: "three dots", cookie: func(t *testing.T, f *fixture) string { return "wr_r=..." }},
		{name: "base64 junk", cookie: func(t *testing.T, f *fixture) string { return "wr_r=eyJhbGciOiJIUzI1NiJ9.e30.AAAA" }},
		{name: "quoted", cookie: func(t *testing.T, f *fixture) string { return `wr_r="` + f.raw + `"x` }},
		{name: "binary", cookie: func(t *testing.T, f *fixture) string { return "wr_r=\x00\xff\xfe;\x7f" }},
		{name: "multiple junk cookies", cookie: func(t *testing.T, f *fixture) string { return "wr_r=a; wr_r=b.c.d; wr_r=" }},
		{name: "junk then forged", cookie: func(t *testing.T, f *fixture) string {
			parts := strings.Split(f.raw, ".")
			return "wr_r=junk; wr_r=" + parts[0] + "." + parts[1] + ".AAAA"
		}},
		{name: "pass under another cookie name", cookie: func(t *testing.T, f *fixture) string {
			return "wr_other=" + f.raw + "; wr_R=" + f.raw + "; wr_r_=" + f.raw
		}},
		{name: "accept garbage", accept: "\x00\xff;;;,,,q=abc"},
		{name: "accept huge", accept: strings.Repeat("application/", 2000)},
		{name: "accept json with q=nonsense", accept: "application/json;q=abc, */*;q=-1"},
		{name: "accept json not acceptable", accept: "application/json;q=0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := oneAtATime()
			cfg.QueueingStatusCode = http.StatusTooManyRequests
			cfg.DisableSessionRenewal = tt.noRenewal
			room := e.room("r", cfg)
			var site app
			f := &fixture{e: e, room: room, h: e.protect(room, &site)}
			f.admitHolder(t)

			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.cookie != nil {
				req.Header.Set("Cookie", tt.cookie(t, f))
			}
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			hits := site.hits.Load()
			e.calls.take()
			resp := serve(f.h, req)

			if resp.StatusCode != http.StatusTooManyRequests {
				t.Errorf("status %d %q, want the waiting page's 429", resp.StatusCode, resp.body)
			}
			if site.hits.Load() != hits {
				t.Errorf("the app was reached")
			}
			e.wantCalls(calls{"Join": 1})
			ck := lastCookie(resp, "wr_r")
			if ck == nil {
				t.Fatalf("no fresh ticket (Set-Cookie %q)", resp.Header.Values("Set-Cookie"))
			}
			if _, err := room.Codec().ParseTicket("r", ck.Value, e.clock.Now()); err != nil {
				t.Errorf("fresh cookie is not a ticket: %v", err)
			}
		})
	}
}

// fixture is a bad-input case's full room: one holder, whose pass the cases tamper with.
type fixture struct {
	e      *env
	room   *waitingroom.Room
	h      http.Handler
	holder token.Pass // the pass of the visitor who fills the room
	raw    string     // that pass as issued
}

func (f *fixture) admitHolder(t *testing.T) {
	t.Helper()
	var v visitor
	if resp := v.get(f.h, "/"); resp.body != "app" {
		t.Fatalf("holder not admitted: %d %q", resp.StatusCode, resp.body)
	}
	f.raw = v.cookies["wr_r"]
	p, err := f.room.Codec().ParsePass("r", f.raw, f.e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	f.holder = p
}

// refill lets d pass, by which the holder's session has ended, and fills the room again.
func (f *fixture) refill(t *testing.T, d time.Duration) {
	t.Helper()
	f.e.clock.Advance(d)
	var v visitor
	if resp := v.get(f.h, "/"); resp.body != "app" {
		t.Fatalf("second holder not admitted: %d %q", resp.StatusCode, resp.body)
	}
}

func TestTicketIsNotAPass(t *testing.T) {
	e := newEnv(t)
	cfg := oneAtATime()
	cfg.QueueingStatusCode = http.StatusTooManyRequests
	room := e.room("r", cfg)
	var site app
	h := e.protect(room, &site)
	var a, b visitor
	a.get(h, "/")
	b.get(h, "/")
	e.calls.take()
	e.clock.Advance(30 * time.Second)

	resp := b.get(h, "/")
	if resp.StatusCode != http.StatusTooManyRequests || site.hits.Load() != 1 {
		t.Errorf("ticket holder got %d %q (app hits %d), want the waiting page", resp.StatusCode, resp.body, site.hits.Load())
	}
	e.wantCalls(calls{"Poll": 1})
	if _, err := room.Codec().ParsePass("r", b.cookies["wr_r"], e.clock.Now()); err == nil {
		t.Errorf("the waiting visitor holds a pass")
	}
}

func TestBypass(t *testing.T) {
	e := newEnv(t)
	room := e.room("r", oneAtATime())
	var site app
	h := e.protect(room, &site, middleware.WithBypass(func(r *http.Request) bool { return r.URL.Path == "/healthz" }))
	var a, b visitor
	a.get(h, "/")
	e.calls.take()

	resp := b.get(h, "/healthz")
	if resp.body != "app" {
		t.Errorf("bypassed request got %d %q, want the app", resp.StatusCode, resp.body)
	}
	if got := resp.Header.Values("Set-Cookie"); len(got) != 0 {
		t.Errorf("bypassed request set a cookie: %q", got)
	}
	e.wantCalls(calls{})

	if resp := b.get(h, "/"); resp.body == "app" {
		t.Errorf("a covered request reached the app in a full room")
	}
}

func TestStoreFailure(t *testing.T) {
	const secret = "dial tcp 10.9.8.7:6379: connect: connection refused"
	errDown := errors.New(secret)

	t.Run("fails closed", func(t *testing.T) {
		e := newEnv(t)
		room := e.room("r", oneAtATime())
		var site app
		h := e.protect(room, &site)
		e.flaky.err = errDown
		e.flaky.failing.Store(true)

		var v visitor
		resp := v.get(h, "/")
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("status %d, want 503", resp.StatusCode)
		}
		if strings.Contains(resp.body, "10.9.8.7") || strings.Contains(resp.body, "refused") || strings.Contains(resp.body, "waitingroom") {
			t.Errorf("body leaks the error: %q", resp.body)
		}
		if resp.Header.Get("Retry-After") != "20" {
			t.Errorf("Retry-After = %q, want 20", resp.Header.Get("Retry-After"))
		}
		if got := resp.Header.Values("Set-Cookie"); len(got) != 0 {
			t.Errorf("failure set a cookie: %q", got)
		}
		if site.hits.Load() != 0 {
			t.Errorf("the app was reached")
		}
		errs := e.takeErrors()
		if len(errs) != 1 || !errors.Is(errs[0], waitingroom.ErrStore) || !errors.Is(errs[0], errDown) {
			t.Errorf("error handler got %v, want one error wrapping ErrStore and the store's error", errs)
		}
	})

	t.Run("Retry-After rounds up", func(t *testing.T) {
		e := newEnv(t)
		cfg := oneAtATime()
		cfg.RefreshInterval = 1500 * time.Millisecond
		h := e.protect(e.room("r", cfg), &app{})
		e.flaky.err = errDown
		e.flaky.failing.Store(true)
		var v visitor
		resp := v.get(h, "/")
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "2" ||
			!strings.Contains(resp.body, "tries again by itself in 2 seconds") {
			t.Errorf("a refresh of 1.5 s: %d, Retry-After %q, want 2 (never before the refresh): %.3000q",
				resp.StatusCode, resp.Header.Get("Retry-After"), resp.body)
		}
		e.takeErrors()
		// One second is said as such, in the page and in its noscript line.
		cfg.RefreshInterval = time.Second
		h = e.protect(e.room("one", cfg), &app{})
		resp = v.get(h, "/")
		if !strings.Contains(resp.body, "tries again by itself in 1 second.") || !strings.Contains(resp.body, "reloads itself every 1 second.") {
			t.Errorf("a refresh of 1 s: %.3000q", resp.body)
		}
		e.takeErrors()
	})

	t.Run("fails open", func(t *testing.T) {
		e := newEnv(t)
		room := e.room("r", oneAtATime())
		var site app
		h := e.protect(room, &site, middleware.WithFailOpen(true))
		e.flaky.err = errDown
		e.flaky.failing.Store(true)

		var v visitor
		resp := v.get(h, "/")
		if resp.StatusCode != http.StatusOK || resp.body != "app" {
			t.Errorf("got %d %q, want the app", resp.StatusCode, resp.body)
		}
		if got := resp.Header.Values("Set-Cookie"); len(got) != 0 {
			t.Errorf("fail-open set a cookie: %q", got)
		}
		if errs := e.takeErrors(); len(errs) != 1 || !errors.Is(errs[0], waitingroom.ErrStore) {
			t.Errorf("error handler got %v, want one error wrapping ErrStore", errs)
		}
	})

	t.Run("admitted keep going", func(t *testing.T) {
		e := newEnv(t)
		room := e.room("r", oneAtATime())
		h := e.protect(room, &app{})
		var v visitor
		v.get(h, "/")
		e.flaky.err = errDown
		e.flaky.failing.Store(true)
		e.clock.Advance(30 * time.Second)
		if resp := v.get(h, "/"); resp.body != "app" {
			t.Errorf("pass holder got %d %q, want the app", resp.StatusCode, resp.body)
		}
	})

	t.Run("times out", func(t *testing.T) {
		e := newEnv(t)
		room := e.room("r", oneAtATime(), waitingroom.WithStoreTimeout(20*time.Millisecond))
		h := e.protect(room, &app{})
		e.flaky.err = nil // block until the context is done
		e.flaky.failing.Store(true)

		start := time.Now()
		resp := serve(h, httptest.NewRequest(http.MethodGet, "/", nil))
		if elapsed := time.Since(start); elapsed < 20*time.Millisecond {
			t.Errorf("answered after %v, before the store timeout", elapsed)
		}
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("status %d, want 503", resp.StatusCode)
		}
		errs := e.takeErrors()
		if len(errs) != 1 || !errors.Is(errs[0], context.DeadlineExceeded) || !errors.Is(errs[0], waitingroom.ErrStore) {
			t.Errorf("error handler got %v, want one error wrapping ErrStore and context.DeadlineExceeded", errs)
		}
	})
}

func TestRenewalFailureKeepsTheVisitorAdmitted(t *testing.T) {
	e := newEnv(t)
	room := e.room("r", oneAtATime())
	var site app
	h := e.protect(room, &site)
	var v visitor
	v.get(h, "/")
	pass := v.cookies["wr_r"]

	e.clock.Advance(61 * time.Second)
	e.flaky.err = errors.New("connection reset")
	e.flaky.failing.Store(true)
	e.calls.take()
	resp := v.get(h, "/")
	if resp.StatusCode != http.StatusOK || resp.body != "app" {
		t.Errorf("got %d %q, want the app", resp.StatusCode, resp.body)
	}
	if got := resp.Header.Values("Set-Cookie"); len(got) != 0 {
		t.Errorf("failed renewal rewrote the cookie: %q", got)
	}
	e.wantCalls(calls{"Renew": 1})
	if errs := e.takeErrors(); len(errs) != 1 || !errors.Is(errs[0], waitingroom.ErrStore) {
		t.Errorf("error handler got %v, want one error wrapping ErrStore", errs)
	}

	// Within 5 s the renewal is not tried again: no store call, nothing reported.
	e.clock.Advance(4 * time.Second)
	if resp := v.get(h, "/"); resp.body != "app" {
		t.Errorf("got %d %q, want the app", resp.StatusCode, resp.body)
	}
	e.wantCalls(calls{})
	if errs := e.takeErrors(); len(errs) != 0 {
		t.Errorf("error handler got %v during the retry pause, want nothing", errs)
	}

	// The store is back: the next request after the pause renews.
	e.clock.Advance(time.Second)
	e.flaky.failing.Store(false)
	resp = v.get(h, "/")
	if resp.body != "app" {
		t.Errorf("got %d %q, want the app", resp.StatusCode, resp.body)
	}
	e.wantCalls(calls{"Renew": 1})
	if c := lastCookie(resp, "wr_r"); c == nil || c.Value == pass {
		t.Errorf("no renewed pass after the store came back")
	}
}

func TestResponseControllerReachesTheWriter(t *testing.T) {
	e := newEnv(t)
	room := e.room("r", oneAtATime())
	var flushErr, deadlineErr error
	h := e.protect(room, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		w.Header().Set(middleware.CommandHeader, "revoke")
		deadlineErr = rc.SetWriteDeadline(time.Unix(1, 0))
		io.WriteString(w, "streaming")
		flushErr = rc.Flush()
	}))
	rec := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))

	if flushErr != nil || !rec.Flushed {
		t.Errorf("Flush: %v (flushed %v), want nil", flushErr, rec.Flushed)
	}
	if deadlineErr != nil || !rec.deadline.Equal(time.Unix(1, 0)) {
		t.Errorf("SetWriteDeadline: %v, want it to reach the underlying writer", deadlineErr)
	}
	resp := rec.Result()
	if got := resp.Header.Values(middleware.CommandHeader); len(got) != 0 {
		t.Errorf("command header leaked: %q", got)
	}
	if c := lastCookieOf(resp.Cookies(), "wr_r"); c == nil || c.MaxAge >= 0 {
		t.Errorf("revoke with a streamed response did not clear the cookie: %q", resp.Header.Values("Set-Cookie"))
	}
}

func TestRoomsShareOneStore(t *testing.T) {
	e := newEnv(t)
	roomA := e.room("a", oneAtATime())
	roomB := e.room("b", oneAtATime())
	var siteA, siteB app
	ha := e.protect(roomA, &siteA)
	hb := e.protect(roomB, &siteB)

	var v1, v2, v3 visitor
	if resp := v1.get(ha, "/"); resp.body != "app" || lastCookie(resp, "wr_a") == nil {
		t.Fatalf("v1 not admitted to a with a wr_a cookie: %d %q %q", resp.StatusCode, resp.body, resp.Header.Values("Set-Cookie"))
	}
	if resp := v2.get(hb, "/"); resp.body != "app" || lastCookie(resp, "wr_b") == nil {
		t.Fatalf("v2 not admitted to b (a being full must not matter): %d %q %q", resp.StatusCode, resp.body, resp.Header.Values("Set-Cookie"))
	}
	if resp := v3.get(ha, "/"); resp.body == "app" {
		t.Errorf("v3 admitted to a full room a")
	}

	// v1's pass for a, sent to b under either name, is no admission to b.
	resp := v1.get(hb, "/")
	if resp.body == "app" {
		t.Errorf("a's pass admitted to b")
	}
	e.calls.take()
	resp = serve(hb, withCookies(httptest.NewRequest(http.MethodGet, "/", nil), "wr_b", v1.cookies["wr_a"]))
	if resp.body == "app" {
		t.Errorf("a's pass under b's cookie name admitted to b")
	}
	e.wantCalls(calls{"Join": 1})
	if siteB.hits.Load() != 1 || siteA.hits.Load() != 1 {
		t.Errorf("app hits a=%d b=%d, want 1 each", siteA.hits.Load(), siteB.hits.Load())
	}
	// v1 is still admitted to a.
	if resp := v1.get(ha, "/"); resp.body != "app" {
		t.Errorf("v1 lost its place in a: %d %q", resp.StatusCode, resp.body)
	}
}

func TestConcurrentArrivalsNeverExceedCapacity(t *testing.T) {
	e := newEnv(t)
	cfg := oneAtATime()
	cfg.TotalActiveUsers, cfg.NewUsersPerMinute = 5, 5
	room := e.room("r", cfg)
	var site app
	h := e.protect(room, &site)

	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			serve(h, httptest.NewRequest(http.MethodGet, "/", nil))
		})
	}
	wg.Wait()
	if n := site.hits.Load(); n != 5 {
		t.Errorf("%d of 50 concurrent arrivals admitted, want 5", n)
	}
}

// ---- helpers ----

var t0 = time.Date(2026, time.March, 2, 9, 0, 0, 0, time.UTC)

// oneAtATime is a room for one visitor at a time, with every other setting at its default.
func oneAtATime() waitingroom.Config {
	return waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1}
}

// calls counts store calls by method name.
type calls map[string]int

// countingStore counts every call that reaches the store, by method.
type countingStore struct {
	store.Store
	mu    sync.Mutex
	calls calls
}

func (s *countingStore) add(method string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[method]++
}

// take returns the calls since the last take.
func (s *countingStore) take() calls {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls
	s.calls = calls{}
	return c
}

func (s *countingStore) Join(ctx context.Context, room string, l admission.Limits) (store.Result, error) {
	s.add("Join")
	return s.Store.Join(ctx, room, l)
}

func (s *countingStore) Poll(ctx context.Context, room string, t store.Ref, l admission.Limits) (store.Result, error) {
	s.add("Poll")
	return s.Store.Poll(ctx, room, t, l)
}

func (s *countingStore) Renew(ctx context.Context, room string, r store.Ref, l admission.Limits) (store.Renewal, error) {
	s.add("Renew")
	return s.Store.Renew(ctx, room, r, l)
}

func (s *countingStore) Revive(ctx context.Context, room string, r store.Ref, l admission.Limits) (store.Renewal, error) {
	s.add("Revive")
	return s.Store.Revive(ctx, room, r, l)
}

func (s *countingStore) Release(ctx context.Context, room string, r store.Ref) error {
	s.add("Release")
	return s.Store.Release(ctx, room, r)
}

func (s *countingStore) Stats(ctx context.Context, room string, l admission.Limits) (store.Stats, error) {
	s.add("Stats")
	return s.Store.Stats(ctx, room, l)
}

// failingStore passes calls on until failing is set; then every call returns err or, when
// err is nil, blocks until its context is done.
type failingStore struct {
	store.Store
	err     error
	failing atomic.Bool
	entered chan struct{} // if set, told of each failing call as it begins
}

func (s *failingStore) fail(ctx context.Context) error {
	if !s.failing.Load() {
		return nil
	}
	if s.entered != nil {
		s.entered <- struct{}{}
	}
	if s.err != nil {
		return s.err
	}
	<-ctx.Done()
	return ctx.Err()
}

func (s *failingStore) Join(ctx context.Context, room string, l admission.Limits) (store.Result, error) {
	if err := s.fail(ctx); err != nil {
		return store.Result{}, err
	}
	return s.Store.Join(ctx, room, l)
}

func (s *failingStore) Poll(ctx context.Context, room string, t store.Ref, l admission.Limits) (store.Result, error) {
	if err := s.fail(ctx); err != nil {
		return store.Result{}, err
	}
	return s.Store.Poll(ctx, room, t, l)
}

func (s *failingStore) Renew(ctx context.Context, room string, r store.Ref, l admission.Limits) (store.Renewal, error) {
	if err := s.fail(ctx); err != nil {
		return store.Renewal{}, err
	}
	return s.Store.Renew(ctx, room, r, l)
}

func (s *failingStore) Revive(ctx context.Context, room string, r store.Ref, l admission.Limits) (store.Renewal, error) {
	if err := s.fail(ctx); err != nil {
		return store.Renewal{}, err
	}
	return s.Store.Revive(ctx, room, r, l)
}

func (s *failingStore) Release(ctx context.Context, room string, r store.Ref) error {
	if err := s.fail(ctx); err != nil {
		return err
	}
	return s.Store.Release(ctx, room, r)
}

func (s *failingStore) Stats(ctx context.Context, room string, l admission.Limits) (store.Stats, error) {
	if err := s.fail(ctx); err != nil {
		return store.Stats{}, err
	}
	return s.Store.Stats(ctx, room, l)
}

// env is one test's world: a clock, a memory store behind a failure switch and a call
// counter, one key ring for every room, and the errors the middleware reported.
type env struct {
	t     *testing.T
	clock *storetest.Clock // shared by the store and the rooms
	flaky *failingStore
	calls *countingStore
	keys  []token.HMACKey

	mu   sync.Mutex
	errs []error
}

func newEnv(t *testing.T) *env {
	t.Helper()
	k, err := token.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	clock := storetest.NewClock(t0)
	flaky := &failingStore{Store: memory.New(memory.WithClock(clock.Now))}
	e := &env{
		t:     t,
		clock: clock,
		flaky: flaky,
		calls: &countingStore{Store: flaky, calls: calls{}},
		keys:  []token.HMACKey{k},
	}
	t.Cleanup(func() {
		if errs := e.takeErrors(); len(errs) != 0 {
			t.Errorf("unexpected store failures reported: %v", errs)
		}
	})
	return e
}

// room returns a room kept in e's store, on e's clock and keys. Its store timeout is a
// minute unless opts say otherwise: at the default 500 ms of wall-clock time, a loaded
// machine could fail a test in simulated time.
func (e *env) room(id string, cfg waitingroom.Config, opts ...waitingroom.Option) *waitingroom.Room {
	e.t.Helper()
	opts = append([]waitingroom.Option{waitingroom.WithClock(e.clock.Now), waitingroom.WithKeys(e.keys...),
		waitingroom.WithStoreTimeout(time.Minute)}, opts...)
	r, err := waitingroom.New(id, e.calls, cfg, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// protect puts h behind room, collecting the reported store failures in e.
func (e *env) protect(room *waitingroom.Room, h http.Handler, opts ...middleware.Option) http.Handler {
	onError := middleware.WithErrorHandler(func(r *http.Request, err error) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.errs = append(e.errs, err)
	})
	return middleware.Protect(room, h, append([]middleware.Option{onError}, opts...)...)
}

func (e *env) takeErrors() []error {
	e.mu.Lock()
	defer e.mu.Unlock()
	errs := e.errs
	e.errs = nil
	return errs
}

// wantCalls checks the store calls since the last check.
func (e *env) wantCalls(want calls) {
	e.t.Helper()
	if got := e.calls.take(); !maps.Equal(got, want) {
		e.t.Errorf("store calls %v, want %v", got, want)
	}
}

// app is the protected site: it answers "app" and counts its requests.
type app struct{ hits atomic.Int64 }

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.hits.Add(1)
	io.WriteString(w, "app")
}

// reply is a response with its body read.
type reply struct {
	*http.Response
	body string
}

func serve(h http.Handler, req *http.Request) reply {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp, string(b)}
}

// visitor is a browser: it keeps the cookies it is given and sends them back. With a clock
// it also drops each cookie when its Max-Age has passed on that clock, as a browser does.
type visitor struct {
	cookies map[string]string
	clock   func() time.Time
	expires map[string]time.Time // with a clock: when each cookie with a Max-Age goes
}

func (v *visitor) get(h http.Handler, target string, mods ...func(*http.Request)) reply {
	return v.do(h, httptest.NewRequest(http.MethodGet, target, nil), mods...)
}

// do sends req to h with v's cookies and keeps the cookies of the answer.
func (v *visitor) do(h http.Handler, req *http.Request, mods ...func(*http.Request)) reply {
	if v.cookies == nil {
		v.cookies = map[string]string{}
	}
	if v.expires == nil {
		v.expires = map[string]time.Time{}
	}
	for name, at := range v.expires {
		if !v.clock().Before(at) {
			delete(v.cookies, name)
			delete(v.expires, name)
		}
	}
	for name, value := range v.cookies {
		req.AddCookie(&http.Cookie{Name: name, Value: value})
	}
	for _, m := range mods {
		m(req)
	}
	resp := serve(h, req)
	for _, c := range resp.Cookies() {
		delete(v.expires, c.Name)
		switch {
		case c.MaxAge < 0:
			delete(v.cookies, c.Name)
			continue
		case c.MaxAge > 0 && v.clock != nil:
			v.expires[c.Name] = v.clock().Add(time.Duration(c.MaxAge) * time.Second)
		}
		v.cookies[c.Name] = c.Value
	}
	return resp
}

func accept(value string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Accept", value) }
}

func withCookies(r *http.Request, nameValues ...string) *http.Request {
	for i := 0; i+1 < len(nameValues); i += 2 {
		r.AddCookie(&http.Cookie{Name: nameValues[i], Value: nameValues[i+1]})
	}
	return r
}

// lastCookie returns the last cookie named name that resp sets: the one a browser keeps.
func lastCookie(resp reply, name string) *http.Cookie {
	return lastCookieOf(resp.Cookies(), name)
}

func lastCookieOf(cookies []*http.Cookie, name string) *http.Cookie {
	var last *http.Cookie
	for _, c := range cookies {
		if c.Name == name {
			last = c
		}
	}
	return last
}

// decodeStatus returns the cfWaitingRoom object of a JSON answer.
func decodeStatus(t *testing.T, body string) map[string]any {
	t.Helper()
	var doc map[string]map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, body)
	}
	st, ok := doc["cfWaitingRoom"]
	if !ok || len(doc) != 1 {
		t.Fatalf("want one object cfWaitingRoom, got %s", body)
	}
	return st
}

func jsonType(v any) string {
	switch v.(type) {
	case bool:
		return "bool"
	case float64:
		return "number"
	case string:
		return "string"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// deadlineRecorder is a ResponseRecorder that also takes write deadlines, which
// http.ResponseController can reach only by unwrapping the middleware's writer.
type deadlineRecorder struct {
	*httptest.ResponseRecorder
	deadline time.Time
}

func (d *deadlineRecorder) SetWriteDeadline(t time.Time) error {
	d.deadline = t
	return nil
}

// A client that goes away (a cancelled or half-closed request) is not a store failure: with
// fail-open on, such a request is never let through, never reported, and does not reach the
// store once its context is over. A pass holder's due renewal still runs to the room's
// deadline.
func TestCanceledRequestsAreNotStoreFailures(t *testing.T) {
	e := newEnv(t)
	var served atomic.Int32
	site := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		io.WriteString(w, "app")
	})
	cfg := oneAtATime()
	h := e.protect(e.room("r", cfg), site, middleware.WithFailOpen(true), middleware.WithClock(e.clock.Now),
		middleware.WithoutJoinLimit()) // 200 joins from one address
	var holder visitor
	if resp := holder.get(h, "/"); resp.body != "app" {
		t.Fatalf("the first visitor: %d %q", resp.StatusCode, resp.body)
	}
	served.Store(0)
	e.calls.take()

	e.flaky.entered = make(chan struct{}, 1)
	e.flaky.failing.Store(true) // every store call now waits for its context to end
	for i := range 200 {
		ctx, cancel := context.WithCancel(context.Background())
		r := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
		if i%2 == 0 {
			cancel() // gone before the request is served
		} else {
			go func() { <-e.flaky.entered; cancel() }() // gone while the store is asked
		}
		resp := serve(h, r)
		cancel()
		if resp.StatusCode != 499 || resp.body == "app" {
			t.Fatalf("request %d, cancelled: %d %q, want 499 and not the app", i, resp.StatusCode, resp.body)
		}
	}
	if n := served.Load(); n != 0 {
		t.Errorf("%d cancelled requests reached the app with fail-open on", n)
	}
	if errs := e.takeErrors(); len(errs) != 0 {
		t.Errorf("cancelled requests reported as store failures: %v", errs)
	}
	if got := e.calls.take(); got["Join"] != 100 {
		t.Errorf("store calls %v: want 100 joins (those cancelled before being served make none)", got)
	}

	// A due renewal does not stop with the client that asked for it.
	e.flaky.failing.Store(false)
	e.flaky.entered = nil
	e.clock.Advance(61 * time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
	r.AddCookie(&http.Cookie{Name: "wr_r", Value: holder.cookies["wr_r"]})
	if resp := serve(h, r); resp.body != "app" || lastCookie(resp, "wr_r") == nil {
		t.Errorf("a pass holder whose client left: %d %q, want the app and the renewed pass", resp.StatusCode, resp.body)
	}
	e.wantCalls(calls{"Renew": 1})
}

// Requests no person reads (HEAD, OPTIONS, prefetches) take no place: a script of 1,000 of
// them, without cookies, puts nobody ahead of the next real visitor and calls the store
// for none. With a ticket or a pass they are served as any other; WithPlaceless(nil) lets
// them join.
func TestPlacelessRequests(t *testing.T) {
	e := newEnv(t)
	var seen waitingroom.Status
	waiting := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = middleware.StatusFromContext(r.Context())
	})
	room := e.room("r", oneAtATime())
	h := e.protect(room, &app{}, middleware.WithWaitingPage(waiting), middleware.WithoutJoinLimit())
	var holder visitor
	holder.get(h, "/") // the seat
	e.calls.take()
	kinds := []func() *http.Request{
		func() *http.Request { return httptest.NewRequest(http.MethodHead, "/", nil) },
		func() *http.Request {
			r := httptest.NewRequest(http.MethodOptions, "/", nil)
			r.Header.Set("Origin", "https://other.example")
			r.Header.Set("Access-Control-Request-Method", "POST")
			return r
		},
		func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Sec-Purpose", "prefetch;prerender")
			return r
		},
		func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Header.Set("Purpose", "prefetch")
			return r
		},
	}
	for i := range 1000 {
		r := kinds[i%len(kinds)]()
		if i%8 == 7 {
			r.AddCookie(&http.Cookie{Name: "wr_r", Value: "junk"}) // a junk cookie is no ticket
		}
		resp := serve(h, r)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
			resp.Header.Get("Cache-Control") != "no-store" || len(resp.Cookies()) != 0 {
			t.Fatalf("%s %v: %d %v, want 503 with Retry-After, no-store and no cookie", r.Method, r.Header, resp.StatusCode, resp.Header)
		}
		if r.Method == http.MethodHead && resp.body != "" {
			t.Fatalf("HEAD with a body: %q", resp.body)
		}
	}
	e.wantCalls(calls{})
	var next visitor
	next.get(h, "/")
	if seen.UsersAhead != 0 {
		t.Errorf("after 1,000 placeless requests the next visitor has %d ahead, want 0", seen.UsersAhead)
	}
	// With a ticket a HEAD polls; with a pass it is served.
	if resp := next.do(h, httptest.NewRequest(http.MethodHead, "/", nil)); resp.StatusCode == http.StatusServiceUnavailable {
		t.Errorf("HEAD with a ticket: %d, want the waiting answer", resp.StatusCode)
	}
	if resp := holder.do(h, httptest.NewRequest(http.MethodHead, "/", nil)); resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD with a pass: %d, want the app", resp.StatusCode)
	}
	// Without the default, each takes a place: the same 1,000 put 1,000 people ahead of the
	// next visitor (the figure the README gives for before).
	other := e.room("other", oneAtATime())
	h = e.protect(other, &app{}, middleware.WithWaitingPage(waiting), middleware.WithPlaceless(nil), middleware.WithoutJoinLimit())
	var seat visitor
	seat.get(h, "/")
	for i := range 1000 {
		if resp := serve(h, kinds[i%len(kinds)]()); resp.StatusCode == http.StatusServiceUnavailable || len(resp.Cookies()) == 0 {
			t.Fatalf("with WithPlaceless(nil), request %d: %d, cookies %v; want a place", i, resp.StatusCode, resp.Cookies())
		}
	}
	var late visitor
	late.get(h, "/")
	if seen.UsersAhead != 1000 {
		t.Errorf("with WithPlaceless(nil) the next visitor has %d ahead, want 1,000", seen.UsersAhead)
	}
}

// A request that never joins runs no join guard: it neither spends its client's join limit
// (on by default) nor asks the verifier.
func TestPlacelessRunsNoGuard(t *testing.T) {
	e := newEnv(t)
	asked := 0
	verifier := middleware.JoinVerifierFunc(func(*http.Request) middleware.Verdict { asked++; return middleware.Allow })
	h := e.protect(e.room("r", oneAtATime()), &app{}, middleware.WithJoinVerifier(verifier))
	for range 100 { // far more than the default limit's 30 at once, from one address
		if resp := serve(h, httptest.NewRequest(http.MethodHead, "/", nil)); resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("HEAD: %d, want 503", resp.StatusCode)
		}
	}
	if asked != 0 {
		t.Fatalf("the verifier was asked %d times for placeless requests", asked)
	}
	var v visitor
	if resp := v.get(h, "/"); resp.StatusCode != http.StatusOK || asked != 1 {
		t.Fatalf("a visitor from the same address after them: %d, verifier asked %d; want in, asked once", resp.StatusCode, asked)
	}
}
