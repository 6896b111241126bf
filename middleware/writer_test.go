package middleware_test

import (
	"bufio"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/middleware"
	"github.com/waitingroom-go/waitingroom/token"
)

// The command header is the app's word to the middleware: it never reaches the visitor,
// whichever way the request went. Only an admitted request has a session to revoke.
func TestCommandHeaderIsRemovedWhereverTheHandlerRuns(t *testing.T) {
	writes := []struct {
		name     string
		h        http.HandlerFunc
		wantCode int
	}{
		{name: "body", wantCode: http.StatusOK, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(middleware.CommandHeader, "revoke")
			io.WriteString(w, "bye")
		}},
		{name: "WriteHeader", wantCode: http.StatusSeeOther, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(middleware.CommandHeader, "revoke")
			w.WriteHeader(http.StatusSeeOther)
		}},
		{name: "nothing written", wantCode: http.StatusOK, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(middleware.CommandHeader, "revoke")
		}},
		{name: "Flush", wantCode: http.StatusOK, h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set(middleware.CommandHeader, "revoke")
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Errorf("Flush: %v", err)
			}
		}},
	}
	paths := []struct {
		name      string
		target    string
		holder    bool // the request carries the admitted visitor's pass
		before    func(e *env, room *waitingroom.Room)
		wantCalls calls
	}{
		{name: "bypass", target: "/healthz", holder: true, wantCalls: calls{}},
		{name: "suspended", target: "/", holder: true, wantCalls: calls{}, before: func(e *env, room *waitingroom.Room) {
			cfg := room.Config()
			cfg.Suspended = true
			if err := room.SetConfig(cfg); err != nil {
				e.t.Fatal(err)
			}
		}},
		{name: "fail open", target: "/", wantCalls: calls{"Join": 1}, before: func(e *env, room *waitingroom.Room) {
			e.flaky.err = errors.New("connection refused")
			e.flaky.failing.Store(true)
		}},
	}
	for _, p := range paths {
		for _, wr := range writes {
			t.Run(p.name+"/"+wr.name, func(t *testing.T) {
				e := newEnv(t)
				room := e.room("r", oneAtATime())
				mux := http.NewServeMux()
				mux.Handle("/app", &app{})
				mux.Handle("/", wr.h)
				h := e.protect(room, mux,
					middleware.WithFailOpen(true),
					middleware.WithBypass(func(r *http.Request) bool { return r.URL.Path == "/healthz" }))
				var holder visitor
				if resp := holder.get(h, "/app"); resp.body != "app" {
					t.Fatalf("holder not admitted: %d %q", resp.StatusCode, resp.body)
				}
				e.calls.take()
				if p.before != nil {
					p.before(e, room)
				}

				var v visitor
				if p.holder {
					v = visitor{cookies: map[string]string{"wr_r": holder.cookies["wr_r"]}}
				}
				resp := v.get(h, p.target)
				if resp.StatusCode != wr.wantCode {
					t.Errorf("status %d, want the handler's %d", resp.StatusCode, wr.wantCode)
				}
				if got := resp.Header.Values(middleware.CommandHeader); len(got) != 0 {
					t.Errorf("command header leaked to the visitor: %q", got)
				}
				if got := resp.Header.Values("Set-Cookie"); len(got) != 0 {
					t.Errorf("the room touched the cookie: %q", got)
				}
				e.wantCalls(p.wantCalls) // no Release: there is no session to end
				if p.name == "fail open" {
					if errs := e.takeErrors(); len(errs) != 1 || !errors.Is(errs[0], waitingroom.ErrStore) {
						t.Errorf("error handler got %v, want one error wrapping ErrStore", errs)
					}
				}
			})
		}
	}
}

// hintsRecorder records the header of each informational response (103 Early Hints) the
// way net/http sends it: at once, with the header map as it is, before the final one.
type hintsRecorder struct {
	*httptest.ResponseRecorder
	hints []http.Header
}

func (r *hintsRecorder) WriteHeader(code int) {
	if code >= 100 && code < 200 {
		r.hints = append(r.hints, r.Header().Clone())
		return
	}
	r.ResponseRecorder.WriteHeader(code)
}

