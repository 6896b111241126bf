package middleware_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/middleware"
	"github.com/waitingroom-go/waitingroom/token"
)

// postAs sends a form to h with the cookie value raw ("" for none).
func postAs(h http.Handler, raw string, mods ...func(*http.Request)) reply {
	r := httptest.NewRequest(http.MethodPost, "/reserve", strings.NewReader(url.Values{"name": {"Alice"}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Referer", "http://example.com/form?x=1")
	if raw != "" {
		r.AddCookie(&http.Cookie{Name: "wr_r", Value: raw})
	}
	for _, m := range mods {
		m(r)
	}
	return serve(h, r)
}

// TestInterruptions sends a form in each way it can fail to go through: the keep hook sees
// why, keeps the body, and the page tells the visitor the truth.
func TestInterruptions(t *testing.T) {
	e := newEnv(t)
	room := e.room("r", oneAtATime()) // sessions of 5 minutes
	var kept []middleware.Interruption
	keep := keepAlices(t, &kept)
	clock := middleware.WithClock(e.clock.Now)
	h := e.protect(room, &app{}, clock, middleware.WithKeep(keep), middleware.WithPages(middleware.Pages{Location: time.UTC}))
	var alice, bob visitor
	alice.get(h, "/")
	pass := alice.cookies["wr_r"]
	bob.get(h, "/")
	ticket := bob.cookies["wr_r"]
	e.calls.take()

	// A ticket: still in the queue.
	resp := postAs(h, ticket)
	if !strings.Contains(resp.body, "you are still in the queue") || !strings.Contains(resp.body, "What you typed has been kept") ||
		!strings.Contains(resp.body, `content="20; url=/form?x=1"></noscript>`) || !strings.Contains(resp.body, `"next":"/form?x=1"`) {
		t.Errorf("a form with a ticket: %s", resp.body)
	}
	// No cookie: unknown, never "your time ran out"; the page checks for refused cookies.
	resp = postAs(h, "")
	if !strings.Contains(resp.body, "we could not recognise your visit") || strings.Contains(resp.body, "ran out") ||
		!strings.Contains(resp.body, `data-cookies-off="Your form was not sent: your browser does not accept cookies`) {
		t.Errorf("a form without a cookie: %s", resp.body)
	}
	// A pass whose session expired: when. Bob polls meanwhile and takes the place.
	e.clock.Advance(4 * time.Minute)
	bob.get(h, "/")
	e.clock.Advance(2 * time.Minute)
	if resp := bob.get(h, "/"); resp.body != "app" {
		t.Fatalf("bob after alice's session: %q", resp.body)
	}
	resp = postAs(h, pass)
	if !strings.Contains(resp.body, "your time on the site ran out at 9:05 AM") {
		t.Errorf("a form after the session: %s", resp.body)
	}
	want := []middleware.Interruption{{Reason: middleware.InQueue}, {Reason: middleware.NoCookie},
		{Reason: middleware.SessionEnded, Ended: t0.Add(5 * time.Minute)}}
	if fmt.Sprint(kept) != fmt.Sprint(want) {
		t.Errorf("the hook saw %v, want %v", kept, want)
	}
	// GETs are never interrupted, and without a hook nothing is kept.
	kept = nil
	bob.get(h, "/")
	h2 := e.protect(room, &app{}, clock)
	resp = postAs(h2, "")
	if len(kept) != 0 || !strings.Contains(resp.body, "What you typed could not be kept") {
		t.Errorf("hook calls %v; without a hook: %s", kept, resp.body)
	}
	// A pass still valid whose session the room ended (released): it ended, time unknown.
	room3 := e.room("r3", oneAtATime())
	h3 := e.protect(room3, &app{}, clock, middleware.WithKeep(keep))
	var carol, dave visitor
	carol.get(h3, "/")
	p3, err := room3.Codec().ParsePass("r3", carol.cookies["wr_r3"], e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := room3.Release(context.Background(), p3); err != nil {
		t.Fatal(err)
	}
	dave.get(h3, "/") // takes the place
	e.clock.Advance(61 * time.Second)
	kept = nil
	r := httptest.NewRequest(http.MethodPost, "/reserve", strings.NewReader("name=Alice"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(&http.Cookie{Name: "wr_r3", Value: carol.cookies["wr_r3"]})
	resp = serve(h3, r)
	if len(kept) != 1 || kept[0].Reason != middleware.SessionEnded || !kept[0].Ended.IsZero() ||
		!strings.Contains(resp.body, "Your form was not sent: your time on the site had ended.") {
		t.Errorf("a released session: hook %v, page %s", kept, resp.body)
	}
}

// TestPostGrace checks when the room is asked to revive a session: a form sent with a pass
// that expired less than the grace ago, and nothing else.
func TestPostGrace(t *testing.T) {
	e := newEnv(t)
	cfg := oneAtATime()
	room := e.room("r", cfg)
	var asked []token.Pass
	revived := true
	h := e.protect(room, &app{}, middleware.WithClock(e.clock.Now), middleware.WithPostGrace(2*time.Minute))
	middleware.SetRevive(h, func(ctx context.Context, p token.Pass) (waitingroom.Visit, error) {
		asked = append(asked, p)
		if !revived {
			return waitingroom.Visit{}, nil
		}
		p.Expires = e.clock.Now().Add(5 * time.Minute)
		raw, err := room.Codec().SignPass(p)
		return waitingroom.Visit{Outcome: waitingroom.Admitted, Token: raw, MaxAge: 5 * time.Minute, Pass: p}, err
	})
	var alice visitor
	resp := alice.get(h, "/")
	if c := lastCookie(resp, "wr_r"); c == nil || c.MaxAge != 300+3600 {
		t.Fatalf("the pass's cookie should outlive it by an hour: %v", resp.Header.Values("Set-Cookie"))
	}
	pass := alice.cookies["wr_r"]

	e.clock.Advance(5*time.Minute + 30*time.Second) // expired 30 s ago
	if resp := alice.get(h, "/"); len(asked) != 0 {
		t.Errorf("a GET asked for a revival: %d %q", resp.StatusCode, resp.body)
	}
	alice.cookies["wr_r"] = pass
	resp = postAs(h, pass)
	if resp.body != "app" || len(asked) != 1 || !asked[0].Expires.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("a form 30 s late with a revival: %q, asked %v", resp.body, asked)
	}
	if c := lastCookie(resp, "wr_r"); c == nil || c.MaxAge != 300+3600 {
		t.Errorf("the revived pass was not given: %v", resp.Header.Values("Set-Cookie"))
	}
	revived = false
	if resp := postAs(h, pass); resp.body == "app" || len(asked) != 2 || !strings.Contains(resp.body, "ran out") {
		t.Errorf("no revival: %q, asked %d times", resp.body, len(asked))
	}
	e.clock.Advance(2 * time.Minute) // 2m30s late
	if postAs(h, pass); len(asked) != 2 {
		t.Errorf("asked for a revival beyond the grace")
	}
}

func keepaliveOf(h http.Handler, raw string) (int, map[string]any) {
	_, code, a := keepaliveReply(h, raw)
	return code, a
}

// keepaliveReply calls the keepalive endpoint with the cookie value raw ("" for none): the
// response, its status and its JSON.
func keepaliveReply(h http.Handler, raw string) (reply, int, map[string]any) {
	r := httptest.NewRequest(http.MethodPost, "/keepalive", nil)
	if raw != "" {
		r.AddCookie(&http.Cookie{Name: "wr_r", Value: raw})
	}
	resp := serve(h, r)
	var a map[string]any
	json.Unmarshal([]byte(resp.body), &a)
	return resp, resp.StatusCode, a
}

func TestKeepalive(t *testing.T) {
	e := newEnv(t)
	cfg := oneAtATime() // sessions of 5 minutes, renewed once a minute at most
	room := e.room("r", cfg)
	var passSeen token.Pass
	site := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		passSeen, _ = middleware.PassFromContext(r.Context())
		w.Write([]byte(middleware.KeepaliveScript(r, "/keepalive", "n1")))
	})
	clock := middleware.WithClock(e.clock.Now)
	h := e.protect(room, site, clock, middleware.WithKeepalive("/keepalive"))
	var alice, bob visitor
	resp := alice.get(h, "/")
	if !passSeen.Expires.Equal(t0.Add(5*time.Minute)) || !strings.Contains(resp.body, `{"url":"/keepalive","expiresIn":300,"renewIn":60}`) ||
		!strings.Contains(resp.body, `<script nonce="n1">`) {
		t.Fatalf("pass %+v, script %q", passSeen, resp.body)
	}
	bob.get(h, "/")
	e.calls.take()

	code, a := keepaliveOf(h, alice.cookies["wr_r"])
	if code != 200 || a["active"] != true || a["expiresInSeconds"] != 300.0 || a["renewInSeconds"] != 60.0 {
		t.Errorf("at once: %d %v", code, a)
	}
	e.wantCalls(calls{})
	e.clock.Advance(61 * time.Second)
	resp, _, a = keepaliveReply(h, alice.cookies["wr_r"])
	if a["expiresInSeconds"] != 300.0 {
		t.Errorf("after the renew interval: %v, want renewed to 300 s", a)
	}
	// The renewed pass's cookie outlives the pass, as an ordinary request's does, so that a
	// form sent after the session is told so, or let through within the post grace.
	if c := lastCookie(resp, "wr_r"); c == nil || c.MaxAge != 300+3600 {
		t.Errorf("the keepalive's cookie should outlive its pass by an hour: %v", resp.Header.Values("Set-Cookie"))
	}
	e.wantCalls(calls{"Renew": 1})
	// A renewal due while the store is down: 503 with Retry-After, the session still active
	// and no renewInSeconds 0 (which the script would take for "cannot be extended"); once
	// the store is back, the next call renews.
	e.clock.Advance(61 * time.Second)
	e.flaky.err = errors.New("connection reset")
	e.flaky.failing.Store(true)
	resp, _, a = keepaliveReply(h, alice.cookies["wr_r"])
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || a["active"] != true || a["renewInSeconds"] != nil {
		t.Errorf("a renewal due with the store down: %d %q %s, want 503 with Retry-After and active", resp.StatusCode, resp.Header.Get("Retry-After"), resp.body)
	}
	if errs := e.takeErrors(); len(errs) != 1 || !errors.Is(errs[0], waitingroom.ErrStore) {
		t.Errorf("errors reported: %v, want the store's failure once", errs)
	}
	e.flaky.failing.Store(false)
	e.clock.Advance(31 * time.Second) // past the room's pause before it tries again
	if code, a := keepaliveOf(h, alice.cookies["wr_r"]); code != 200 || a["expiresInSeconds"] != 300.0 || a["renewInSeconds"] != 60.0 {
		t.Errorf("the store back: %d %v, want renewed", code, a)
	}
	e.calls.take()
	// Nothing with a ticket, no cookie, or an expired pass: no place taken, no store call.
	for name, raw := range map[string]string{"ticket": bob.cookies["wr_r"], "none": "", "garbage": "x.y.z"} {
		if code, a := keepaliveOf(h, raw); code != 200 || a["active"] != false {
			t.Errorf("%s: %d %v", name, code, a)
		}
	}
	old := alice.cookies["wr_r"]
	e.clock.Advance(10 * time.Minute)
	if _, a := keepaliveOf(h, old); a["active"] != false {
		t.Errorf("expired: %v", a)
	}
	e.wantCalls(calls{})

	// With renewal disabled the end does not move: the script sees it and stops.
	cfg.DisableSessionRenewal = true
	// A deploy with new settings: WithOverwrite makes them replace the stored ones.
	h = e.protect(e.room("r", cfg, waitingroom.WithOverwrite()), site, clock, middleware.WithKeepalive("/keepalive"))
	var carol visitor
	carol.get(h, "/")
	e.clock.Advance(2 * time.Minute)
	if _, a := keepaliveOf(h, carol.cookies["wr_r"]); a["active"] != true || a["expiresInSeconds"] != 180.0 {
		t.Errorf("renewal disabled: %v, want 180 s left", a)
	}
	// Under MaxSessionDuration the renewals stop once one would carry the session past it:
	// the end stays put and the renewal stays due (renewInSeconds 0), which the script reads
	// as "cannot be extended".
	cfg.DisableSessionRenewal, cfg.MaxSessionDuration = false, 7*time.Minute
	h = e.protect(e.room("max", cfg), site, clock, middleware.WithKeepalive("/keepalive"), middleware.WithCookie(middleware.Cookie{Name: "wr_r"}))
	var dave visitor
	dave.get(h, "/")
	e.calls.take()
	e.clock.Advance(61 * time.Second)
	if resp, _, a := keepaliveReply(h, dave.cookies["wr_r"]); a["expiresInSeconds"] != 300.0 || a["renewInSeconds"] != 60.0 || lastCookie(resp, "wr_r") == nil {
		t.Errorf("a renewal within MaxSessionDuration: %v, want renewed to 300 s", a)
	} else {
		dave.cookies["wr_r"] = lastCookie(resp, "wr_r").Value
	}
	// At 2m02s a renewal would carry the session (now ending at 6m01s) to 7m02s.
	for _, step := range []struct {
		after time.Duration
		left  float64
	}{{61 * time.Second, 239}, {2 * time.Minute, 119}} {
		e.clock.Advance(step.after)
		resp, _, a := keepaliveReply(h, dave.cookies["wr_r"])
		if a["active"] != true || a["expiresInSeconds"] != step.left || a["renewInSeconds"] != 0.0 || lastCookie(resp, "wr_r") != nil {
			t.Errorf("at %v, past MaxSessionDuration's last renewal: %v, %q; want %v s left, the renewal due, no new pass",
				e.clock.Now().Sub(t0), a, resp.Header.Values("Set-Cookie"), step.left)
		}
	}
	e.wantCalls(calls{"Renew": 1})
	// The script is inert outside a session.
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if s := string(middleware.KeepaliveScript(r, "/keepalive", "")); !strings.Contains(s, `"expiresIn":-1`) || strings.Contains(s, "nonce") {
		t.Errorf("script without a session: %q", s)
	}
}

// The room itself revives a late form's session while the site has room for it, and not
// once another visitor has taken the place.
func TestPostGraceWithTheRoom(t *testing.T) {
	e := newEnv(t)
	room := e.room("r", oneAtATime())
	h := e.protect(room, &app{}, middleware.WithClock(e.clock.Now), middleware.WithPostGrace(2*time.Minute))
	var alice, bob visitor
	alice.get(h, "/")
	pass := alice.cookies["wr_r"]

	e.clock.Advance(5*time.Minute + 30*time.Second) // the session ended 30 s ago, the room is empty
	resp := postAs(h, pass)
	if resp.body != "app" {
		t.Fatalf("a form 30 s late into an empty room: %d %q, want it let through", resp.StatusCode, resp.body)
	}
	if c := lastCookie(resp, "wr_r"); c == nil || c.Value == pass {
		t.Fatalf("no new pass for the revived session: %v", resp.Header.Values("Set-Cookie"))
	}
	revived := lastCookie(resp, "wr_r").Value

	// The revived session ends too, and bob takes the place before the next late form.
	e.clock.Advance(5*time.Minute + 10*time.Second)
	if resp := bob.get(h, "/"); resp.body != "app" {
		t.Fatalf("bob: %d %q, want the app", resp.StatusCode, resp.body)
	}
	if resp := postAs(h, revived); resp.body == "app" || !strings.Contains(resp.body, "ran out") {
		t.Errorf("a late form with the room full: %d %q, want the page saying the time ran out", resp.StatusCode, resp.body)
	}
}

// TestKeepaliveThenLateForm follows a form page whose keepalive renewed the session, then
// sat idle past the session's end: the form sent within the post grace is let through, in a
// browser that drops each cookie at its Max-Age (on the test's clock).
func TestKeepaliveThenLateForm(t *testing.T) {
	e := newEnv(t)
	room := e.room("r", waitingroom.Config{TotalActiveUsers: 3, NewUsersPerMinute: 1}) // sessions of 5 minutes
	h := e.protect(room, &app{}, middleware.WithClock(e.clock.Now), middleware.WithKeepalive("/keepalive"),
		middleware.WithPostGrace(2*time.Minute))
	alice := visitor{clock: e.clock.Now}
	if resp := alice.get(h, "/"); resp.body != "app" {
		t.Fatalf("alice: %q", resp.body)
	}
	e.clock.Advance(61 * time.Second) // the renewal is due; the person types
	resp := alice.do(h, httptest.NewRequest(http.MethodPost, "/keepalive", nil))
	var a map[string]any
	if err := json.Unmarshal([]byte(resp.body), &a); err != nil || a["expiresInSeconds"] != 300.0 {
		t.Fatalf("keepalive: %q", resp.body)
	}
	// Then nothing until 30 s after the renewed session ended (at 9:06:01). Bob and carol
	// came in meanwhile, carol 20 s before the form: the rate lets nobody new in for a
	// minute, so a stranger would wait though the site has room for one more.
	var bob, carol visitor
	e.clock.Advance(time.Minute)
	if resp := bob.get(h, "/"); resp.body != "app" {
		t.Fatalf("bob: %q", resp.body)
	}
	e.clock.Advance(4*time.Minute + 10*time.Second)
	if resp := carol.get(h, "/"); resp.body != "app" {
		t.Fatalf("carol: %q", resp.body)
	}
	e.clock.Advance(20 * time.Second)
	form := httptest.NewRequest(http.MethodPost, "/reserve", strings.NewReader("name=Alice"))
	form.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp := alice.do(h, form); resp.body != "app" {
		t.Errorf("a form 30 s after the session that the keepalive renewed: %d, want it let through within the grace: %.300q",
			resp.StatusCode, resp.body)
	}
}

// TestFormDuringOutage sends forms while the store is down: the keep hook keeps each one,
// and the outage page says the form was not sent, why, and that it was kept.
func TestFormDuringOutage(t *testing.T) {
	e := newEnv(t)
	room := e.room("r", oneAtATime())
	var kept []middleware.Interruption
	keep := keepAlices(t, &kept)
	h := e.protect(room, &app{}, middleware.WithClock(e.clock.Now), middleware.WithKeep(keep),
		middleware.WithPostGrace(2*time.Minute), middleware.WithPages(middleware.Pages{Location: time.UTC}))
	var alice, bob, carol visitor
	alice.get(h, "/")
	pass := alice.cookies["wr_r"]
	bob.get(h, "/")
	carol.get(h, "/")
	e.clock.Advance(5*time.Minute + 30*time.Second) // alice's session ended 30 s ago
	bob.get(h, "/")                                 // bob takes her place
	carol.get(h, "/")                               // carol still waits
	ticket := carol.cookies["wr_r"]
	e.calls.take()
	e.flaky.err = errors.New("connection refused")
	e.flaky.failing.Store(true)
	e.clock.Advance(20 * time.Second) // carol's next poll is due: the store is asked

	for _, tt := range []struct {
		name, raw, says string
		want            middleware.Interruption
		errs            int
	}{
		{"no cookie", "", "we could not recognise your visit", middleware.Interruption{Reason: middleware.NoCookie}, 1},
		{"a ticket", ticket, "you are still in the queue", middleware.Interruption{Reason: middleware.InQueue}, 1},
		// The revival and the room's answer both fail.
		{"a pass in the grace", pass, "ran out at 9:05 AM", middleware.Interruption{Reason: middleware.SessionEnded, Ended: t0.Add(5 * time.Minute)}, 2},
	} {
		kept = nil
		resp := postAs(h, tt.raw)
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(resp.body, "Sorry, something went wrong on our side") ||
			!strings.Contains(resp.body, tt.says) || !strings.Contains(resp.body, "What you typed has been kept") {
			t.Errorf("%s: %d %.2000q", tt.name, resp.StatusCode, resp.body)
		}
		if len(kept) != 1 || kept[0] != tt.want {
			t.Errorf("%s: the hook saw %v, want %v", tt.name, kept, tt.want)
		}
		if errs := e.takeErrors(); len(errs) != tt.errs {
			t.Errorf("%s: %d store failures reported, want %d: %v", tt.name, len(errs), tt.errs, errs)
		}
	}
}

// TestFormToClosedRoom sends forms to a room that rejects everyone: the keep hook keeps
// them, and the closed page says the form was not sent and why.
func TestFormToClosedRoom(t *testing.T) {
	e := newEnv(t)
	cfg := oneAtATime()
	room := e.room("r", cfg)
	var kept []middleware.Interruption
	keep := keepAlices(t, &kept)
	opts := []middleware.Option{middleware.WithClock(e.clock.Now), middleware.WithKeep(keep), middleware.WithPages(middleware.Pages{Location: time.UTC})}
	h := e.protect(room, &app{}, opts...)
	var alice visitor
	alice.get(h, "/")
	pass := alice.cookies["wr_r"]
	e.clock.Advance(6 * time.Minute) // alice's session ended a minute ago; then the room closes
	cfg.QueueingMethod = waitingroom.Reject
	if err := room.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name, raw, says string
		want            middleware.Interruption
	}{
		{"no cookie", "", "we could not recognise your visit", middleware.Interruption{Reason: middleware.NoCookie}},
		{"an expired pass", pass, "ran out at 9:05 AM", middleware.Interruption{Reason: middleware.SessionEnded, Ended: t0.Add(5 * time.Minute)}},
	} {
		kept = nil
		resp := postAs(h, tt.raw)
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(resp.body, "Closed for now") ||
			!strings.Contains(resp.body, tt.says) || !strings.Contains(resp.body, "What you typed has been kept") {
			t.Errorf("%s: %d %.2000q", tt.name, resp.StatusCode, resp.body)
		}
		if len(kept) != 1 || kept[0] != tt.want {
			t.Errorf("%s: the hook saw %v, want %v", tt.name, kept, tt.want)
		}
	}
}

// keepAlices is a keep hook that records each interruption in kept and checks that it can
// read the form's name field, Alice's; it says the form was kept.
func keepAlices(t *testing.T, kept *[]middleware.Interruption) func(http.ResponseWriter, *http.Request, middleware.Interruption) bool {
	return func(w http.ResponseWriter, r *http.Request, in middleware.Interruption) bool {
		if r.FormValue("name") != "Alice" {
			t.Errorf("the hook cannot read the form")
		}
		*kept = append(*kept, in)
		return true
	}
}