func TestRevokeAfterEarlyHints(t *testing.T) {
	e := newEnv(t)
	room := e.room("r", oneAtATime())
	mux := http.NewServeMux()
	mux.Handle("/", &app{})
	mux.HandleFunc("/end", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</app.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Set(middleware.CommandHeader, "revoke")
		io.WriteString(w, "bye")
	})
	h := e.protect(room, mux)
	var a visitor
	a.get(h, "/")
	e.calls.take()

	rec := &hintsRecorder{ResponseRecorder: httptest.NewRecorder()}
	req := httptest.NewRequest(http.MethodGet, "/end", nil)
	req.AddCookie(&http.Cookie{Name: "wr_r", Value: a.cookies["wr_r"]})
	h.ServeHTTP(rec, req)

	if len(rec.hints) != 1 || rec.hints[0].Get("Link") == "" {
		t.Fatalf("early hints %v, want one with the Link header", rec.hints)
	}
	resp := rec.Result()
	if got := resp.Header.Values(middleware.CommandHeader); len(got) != 0 {
		t.Errorf("command header set after 103 leaked: %q", got)
	}
	if c := lastCookieOf(resp.Cookies(), "wr_r"); c == nil || c.MaxAge >= 0 {
		t.Errorf("revoke after 103 did not clear the cookie: %q", resp.Header.Values("Set-Cookie"))
	}
	e.wantCalls(calls{"Release": 1})
}

// hijackRecorder is a ResponseRecorder that can hand over its connection and sends files
// with ReadFrom, as net/http's writer does.
type hijackRecorder struct {
	*httptest.ResponseRecorder
	hijacked bool
	readFrom bool
}

func (r *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	r.hijacked = true
	return nil, nil, nil
}

func (r *hijackRecorder) ReadFrom(src io.Reader) (int64, error) {
	r.readFrom = true
	return io.Copy(r.ResponseRecorder, src)
}

// The handler sees the underlying writer's Hijacker and ReaderFrom, which code that asserts
// them (older WebSocket libraries, io.Copy to sendfile) needs, on every path.
func TestWriterKeepsHijackAndReadFrom(t *testing.T) {
	for _, target := range []string{"/", "/healthz"} {
		t.Run(target, func(t *testing.T) {
			e := newEnv(t)
			cfg := oneAtATime()
			cfg.TotalActiveUsers, cfg.NewUsersPerMinute = 2, 2
			room := e.room("r", cfg)
			var hijackErr error
			h := e.protect(room, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set(middleware.CommandHeader, "revoke")
				if r.URL.Query().Has("ws") {
					hj, ok := w.(http.Hijacker)
					if !ok {
						t.Errorf("the handler's writer is no http.Hijacker")
						return
					}
					_, _, hijackErr = hj.Hijack()
					return
				}
				if _, ok := w.(io.ReaderFrom); !ok {
					t.Errorf("the handler's writer is no io.ReaderFrom")
				}
				io.Copy(w, struct{ io.Reader }{strings.NewReader("file")}) // as an *os.File would
			}), middleware.WithBypass(func(r *http.Request) bool { return r.URL.Path == "/healthz" }))

			rec := &hijackRecorder{ResponseRecorder: httptest.NewRecorder()}
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
			if !rec.readFrom || rec.Body.String() != "file" {
				t.Errorf("io.Copy did not reach the underlying ReadFrom (%v), body %q", rec.readFrom, rec.Body.String())
			}
			if got := rec.Result().Header.Values(middleware.CommandHeader); len(got) != 0 {
				t.Errorf("command header leaked: %q", got)
			}

			rec = &hijackRecorder{ResponseRecorder: httptest.NewRecorder()}
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target+"?ws", nil))
			if hijackErr != nil || !rec.hijacked {
				t.Errorf("Hijack: %v (hijacked %v), want the underlying writer's", hijackErr, rec.hijacked)
			}
			e.calls.take()
		})
	}

	t.Run("not supported", func(t *testing.T) {
		var hijackErr error
		h := middleware.Protect(newEnv(t).room("r", oneAtATime()), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _, hijackErr = w.(http.Hijacker).Hijack()
		}))
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
		if !errors.Is(hijackErr, http.ErrNotSupported) {
			t.Errorf("Hijack on a writer that cannot: %v, want http.ErrNotSupported", hijackErr)
		}
	})
}

// A browser may send several cookies of the room's name, one left over from an earlier
// cookie Path or Domain; it sends the longer Path first. The visitor keeps the place that
// any of them holds.
func TestDuplicateCookies(t *testing.T) {
	type tokens struct{ pass, ticket, expired string }
	tests := []struct {
		name      string
		cookies   func(tk tokens) []string
		wantBody  string
		wantCalls calls
	}{
		{name: "junk before a pass", wantBody: "app", wantCalls: calls{},
			cookies: func(tk tokens) []string { return []string{"junk", tk.pass} }},
		{name: "pass before junk", wantBody: "app", wantCalls: calls{},
			cookies: func(tk tokens) []string { return []string{tk.pass, "junk"} }},
		{name: "oversized before a pass", wantBody: "app", wantCalls: calls{},
			cookies: func(tk tokens) []string { return []string{strings.Repeat("a", token.MaxSize+1), tk.pass} }},
		{name: "ticket before a pass", wantBody: "app", wantCalls: calls{},
			cookies: func(tk tokens) []string { return []string{tk.ticket, tk.pass} }},
		{name: "expired pass before a ticket", wantBody: "waiting", wantCalls: calls{"Poll": 1},
			cookies: func(tk tokens) []string { return []string{tk.expired, tk.ticket} }},
		{name: "junk before a ticket", wantBody: "waiting", wantCalls: calls{"Poll": 1},
			cookies: func(tk tokens) []string { return []string{"junk", "iq", tk.ticket} }},
		// Junk that cannot be a token is passed over: a sibling subdomain's stuffing does
		// not throw the visitor out of the room.
		{name: "a pass after four junk cookies", wantBody: "app", wantCalls: calls{},
			cookies: func(tk tokens) []string { return []string{"j1", "j2", "j3", "j4", "j5", "j6", tk.pass} }},
		// Token-shaped values each cost a check: four are looked at, no more.
		{name: "a pass after four token-shaped others is not looked at", wantBody: "waiting", wantCalls: calls{"Join": 1},
			cookies: func(tk tokens) []string { return []string{"a.b.c", "d.e.f", "g.h.i", "j.k.l", tk.pass} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			room := e.room("r", oneAtATime())
			waiting := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "waiting") })
			h := e.protect(room, &app{}, middleware.WithWaitingPage(waiting), middleware.WithClock(e.clock.Now))
			var a, b visitor
			a.get(h, "/")
			b.get(h, "/")
			expired, err := room.Codec().SignPass(token.Pass{Room: "r", Session: 7,
				Issued: t0.Add(-time.Hour), Expires: t0.Add(-time.Minute), RenewAt: t0.Add(-time.Minute)})
			if err != nil {
				t.Fatal(err)
			}
			tk := tokens{pass: a.cookies["wr_r"], ticket: b.cookies["wr_r"], expired: expired}
			if tk.pass == "" || tk.ticket == "" {
				t.Fatalf("setup: pass %q, ticket %q", tk.pass, tk.ticket)
			}
			e.clock.Advance(30 * time.Second) // a counted poll
			e.calls.take()

			req := httptest.NewRequest(http.MethodGet, "/", nil)
			var header []string
			for _, v := range tt.cookies(tk) {
				header = append(header, "wr_r="+v)
			}
			req.Header.Set("Cookie", strings.Join(header, "; "))
			resp := serve(h, req)
			if resp.body != tt.wantBody {
				t.Errorf("got %d %q, want %q", resp.StatusCode, resp.body, tt.wantBody)
			}
			e.wantCalls(tt.wantCalls)
		})
	}
}

// A Cookie header past MaxCookieHeader is answered 431 before it is parsed, with no store
// call; one just under is served.
func TestHugeCookieHeader(t *testing.T) {
	e := newEnv(t)
	h := e.protect(e.room("r", oneAtATime()), &app{})
	for _, tt := range []struct {
		size int
		want int
	}{{middleware.MaxCookieHeader + 1, http.StatusRequestHeaderFieldsTooLarge}, {900 << 10, http.StatusRequestHeaderFieldsTooLarge}, {middleware.MaxCookieHeader - 100, http.StatusOK}} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Cookie", "junk="+strings.Repeat("x", tt.size-len("junk=")))
		if resp := serve(h, req); resp.StatusCode != tt.want {
			t.Errorf("a Cookie header of %d bytes: %d, want %d", tt.size, resp.StatusCode, tt.want)
		}
		if tt.want != http.StatusOK {
			e.wantCalls(calls{})
		}
	}
	e.calls.take()
}

// BenchmarkHugeCookieHeader is a request with a 900 KB Cookie header: 154 µs before it was
// cut early (2-core AMD EPYC VM), 0.3 µs now.
func BenchmarkHugeCookieHeader(b *testing.B) {
	h := middleware.Protect(benchRoom(b, 1), ok)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Cookie", "wr_r="+strings.Repeat("x", 900<<10))
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

// nil for a page or the clock means its default, as for the challenge page, rather than a
// panic on every request.
func TestNilOptionsAreTheDefaults(t *testing.T) {
	e := newEnv(t)
	room := e.room("r", oneAtATime())
	h := e.protect(room, &app{},
		middleware.WithWaitingPage(nil), middleware.WithClosedPage(nil),
		middleware.WithChallengePage(nil), middleware.WithClock(nil),
		middleware.WithJoinLimit(middleware.JoinLimit{PerMinute: 60}))
	var a, b visitor
	a.get(h, "/")
	if resp := b.get(h, "/"); !strings.Contains(resp.body, "You are in the queue") {
		t.Errorf("got %d %q, want the default waiting page", resp.StatusCode, resp.body)
	}
	cfg := room.Config()
	cfg.QueueingMethod = waitingroom.Reject
	if err := room.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if resp := b.get(h, "/"); !strings.Contains(resp.body, "not taking visitors") {
		t.Errorf("got %d %q, want the default closed page", resp.StatusCode, resp.body)
	}
}

// With an Ed25519 pass signer, the pass the middleware hands an admitted visitor verifies
// with the public keys the room publishes, so another service can check it without the
// store or the HMAC secrets; tickets stay HMAC and do not.
func TestEd25519SignedPasses(t *testing.T) {
	e := newEnv(t)
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	signer, err := token.NewEd25519Signer("ed-2026", ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	codec, err := token.NewCodec(e.keys, token.WithPassSigner(signer))
	if err != nil {
		t.Fatal(err)
	}
	room := e.room("r", oneAtATime(), waitingroom.WithCodec(codec))
	var site app
	h := e.protect(room, &site)

	jwks := serve(room.Codec().JWKSHandler(), httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil))
	if jwks.StatusCode != http.StatusOK {
		t.Fatalf("JWKS: %d %q", jwks.StatusCode, jwks.body)
	}
	verifier, err := token.NewVerifier([]byte(jwks.body))
	if err != nil {
		t.Fatalf("NewVerifier(%s): %v", jwks.body, err)
	}
	hmacOnly, err := token.NewCodec(e.keys)
	if err != nil {
		t.Fatal(err)
	}

	var a, b visitor
	if resp := a.get(h, "/"); resp.body != "app" {
		t.Fatalf("A not admitted: %d %q", resp.StatusCode, resp.body)
	}
	pass := a.cookies["wr_r"]
	p, err := verifier.ParsePass("r", pass, e.clock.Now())
	if err != nil {
		t.Fatalf("the admitted visitor's pass does not verify with the JWKS: %v", err)
	}
	if want := e.clock.Now().Add(5 * time.Minute); p.Room != "r" || !p.Expires.Equal(want) {
		t.Errorf("pass %+v, want room r expiring at %v", p, want)
	}
	if hdr, err := base64.RawURLEncoding.DecodeString(strings.Split(pass, ".")[0]); err != nil || !strings.Contains(string(hdr), `"alg":"EdDSA"`) {
		t.Errorf("pass header %s (%v), want alg EdDSA", hdr, err)
	}
	if _, err := hmacOnly.ParsePass("r", pass, e.clock.Now()); err == nil {
		t.Errorf("the pass verifies with the HMAC keys alone: not signed by the Ed25519 key")
	}
	if _, err := verifier.ParsePass("other", pass, e.clock.Now()); !errors.Is(err, token.ErrInvalid) {
		t.Errorf("pass for another room: %v, want ErrInvalid", err)
	}

	b.get(h, "/")
	if _, err := verifier.ParsePass("r", b.cookies["wr_r"], e.clock.Now()); err == nil {
		t.Errorf("the waiting visitor's ticket verifies as a pass")
	}
	e.calls.take()

	// The signed pass is accepted by the room as it is, and renewed with a signed one.
	e.clock.Advance(30 * time.Second)
	if resp := a.get(h, "/"); resp.body != "app" || len(resp.Header.Values("Set-Cookie")) != 0 {
		t.Errorf("A with a signed pass: %d %q, Set-Cookie %q", resp.StatusCode, resp.body, resp.Header.Values("Set-Cookie"))
	}
	e.wantCalls(calls{})
	e.clock.Advance(31 * time.Second)
	if resp := a.get(h, "/"); resp.body != "app" {
		t.Fatalf("A after the renew interval: %d %q", resp.StatusCode, resp.body)
	}
	e.wantCalls(calls{"Renew": 1})
	if a.cookies["wr_r"] == pass {
		t.Fatalf("no renewed pass")
	}
	if _, err := verifier.ParsePass("r", a.cookies["wr_r"], e.clock.Now()); err != nil {
		t.Errorf("the renewed pass does not verify with the JWKS: %v", err)
	}
	if site.hits.Load() != 3 {
		t.Errorf("app hits = %d, want 3", site.hits.Load())
	}
}
