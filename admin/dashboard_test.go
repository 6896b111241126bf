package admin_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/admin"
	"github.com/waitingroom-go/waitingroom/estimate"
	"github.com/waitingroom-go/waitingroom/store"
)

// send serves a request as a browser on the dashboard's own pages sends it (Sec-Fetch-Site:
// same-origin), with the session cookie c (nil: none), the form (nil: no body) and headers
// given as name, value pairs, which replace the defaults ("" removes one).
func (e *env) send(method, target string, c *http.Cookie, form url.Values, headers ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, target, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if c != nil {
		req.AddCookie(c)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

// login logs in with secret and returns the session cookie.
func (e *env) login(secret string) *http.Cookie {
	e.t.Helper()
	rec := e.send("POST", "/dashboard/login", nil, url.Values{"secret": {secret}})
	c := sessionCookie(rec)
	if rec.Code != http.StatusSeeOther || c == nil {
		e.t.Fatalf("login: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	return c
}

func sessionCookie(rec *httptest.ResponseRecorder) *http.Cookie {
	for _, c := range rec.Result().Cookies() {
		if c.Name == "wr_dashboard" {
			return c
		}
	}
	return nil
}

// The form's hidden version.
var versionField = regexp.MustCompile(`name="version" value="(\d+)"`)

func formVersion(t *testing.T, body string) string {
	t.Helper()
	m := versionField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no version in the form:\n%s", body)
	}
	return m[1]
}

func TestDashboardLogin(t *testing.T) {
	e := newEnv(t)
	e.create("a", validDoc)

	if rec := e.send("GET", "/", nil, nil); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/dashboard/" {
		t.Errorf("GET /: %d %v", rec.Code, rec.Header())
	}
	rec := e.send("GET", "/dashboard/rooms/a", nil, nil)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/dashboard/login?next=%2Fdashboard%2Frooms%2Fa" {
		t.Fatalf("a page without a session: %d %v", rec.Code, rec.Header())
	}
	if rec := e.send("GET", "/dashboard/login", nil, nil); rec.Code != 200 || !strings.Contains(rec.Body.String(), `name="secret" type="password"`) {
		t.Fatalf("the login form: %d %s", rec.Code, rec.Body)
	}

	// A wrong secret: a generic refusal, no cookie, and the secret is not logged.
	wrong := rwSecret + "-wrong"
	rec = e.send("POST", "/dashboard/login", nil, url.Values{"secret": {wrong}, "next": {"/dashboard/rooms/a"}})
	if rec.Code != http.StatusUnauthorized || sessionCookie(rec) != nil || !strings.Contains(rec.Body.String(), "That is not the secret of a token") {
		t.Errorf("a wrong secret: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	if strings.Contains(e.logs.String(), wrong) || strings.Contains(rec.Body.String(), wrong) || !strings.Contains(e.logs.String(), "dashboard login failed") {
		t.Errorf("the failed login's log or answer:\n%s\n%s", e.logs, rec.Body)
	}

	// The right one: a session cookie and back where the browser was going.
	rec = e.send("POST", "/dashboard/login", nil, url.Values{"secret": {rwSecret}, "next": {"/dashboard/rooms/a"}})
	c := sessionCookie(rec)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/dashboard/rooms/a" || c == nil {
		t.Fatalf("login: %d %v", rec.Code, rec.Header())
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure || c.Domain != "" || len(c.Value) != 43 {
		t.Errorf("the session cookie: %#v", c)
	}
	if strings.Contains(c.Value, rwSecret) || strings.Contains(e.logs.String(), rwSecret) {
		t.Error("the secret is in the cookie or the log")
	}
	if c2 := e.login(rwSecret); c2.Value == c.Value {
		t.Error("two logins got the same session ID")
	}
	// Over TLS, or through a proxy that says so, the cookie is Secure.
	req := httptest.NewRequest("POST", "/dashboard/login", strings.NewReader("secret="+rwSecret))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.TLS = &tls.ConnectionState{}
	tlsRec := httptest.NewRecorder()
	e.h.ServeHTTP(tlsRec, req)
	if c := sessionCookie(tlsRec); c == nil || !c.Secure {
		t.Errorf("a login over TLS: %v", tlsRec.Header())
	}
	if c := sessionCookie(e.send("POST", "/dashboard/login", nil, url.Values{"secret": {rwSecret}}, "X-Forwarded-Proto", "https")); c == nil || !c.Secure {
		t.Error("a login through a TLS proxy: the cookie is not Secure")
	}

	// The session opens the pages, and only them: the API still wants its bearer token,
	// and a bearer token opens no page.
	if rec := e.send("GET", "/dashboard/rooms/a", c, nil); rec.Code != 200 || !strings.Contains(rec.Body.String(), "Room <span class=\"room-id\">a</span>") {
		t.Errorf("the room page: %d %s", rec.Code, rec.Body)
	}
	if rec := e.send("GET", "/api/rooms", c, nil); rec.Code != http.StatusUnauthorized {
		t.Errorf("the API with a session cookie: %d", rec.Code)
	}
	if rec := e.send("GET", "/dashboard/", nil, nil, "Authorization", bearer(rwSecret)); rec.Code != http.StatusSeeOther {
		t.Errorf("the dashboard with a bearer token: %d", rec.Code)
	}
	if rec := e.do("GET", "/api/rooms/a", bearer(rwSecret), ""); rec.Code != 200 {
		t.Errorf("the API with a bearer token: %d", rec.Code)
	}

	// Only dashboard paths are where a login leads.
	for _, next := range []string{"https://evil.example/", "//evil.example/dashboard/", "/api/rooms", `/dashboard/\evil`, "javascript:alert(1)"} {
		rec := e.send("POST", "/dashboard/login", nil, url.Values{"secret": {rwSecret}, "next": {next}})
		if loc := rec.Header().Get("Location"); loc != "/dashboard/" {
			t.Errorf("next %q led to %q", next, loc)
		}
	}

	// Logging out ends the session here, not only in the browser.
	rec = e.send("POST", "/dashboard/logout", c, url.Values{})
	if out := sessionCookie(rec); rec.Code != http.StatusSeeOther || out == nil || out.MaxAge >= 0 {
		t.Errorf("logout: %d %v", rec.Code, rec.Header())
	}
	if rec := e.send("GET", "/dashboard/", c, nil); rec.Code != http.StatusSeeOther {
		t.Errorf("the old cookie after logout: %d", rec.Code)
	}
}

// Sessions end after 12 idle hours, and there are never more than MaxSessions.
func TestDashboardSessionExpiry(t *testing.T) {
	e := newEnv(t)
	now := t0
	var mu sync.Mutex
	admin.SetDashboardClock(e.h, func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	c := e.login(roSecret)
	for range 3 { // each use restarts the idle time
		advance(admin.SessionIdle - time.Minute)
		if rec := e.send("GET", "/dashboard/", c, nil); rec.Code != 200 {
			t.Fatalf("a session used within the idle limit: %d", rec.Code)
		}
	}
	advance(admin.SessionIdle)
	if rec := e.send("GET", "/dashboard/", c, nil); rec.Code != http.StatusSeeOther {
		t.Fatalf("a session idle for the limit: %d", rec.Code)
	}
	if rec := e.send("GET", "/dashboard/rooms.json", c, nil); rec.Code != http.StatusUnauthorized {
		t.Errorf("the script's request of an ended session: %d", rec.Code)
	}

	first := e.login(roSecret)
	for range admin.MaxSessions + 5 {
		advance(time.Second)
		e.login(roSecret)
	}
	if n := admin.DashboardSessions(e.h); n != admin.MaxSessions {
		t.Errorf("%d sessions kept, want %d", n, admin.MaxSessions)
	}
	if rec := e.send("GET", "/dashboard/", first, nil); rec.Code != http.StatusSeeOther {
		t.Errorf("the idlest session outlived the bound: %d", rec.Code)
	}
	advance(admin.SessionIdle)
	e.login(roSecret) // prunes the expired
	if n := admin.DashboardSessions(e.h); n != 1 {
		t.Errorf("%d sessions after they all expired and one login", n)
	}
}

// Failed logins are limited by address: past the burst, even the right secret waits.
func TestDashboardLoginLimit(t *testing.T) {
	e := newEnv(t)
	now := t0
	admin.SetDashboardClock(e.h, func() time.Time { return now })
	for i := range admin.LoginBurst {
		if rec := e.send("POST", "/dashboard/login", nil, url.Values{"secret": {fmt.Sprintf("guess-%02d-0123456789", i)}}); rec.Code != http.StatusUnauthorized {
			t.Fatalf("failed login %d: %d", i, rec.Code)
		}
	}
	rec := e.send("POST", "/dashboard/login", nil, url.Values{"secret": {rwSecret}})
	if rec.Code != http.StatusTooManyRequests || sessionCookie(rec) != nil || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("a login past the limit: %d %v", rec.Code, rec.Header())
	}
	req := httptest.NewRequest("POST", "/dashboard/login", strings.NewReader("secret="+rwSecret))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = "198.51.100.7:4000"
	other := httptest.NewRecorder()
	e.h.ServeHTTP(other, req)
	if other.Code != http.StatusSeeOther {
		t.Errorf("a login from another address: %d", other.Code)
	}
	now = now.Add(admin.LoginEvery)
	e.login(rwSecret)
}

// Without a session nothing is shown or changed; pages send the browser to log in.
func TestDashboardNeedsSession(t *testing.T) {
	e := newEnv(t)
	e.create("a", validDoc)
	before := e.state("a")
	form := url.Values{"version": {"1"}, "total_active_users": {"5"}, "message-ja": {"本日は満席です。"}, "do": {"set"}, "remaining": {"5"}}
	for _, tt := range []struct {
		method, target string
		status         int
	}{
		{"GET", "/dashboard/", http.StatusSeeOther},
		{"GET", "/dashboard/rooms/a", http.StatusSeeOther},
		{"GET", "/dashboard/rooms/a/suspend", http.StatusSeeOther},
		{"GET", "/dashboard/nothing", http.StatusSeeOther},
		{"POST", "/dashboard/rooms/a/settings", http.StatusSeeOther},
		{"POST", "/dashboard/rooms/a/suspend", http.StatusSeeOther},
		{"POST", "/dashboard/rooms/a/queue-all", http.StatusSeeOther},
		{"POST", "/dashboard/rooms/a/message", http.StatusSeeOther},
		{"POST", "/dashboard/rooms/a/slots", http.StatusSeeOther},
		{"GET", "/dashboard/rooms.json", http.StatusUnauthorized},
		{"GET", "/dashboard/rooms/a/live", http.StatusUnauthorized},
		{"GET", "/dashboard/rooms/a/chart", http.StatusUnauthorized},
		{"GET", "/dashboard/rooms/a/forecast?total_active_users=5", http.StatusUnauthorized},
	} {
		rec := e.send(tt.method, tt.target, &http.Cookie{Name: "wr_dashboard", Value: "made-up"}, form)
		if rec.Code != tt.status || strings.Contains(rec.Body.String(), `"waiting"`) {
			t.Errorf("%s %s: %d %s, want %d", tt.method, tt.target, rec.Code, rec.Body, tt.status)
		}
	}
	if after := e.state("a"); after != before {
		t.Errorf("the room changed:\n%+v\n%+v", before, after)
	}
	if n := slotsOf(t, e.room("a")); n != -1 {
		t.Errorf("slots set to %d without a session", n)
	}
}

// slotsOf is rm's count of slots left as its store has it; -1: not counted.
func slotsOf(t *testing.T, rm *waitingroom.Room) int64 {
	t.Helper()
	s, err := rm.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s.Slots
}

// A read-only token sees everything, forecasts included, and changes nothing.
func TestDashboardReadOnly(t *testing.T) {
	e := newEnv(t)
	e.create("a", validDoc)
	c := e.login(roSecret)
	before := e.state("a")
	page := e.send("GET", "/dashboard/rooms/a", c, nil).Body.String()
	for _, s := range []string{`id="save"`, `/dashboard/rooms/a/suspend"`, `/dashboard/rooms/a/queue-all"`, `id="message-form"`, `id="slots-form"`, `name="remaining"`} {
		if strings.Contains(page, s) {
			t.Errorf("a read-only page offers %s", s)
		}
	}
	if !strings.Contains(page, `id="preview"`) || !strings.Contains(page, "read-only") {
		t.Error("a read-only page has no preview, or does not say why it cannot save")
	}
	if !strings.Contains(page, `<h2 id="speak-heading">Speak to the queue</h2>`) || !strings.Contains(page, "No message") || !strings.Contains(page, `data-k="slots">–</span>`) {
		t.Error("a read-only page does not show what the queue is told")
	}
	if rec := e.send("GET", "/dashboard/rooms/a/forecast?total_active_users=50", c, nil); rec.Code != 200 {
		t.Errorf("a read-only forecast: %d", rec.Code)
	}
	for _, r := range []struct {
		method, target string
		form           url.Values
	}{
		{"POST", "/dashboard/rooms/a/settings", url.Values{"version": {"1"}, "total_active_users": {"150"}}},
		{"GET", "/dashboard/rooms/a/suspend", nil},
		{"POST", "/dashboard/rooms/a/suspend", url.Values{"version": {"1"}}},
		{"POST", "/dashboard/rooms/a/queue-all", url.Values{"version": {"1"}}},
		{"POST", "/dashboard/rooms/a/message", url.Values{"version": {"1"}, "message-en": {"Closed today."}, "close_when_sold_out": {"on"}}},
		{"POST", "/dashboard/rooms/a/slots", url.Values{"do": {"set"}, "remaining": {"10"}}},
		{"POST", "/dashboard/rooms/a/slots", url.Values{"do": {"stop"}}},
	} {
		if rec := e.send(r.method, r.target, c, r.form); rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "read-only") {
			t.Errorf("%s %s: %d %s", r.method, r.target, rec.Code, rec.Body)
		}
	}
	if after := e.state("a"); after != before {
		t.Errorf("the room changed:\n%+v\n%+v", before, after)
	}
	if n := slotsOf(t, e.room("a")); n != -1 {
		t.Errorf("a read-only token set the slots to %d", n)
	}
}

// Another site's forms are refused, whatever they post, and change nothing.
func TestDashboardCrossOrigin(t *testing.T) {
	e := newEnv(t)
	e.create("a", validDoc)
	c := e.login(rwSecret)
	before := e.state("a")
	crossSite := []string{"Sec-Fetch-Site", "cross-site"}
	foreign := []string{"Sec-Fetch-Site", "", "Origin", "https://evil.example"}
	for _, tt := range []struct {
		name, target string
		form         url.Values
		headers      []string
	}{
		{"settings, cross-site", "/dashboard/rooms/a/settings", url.Values{"version": {"1"}, "total_active_users": {"150"}}, crossSite},
		{"settings, foreign origin", "/dashboard/rooms/a/settings", url.Values{"version": {"1"}, "total_active_users": {"150"}}, foreign},
		{"suspend, cross-site", "/dashboard/rooms/a/suspend", url.Values{"version": {"1"}}, crossSite},
		{"queue-all, foreign origin", "/dashboard/rooms/a/queue-all", url.Values{"version": {"1"}}, foreign},
		{"message, cross-site", "/dashboard/rooms/a/message", url.Values{"version": {"1"}, "message-en": {"Closed today."}}, crossSite},
		{"message, foreign origin", "/dashboard/rooms/a/message", url.Values{"version": {"1"}, "message-en": {"Closed today."}}, foreign},
		{"slots, cross-site", "/dashboard/rooms/a/slots", url.Values{"do": {"set"}, "remaining": {"0"}}, crossSite},
		{"slots, foreign origin", "/dashboard/rooms/a/slots", url.Values{"do": {"set"}, "remaining": {"0"}}, foreign},
		{"same site, another origin", "/dashboard/rooms/a/suspend", url.Values{"version": {"1"}}, []string{"Sec-Fetch-Site", "same-site"}},
		{"logout", "/dashboard/logout", url.Values{}, crossSite},
		{"login", "/dashboard/login", url.Values{"secret": {rwSecret}}, crossSite},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := e.send("POST", tt.target, c, tt.form, tt.headers...)
			if rec.Code != http.StatusForbidden || sessionCookie(rec) != nil || !strings.Contains(rec.Body.String(), "another site") {
				t.Errorf("%d %v %s", rec.Code, rec.Header(), rec.Body)
			}
		})
	}
	if after := e.state("a"); after != before {
		t.Errorf("the room changed:\n%+v\n%+v", before, after)
	}
	if n := slotsOf(t, e.room("a")); n != -1 {
		t.Errorf("another site set the slots to %d", n)
	}
	if rec := e.send("GET", "/dashboard/", c, nil); rec.Code != 200 {
		t.Errorf("the session after a cross-site logout: %d", rec.Code)
	}
	if !strings.Contains(e.logs.String(), "cross-origin request refused") {
		t.Errorf("not logged:\n%s", e.logs)
	}
}

// The settings form saves against the version it was loaded at, in the trail as the token.
func TestDashboardSaveSettings(t *testing.T) {
	e := newEnv(t)
	e.create("a", validDoc)
	c := e.login(rwSecret)
	page := e.send("GET", "/dashboard/rooms/a", c, nil).Body.String()
	form := url.Values{"version": {formVersion(t, page)}, "total_active_users": {"150"}, "new_users_per_minute": {"60"},
		"session_duration": {"4"}, "typical_session_seconds": {"90"}, "refresh_interval_seconds": {"15"},
		"queue_hold_seconds": {"300"}, "arrival_grace_seconds": {"30"}}
	rec := e.send("POST", "/dashboard/rooms/a/settings", c, form)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/dashboard/rooms/a?done=settings&v=2" {
		t.Fatalf("save: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	s := e.state("a")
	cfg := e.room("a").Config()
	if s.version != 2 || s.roomVersion != 2 || cfg.TotalActiveUsers != 150 || cfg.NewUsersPerMinute != 60 ||
		cfg.SessionDuration != 4*time.Minute || cfg.TypicalSession != 90*time.Second || cfg.RefreshInterval != 15*time.Second || cfg.ArrivalGrace != 30*time.Second {
		t.Errorf("after the save: %+v, %+v", s, cfg)
	}
	ch, _ := e.st.Changes(context.Background(), "a")
	if ch[0].By != "ops" || ch[0].What != "dashboard" || ch[0].Version != 2 {
		t.Errorf("the trail: %+v", ch[0])
	}
	page = e.send("GET", rec.Header().Get("Location"), c, nil).Body.String()
	if !strings.Contains(page, "Saved: the room runs by version 2") || !strings.Contains(page, `id="f-total_active_users" name="total_active_users" type="number" inputmode="decimal" step="1" value="150"`) {
		t.Errorf("the page after the save:\n%s", page)
	}
	// The same values again: nothing is written.
	form.Set("version", "2")
	if rec := e.send("POST", "/dashboard/rooms/a/settings", c, form); rec.Header().Get("Location") != "/dashboard/rooms/a?done=unchanged&v=2" || e.state("a").version != 2 {
		t.Errorf("saving the same settings: %d %v", rec.Code, rec.Header())
	}
}

// A change made since the form was loaded is shown, never overwritten: here, on this
// instance, and on another whose room has not heard of it yet.
func TestDashboardConflict(t *testing.T) {
	for _, elsewhere := range []bool{false, true} {
		t.Run(fmt.Sprintf("elsewhere=%v", elsewhere), func(t *testing.T) {
			e := newEnv(t)
			e.create("a", validDoc)
			c := e.login(rwSecret)
			v := formVersion(t, e.send("GET", "/dashboard/rooms/a", c, nil).Body.String())
			other := e
			if elsewhere {
				other = newInstance(t, e.st)
				if err := other.reg.Refresh(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			cfg := other.room("a").Config()
			cfg.TotalActiveUsers, cfg.NewUsersPerMinute = 80, 40
			if _, _, err := other.reg.Put(context.Background(), "a", cfg, 1, store.Change{By: "alice", What: "patch"}); err != nil {
				t.Fatal(err)
			}
			before := e.state("a")
			rec := e.send("POST", "/dashboard/rooms/a/settings", c, url.Values{"version": {v}, "total_active_users": {"150"}, "new_users_per_minute": {"50"}})
			body := rec.Body.String()
			if rec.Code != http.StatusConflict {
				t.Fatalf("a stale save: %d %s", rec.Code, body)
			}
			for _, want := range []string{"The settings changed since you opened this form", "version 2", "by alice", "Nothing was saved",
				`name="total_active_users" type="number" inputmode="decimal" step="1" value="150"`, "Stored now: <strong>80</strong>",
				`name="new_users_per_minute" type="number" inputmode="decimal" step="1" value="50"`, "Stored now: <strong>40</strong>",
				`name="version" value="2"`} {
				if !strings.Contains(body, want) {
					t.Errorf("the conflict page has no %q:\n%s", want, body)
				}
			}
			if after := e.state("a"); after.version != 2 || after.changes != before.changes || after.doc != before.doc {
				t.Errorf("a stale save changed the room:\n%+v\n%+v", before, after)
			}
			if got := e.room("a").Config().TotalActiveUsers; got != 80 {
				t.Errorf("capacity %d after a stale save, want alice's 80", got)
			}
			// Having seen it, the operator saves again: now it stands.
			rec = e.send("POST", "/dashboard/rooms/a/settings", c, url.Values{"version": {formVersion(t, body)}, "total_active_users": {"150"}, "new_users_per_minute": {"50"}})
			if rec.Code != http.StatusSeeOther || e.room("a").Config().TotalActiveUsers != 150 {
				t.Errorf("saving after the conflict: %d %s", rec.Code, rec.Body)
			}
		})
	}
}

func (e *env) room(id string) *waitingroom.Room {
	e.t.Helper()
	rm, ok := e.reg.Room(id)
	if !ok {
		e.t.Fatalf("no room %s", id)
	}
	return rm
}

// Invalid values are marked next to their field, 422, nothing saved.
func TestDashboardInvalidSettings(t *testing.T) {
	tests := []struct {
		name, field, value, problem string
	}{
		{"zero capacity", "total_active_users", "0", "total_active_users must be at least 1"},
		{"rate above capacity", "new_users_per_minute", "500", "new_users_per_minute (500) exceeds total_active_users (100)"},
		{"not a number", "total_active_users", "lots", "Enter a number"},
		{"empty", "new_users_per_minute", "", "Enter a number."},
		{"a fraction of a person", "total_active_users", "1.5", "total_active_users must be an integer"},
		{"short session", "session_duration", "0.1", "session_duration must be from 10s to 24h"},
		{"a huge number", "total_active_users", "1e400", "Enter a number"},
		{"hold under two refreshes", "queue_hold_seconds", "30", "queue_hold_seconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.create("a", validDoc)
			c := e.login(rwSecret)
			before := e.state("a")
			rec := e.send("POST", "/dashboard/rooms/a/settings", c, url.Values{"version": {"1"}, tt.field: {tt.value}})
			body := rec.Body.String()
			if rec.Code != http.StatusUnprocessableEntity {
				t.Fatalf("%d %s", rec.Code, body)
			}
			marked := regexp.MustCompile(`id="f-` + tt.field + `"[^>]*value="` + regexp.QuoteMeta(tt.value) + `" aria-describedby="e-` + tt.field + ` h-` + tt.field + `" aria-invalid="true">\s*<p class="problem" id="e-` + tt.field + `">([^<]*)</p>`)
			m := marked.FindStringSubmatch(body)
			if m == nil || !strings.Contains(m[1], tt.problem) {
				t.Errorf("the field is not marked with %q:\n%s", tt.problem, body)
			}
			if strings.Count(body, `aria-invalid="true"`) != 1 {
				t.Errorf("%d fields marked", strings.Count(body, `aria-invalid="true"`))
			}
			if after := e.state("a"); after != before {
				t.Errorf("the room changed:\n%+v\n%+v", before, after)
			}
		})
	}
}

// Queue-all, suspend and resume each go through a confirmation, against its version.
func TestDashboardActions(t *testing.T) {
	e := newEnv(t)
	e.create("a", validDoc)
	c := e.login(rwSecret)
	for i, tt := range []struct {
		action              string
		queueAll, suspended bool
	}{
		{"suspend", false, true},
		{"queue-all", true, false},
		{"suspend", true, true},
		{"resume", false, false},
	} {
		before := e.state("a")
		page := e.send("GET", "/dashboard/rooms/a", c, nil).Body.String()
		if !strings.Contains(page, `href="/dashboard/rooms/a/`+tt.action+`"`) {
			t.Fatalf("%s: the room page offers no button:\n%s", tt.action, page)
		}
		rec := e.send("GET", "/dashboard/rooms/a/"+tt.action, c, nil)
		confirm := rec.Body.String()
		if rec.Code != 200 || !strings.Contains(confirm, `<form method="post" action="/dashboard/rooms/a/`+tt.action+`"`) ||
			!strings.Contains(confirm, `>Cancel</a>`) || formVersion(t, confirm) != strconv.FormatInt(before.version, 10) {
			t.Fatalf("%s: the confirmation: %d %s", tt.action, rec.Code, confirm)
		}
		if after := e.state("a"); after != before {
			t.Fatalf("%s: showing the confirmation changed the room", tt.action)
		}
		rec = e.send("POST", "/dashboard/rooms/a/"+tt.action, c, url.Values{"version": {formVersion(t, confirm)}})
		want := fmt.Sprintf("/dashboard/rooms/a?done=%s&v=%d", tt.action, before.version+1)
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != want {
			t.Fatalf("%s: %d %v %s", tt.action, rec.Code, rec.Header(), rec.Body)
		}
		cfg := e.room("a").Config()
		ch, _ := e.st.Changes(context.Background(), "a")
		if cfg.QueueAll != tt.queueAll || cfg.Suspended != tt.suspended || ch[0].By != "ops" || ch[0].What != tt.action || e.state("a").version != int64(i+2) {
			t.Errorf("%s: queue-all %v, suspended %v, trail %+v", tt.action, cfg.QueueAll, cfg.Suspended, ch[0])
		}
	}
	// A confirmation shown before another change does nothing, and says so.
	stale := e.send("GET", "/dashboard/rooms/a/suspend", c, nil).Body.String()
	cfg := e.room("a").Config()
	cfg.TotalActiveUsers = 99
	if _, _, err := e.reg.Put(context.Background(), "a", cfg, store.AnyVersion, store.Change{By: "alice"}); err != nil {
		t.Fatal(err)
	}
	before := e.state("a")
	rec := e.send("POST", "/dashboard/rooms/a/suspend", c, url.Values{"version": {formVersion(t, stale)}})
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "nothing was done") || formVersion(t, rec.Body.String()) != strconv.FormatInt(before.version, 10) {
		t.Errorf("a stale confirmation: %d %s", rec.Code, rec.Body)
	}
	if after := e.state("a"); after != before || e.room("a").Config().Suspended {
		t.Error("a stale confirmation changed the room")
	}
}

// The forecast is the planner's, for the queue now and the values asked about.
func TestDashboardForecast(t *testing.T) {
	e := newEnv(t, admin.WithStatsMaxAge(0))
	e.create("a", `{"total_active_users":2,"new_users_per_minute":2,"typical_session_seconds":120}`)
	c := e.login(roSecret)
	ctx := context.Background()
	for range 12 {
		if _, err := e.room("a").Enter(ctx, ""); err != nil {
			t.Fatal(err)
		}
	}
	scenario := estimate.Scenario{Arrivals: 10, TotalActiveUsers: 5, NewUsersPerMinute: 3, Session: 2 * time.Minute,
		RefreshInterval: 20 * time.Second, QueueHold: 5 * time.Minute, ArrivalGrace: 40 * time.Second}
	plan, err := estimate.Plan(scenario)
	if err != nil {
		t.Fatal(err)
	}
	type forecast struct {
		Waiting, Active int64
		Method          string
		Drain           float64 `json:"drain_seconds"`
		P50             float64 `json:"wait_p50_seconds"`
		Max             float64 `json:"wait_max_seconds"`
		Error           *apiError
		HTML            string
	}
	get := func(q string) (int, forecast) {
		rec := e.send("GET", "/dashboard/rooms/a/forecast?"+q, c, nil)
		var f forecast
		if err := json.Unmarshal(rec.Body.Bytes(), &f); err != nil {
			t.Fatalf("%s: %v", rec.Body, err)
		}
		return rec.Code, f
	}
	code, f := get("total_active_users=5&new_users_per_minute=3")
	if code != 200 || f.Waiting != 10 || f.Active != 2 || f.Method != "simulation" || f.Drain != plan.Drain.Seconds() ||
		f.P50 != plan.WaitP50.Seconds() || f.Max != plan.WaitMax.Seconds() || plan.Drain == 0 {
		t.Errorf("forecast %+v, want the plan's %v %v %v", f, plan.Drain, plan.WaitP50, plan.WaitMax)
	}
	if !strings.Contains(f.HTML, "<strong>10</strong> people waiting now are through in about <strong data-drain-seconds") || !strings.Contains(f.HTML, about(plan.Drain)) {
		t.Errorf("the forecast's text: %s", f.HTML)
	}
	// Fields left out are the room's; a longer stay is a slower queue.
	code, slower := get("total_active_users=5&new_users_per_minute=3&typical_session_seconds=600")
	if code != 200 || slower.Drain <= f.Drain {
		t.Errorf("a longer stay: %d %+v", code, slower)
	}
	// No typical stay: each stays a session, the room's default.
	if code, f := get("typical_session_seconds=0"); code != 200 || !strings.Contains(f.HTML, "stays 5 min (the room's session)") {
		t.Errorf("without a typical stay: %d %s", code, f.HTML)
	}
	// Above the simulation's limit: the closed form.
	restore := admin.SetMaxSimulated(5)
	code, fl := get("total_active_users=5&new_users_per_minute=3")
	restore()
	if want := estimate.FluidPlan(scenario); code != 200 || fl.Method != "closed form" || fl.Drain != want.Drain.Seconds() || fl.Max != want.WaitMax.Seconds() {
		t.Errorf("the closed form: %+v, want %+v", fl, want)
	}
	code, bad := get("total_active_users=5&new_users_per_minute=30")
	if code != http.StatusUnprocessableEntity || bad.Error == nil || bad.Error.Field != "new_users_per_minute" || !strings.Contains(bad.HTML, "exceeds") {
		t.Errorf("an invalid value: %d %+v", code, bad)
	}

	// Without script: the form's Preview shows the forecast of the values entered, and
	// saves nothing.
	before := e.state("a")
	rec := e.send("GET", "/dashboard/rooms/a?preview=1&version=1&total_active_users=5&new_users_per_minute=3", c, nil)
	body := rec.Body.String()
	if rec.Code != 200 || !strings.Contains(body, `value="5"`) || !strings.Contains(body, fmt.Sprintf(`data-drain-seconds="%v"`, plan.Drain.Seconds())) {
		t.Errorf("the preview: %d %s", rec.Code, body)
	}
	if after := e.state("a"); after != before {
		t.Error("a preview changed the room")
	}
}

// about is how the page writes a forecast's duration, for the durations the test meets.
func about(d time.Duration) string {
	if d < time.Minute {
		return "under a minute"
	}
	return fmt.Sprintf("%d min", int(d.Round(time.Minute).Minutes()))
}

// The overview lists the busiest rooms first, or in the order asked for, and the script's
// JSON has the same rows in the same order.
func TestDashboardOverview(t *testing.T) {
	e := newEnv(t, admin.WithStatsMaxAge(0))
	ctx := context.Background()
	// Rooms of one place: the first visitor goes in, the others wait.
	visitors := map[string]int{"quiet": 0, "one-in": 1, "busy": 4, "some": 2, "also-some": 2}
	for id, n := range visitors {
		e.create(id, `{"total_active_users":1,"new_users_per_minute":1}`)
		for range n {
			if _, err := e.room(id).Enter(ctx, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	c := e.login(roSecret)
	rowID := regexp.MustCompile(`<tr data-id="([^"]+)"`)
	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"", []string{"busy", "also-some", "some", "one-in", "quiet"}},
		{"?sort=id", []string{"also-some", "busy", "one-in", "quiet", "some"}},
		{"?sort=id&order=desc", []string{"some", "quiet", "one-in", "busy", "also-some"}},
		{"?sort=waiting", []string{"busy", "also-some", "some", "one-in", "quiet"}},
		{"?sort=waiting&order=asc", []string{"one-in", "quiet", "also-some", "some", "busy"}},
		{"?sort=active&order=asc", []string{"quiet", "also-some", "busy", "one-in", "some"}},
		{"?sort=bogus", []string{"busy", "also-some", "some", "one-in", "quiet"}},
	} {
		rec := e.send("GET", "/dashboard/"+tt.query, c, nil)
		var got []string
		for _, m := range rowID.FindAllStringSubmatch(rec.Body.String(), -1) {
			got = append(got, m[1])
		}
		if rec.Code != 200 || !slices.Equal(got, tt.want) {
			t.Errorf("%q: %d %v, want %v", tt.query, rec.Code, got, tt.want)
		}
		var data struct {
			Rows []struct {
				ID    string
				Cells map[string]string
			}
		}
		rec = e.send("GET", "/dashboard/rooms.json"+tt.query, c, nil)
		if err := json.Unmarshal(rec.Body.Bytes(), &data); err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, r := range data.Rows {
			got = append(got, r.ID)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%q, JSON: %v, want %v", tt.query, got, tt.want)
		}
	}
	page := e.send("GET", "/dashboard/", c, nil).Body.String()
	busy := regexp.MustCompile(`(?s)<tr data-id="busy".*?</tr>`).FindString(page)
	for _, cell := range []string{`data-k="active">1</span>`, `data-k="capacity">1</span>`, `data-k="waiting">3</td>`, `data-k="state">Open</span>`} {
		if !strings.Contains(busy, cell) {
			t.Errorf("the busy room's row has no %s:\n%s", cell, busy)
		}
	}
	if sorted := e.send("GET", "/dashboard/?sort=id", c, nil).Body.String(); !strings.Contains(sorted, `<th scope="col" class="col-id" aria-sort="ascending"><a href="/dashboard/?sort=id&amp;order=desc">`) {
		t.Errorf("the sorted column is not marked, or its link does not turn the order round:\n%s", sorted)
	}
	if !strings.Contains(page, `<noscript><meta http-equiv="refresh" content="10"></noscript>`) {
		t.Error("without script, the overview does not refresh itself")
	}
}

// The chart has a point and a bar per minute recorded in the last hour, and the same
// minutes as a table.
func TestDashboardChart(t *testing.T) {
	e := newEnv(t)
	e.create("a", validDoc)
	ctx := context.Background()
	// t0 is 09:00: the hour drawn is 08:00 to 08:59. 07:30 is before it.
	recorded := []int{-90, -50, -49, -48, -30, -1}
	for i, m := range recorded {
		start := t0.Add(time.Duration(m) * time.Minute)
		if err := e.st.Record(ctx, "a", store.Minute{Start: start, Joins: int64(10 + i), Admissions: int64(i + 1),
			PeakWaiting: int64(5 * i), Waiting: int64(4 * i), WaitingAt: start.Add(50 * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	c := e.login(roSecret)
	rec := e.send("GET", "/dashboard/rooms/a/chart", c, nil)
	chart := rec.Body.String()
	for _, tt := range []struct {
		what string
		n    int
	}{
		{`<circle class="point"`, 5},
		{`<rect class="bar"`, 5},
		{`<polyline class="line"`, 1}, // 08:10 to 08:12; the others stand alone
		{`<tr><th scope="row">`, 5},
	} {
		if got := strings.Count(chart, tt.what); got != tt.n {
			t.Errorf("%d of %s, want %d", got, tt.what, tt.n)
		}
	}
	for _, want := range []string{`role="img"`, `<title id="chart-title">`, `<desc id="chart-desc">5 minutes recorded from 08:00 to 09:00 UTC: at most 25 waiting, at 08:59`,
		`<title>08:10 UTC: 5 waiting</title>`, `<title>08:59 UTC: 6 admitted</title>`, `<th scope="row">08:30</th>`, "08:00</text>", "09:00</text>"} {
		if !strings.Contains(chart, want) {
			t.Errorf("the chart has no %s:\n%s", want, chart)
		}
	}
	if strings.Contains(chart, "07:30") {
		t.Error("a minute before the hour is drawn")
	}
	if page := e.send("GET", "/dashboard/rooms/a", c, nil).Body.String(); !strings.Contains(page, `<circle class="point"`) {
		t.Error("the room page has no chart")
	}
}

// What a token's name or a trail carries is escaped; pages load no inline code, which the
// Content-Security-Policy would refuse.
func TestDashboardEscaping(t *testing.T) {
	hostile := admin.Token{Name: `<img src=x onerror=alert(1)>`, Secret: "hostile-secret-0123456789", Scope: admin.ReadWrite}
	e := newEnv(t, admin.WithTokens(hostile))
	e.create("a", validDoc)
	c := e.login(hostile.Secret)
	if rec := e.send("POST", "/dashboard/rooms/a/suspend", c, url.Values{"version": {"1"}}); rec.Code != http.StatusSeeOther {
		t.Fatalf("suspend: %d", rec.Code)
	}
	scripts := regexp.MustCompile(`<script[^>]*>`)
	attrs := regexp.MustCompile(`<[^>]*\s(on[a-z]+|style)=`)
	for _, p := range []struct {
		target string
		c      *http.Cookie
	}{{"/dashboard/", c}, {"/dashboard/rooms/a", c}, {"/dashboard/rooms/a/resume", c}, {"/dashboard/login", nil}} {
		rec := e.send("GET", p.target, p.c, nil)
		body := rec.Body.String()
		if rec.Code != 200 || strings.Contains(body, "<img") {
			t.Errorf("%s: %d, or the name is not escaped", p.target, rec.Code)
		}
		if p.c != nil && !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;") {
			t.Errorf("%s: the name is not shown escaped:\n%s", p.target, body)
		}
		for _, tag := range scripts.FindAllString(body, -1) {
			if !strings.Contains(tag, " src=") || !strings.Contains(body, tag+"</script>") {
				t.Errorf("%s: inline script %s", p.target, tag)
			}
		}
		if m := attrs.FindString(body); m != "" || strings.Contains(body, "<style") {
			t.Errorf("%s: an inline handler or style %q", p.target, m)
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: Content-Security-Policy %q", p.target, csp)
		}
	}
	if page := e.send("GET", "/dashboard/rooms/a", c, nil).Body.String(); !strings.Contains(page, "<td>&lt;img src=x onerror=alert(1)&gt;</td><td>suspend</td>") {
		t.Errorf("the trail does not name the token, escaped:\n%s", page)
	}
	for file, ctype := range map[string]string{"dashboard.css": "text/css; charset=utf-8", "dashboard.js": "text/javascript; charset=utf-8"} {
		rec := e.send("GET", "/dashboard/static/"+file, nil, nil)
		if rec.Code != 200 || rec.Header().Get("Content-Type") != ctype || rec.Body.Len() < 1000 {
			t.Errorf("%s: %d %v", file, rec.Code, rec.Header())
		}
	}
}

// The room's live figures, as the page's script reads them.
func TestDashboardLive(t *testing.T) {
	e := newEnv(t, admin.WithStatsMaxAge(0))
	e.create("a", `{"total_active_users":1,"new_users_per_minute":1}`)
	c := e.login(roSecret)
	var live struct {
		ID, State string
		Version   int64
		Cells     map[string]string
	}
	read := func() {
		rec := e.send("GET", "/dashboard/rooms/a/live", c, nil)
		if err := json.Unmarshal(rec.Body.Bytes(), &live); err != nil || rec.Code != 200 {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
	read()
	if live.ID != "a" || live.State != "open" || live.Version != 1 || live.Cells["waiting"] != "0" || live.Cells["estimate"] != "none" {
		t.Errorf("an empty room: %+v", live)
	}
	for range 3 {
		if _, err := e.room("a").Enter(context.Background(), ""); err != nil {
			t.Fatal(err)
		}
	}
	read()
	if live.Cells["active"] != "1" || live.Cells["waiting"] != "2" || live.Cells["admitted"] != "1" || live.Cells["rate"] != "1" {
		t.Errorf("after three visitors: %+v", live)
	}
	if rec := e.send("GET", "/dashboard/rooms/nowhere/live", c, nil); rec.Code != http.StatusNotFound {
		t.Errorf("an unknown room: %d", rec.Code)
	}
	if rec := e.send("GET", "/dashboard/rooms/nowhere", c, nil); rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "There is no room") {
		t.Errorf("an unknown room's page: %d", rec.Code)
	}
}

// The message form: a text per language saved against the form's version, in the trail
// as the token; an empty field removes its language, another is added by its tag.
func TestDashboardMessage(t *testing.T) {
	e := newEnv(t)
	e.create("a", validDoc)
	c := e.login(rwSecret)
	page := e.send("GET", "/dashboard/rooms/a", c, nil).Body.String()
	for _, want := range []string{`<input id="m-en" name="message-en" type="text" lang="en" dir="auto" value=""`,
		`<input id="m-ja" name="message-ja" type="text" lang="ja" dir="auto" value=""`, `name="new_lang"`,
		`<input id="f-close_when_sold_out" name="close_when_sold_out" type="checkbox" value="on" aria-describedby`, "No message"} {
		if !strings.Contains(page, want) {
			t.Errorf("the room page has no %s", want)
		}
	}
	save := func(form url.Values, want string) {
		t.Helper()
		page := e.send("GET", "/dashboard/rooms/a", c, nil).Body.String()
		form.Set("version", regexp.MustCompile(`id="message-form" data-version="(\d+)"`).FindStringSubmatch(page)[1])
		rec := e.send("POST", "/dashboard/rooms/a/message", c, form)
		if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != want {
			t.Fatalf("saving %v: %d %v %s", form, rec.Code, rec.Header(), rec.Body)
		}
	}
	const ja = "本日の予約枠は残りわずかです。"
	save(url.Values{"message-en": {" Few slots left today. "}, "message-ja": {ja}, "close_when_sold_out": {"on"}}, "/dashboard/rooms/a?done=message&v=2#speak")
	cfg := e.room("a").Config()
	if !maps.Equal(cfg.Messages, map[string]string{"en": "Few slots left today.", "ja": ja}) || !cfg.CloseWhenSoldOut {
		t.Errorf("after saving: %q, close when sold out %t", cfg.Messages, cfg.CloseWhenSoldOut)
	}
	ch, _ := e.st.Changes(context.Background(), "a")
	if ch[0].By != "ops" || ch[0].What != "message" || ch[0].Version != 2 {
		t.Errorf("the trail: %+v", ch[0])
	}
	page = e.send("GET", "/dashboard/rooms/a?done=message&v=2", c, nil).Body.String()
	for _, want := range []string{`<h2 id="speak-heading">Speak to the queue</h2>` + "\n" + `<p class="flash" role="status">Saved: waiters hear it with the next refresh (version 2`,
		`action="/dashboard/rooms/a/message#speak"`,
		`<dt>Japanese <span class="tag">ja</span></dt><dd lang="ja" dir="auto">` + ja + `</dd>`,
		`<input id="m-ja" name="message-ja" type="text" lang="ja" dir="auto" value="` + ja + `"`,
		"When no slot is left: <strong>the room closes to newcomers</strong>", `value="on" checked`} {
		if !strings.Contains(page, want) {
			t.Errorf("the page after saving has no %s", want)
		}
	}

	// Another language, by its tag in any case: kept as the room writes it.
	save(url.Values{"message-en": {"Few slots left today."}, "message-ja": {ja}, "new_lang": {"zh-hans"}, "new_text": {"今日名额不多。"},
		"close_when_sold_out": {"on"}}, "/dashboard/rooms/a?done=message&v=3#speak")
	if got := e.room("a").Config().Messages["zh-Hans"]; got != "今日名额不多。" {
		t.Errorf("the language added: %q", e.room("a").Config().Messages)
	}
	page = e.send("GET", "/dashboard/rooms/a", c, nil).Body.String()
	if !strings.Contains(page, `<label for="m-zh-Hans">Chinese <span class="tag">zh-Hans</span></label>`) {
		t.Error("the form has no field of the language added")
	}
	// Emptied, English goes; closing when sold out is turned off with its box.
	save(url.Values{"message-en": {""}, "message-ja": {ja}, "message-zh-Hans": {"今日名额不多。"}}, "/dashboard/rooms/a?done=message&v=4#speak")
	cfg = e.room("a").Config()
	if !maps.Equal(cfg.Messages, map[string]string{"ja": ja, "zh-Hans": "今日名额不多。"}) || cfg.CloseWhenSoldOut {
		t.Errorf("after removing English: %q, close when sold out %t", cfg.Messages, cfg.CloseWhenSoldOut)
	}
	// All of them: no message at all.
	save(url.Values{"message-en": {""}, "message-ja": {""}, "message-zh-Hans": {""}}, "/dashboard/rooms/a?done=message&v=5#speak")
	if cfg := e.room("a").Config(); cfg.Messages != nil {
		t.Errorf("after removing every language: %q", cfg.Messages)
	}
	// The same again: nothing is written.
	save(url.Values{"message-en": {""}, "message-ja": {""}}, "/dashboard/rooms/a?done=message-unchanged&v=5#speak")
	if v := e.state("a").version; v != 5 {
		t.Errorf("saving the same message wrote version %d", v)
	}
}

// Invalid input is marked next to its field, 422, nothing saved.
func TestDashboardInvalidMessage(t *testing.T) {
	many := map[string]string{}
	for _, tag := range []string{"en", "ja", "de", "fr", "es", "it", "ko", "pt", "ru", "nl"} {
		many[tag] = "Closed on Sunday."
	}
	tests := []struct {
		name     string
		messages map[string]string // the room's before
		form     url.Values
		field    string // its id
		value    string
		problem  string
	}{
		{"not a tag", nil, url.Values{"new_lang": {"klingon!"}, "new_text": {"x"}}, "f-new_lang", "klingon!", `is not a language tag`},
		{"undetermined", nil, url.Values{"new_lang": {"und"}, "new_text": {"x"}}, "f-new_lang", "und", `is not a language tag`},
		{"a tag without text", nil, url.Values{"new_lang": {"ko"}}, "f-new_text", "", "Write the message in this language"},
		{"a text without tag", nil, url.Values{"new_text": {"안녕하세요"}}, "f-new_lang", "", "Enter the language's tag"},
		{"a tag in the form", nil, url.Values{"new_lang": {"JA"}, "new_text": {"x"}}, "f-new_lang", "JA", "ja has its field above"},
		{"too long", nil, url.Values{"message-ja": {strings.Repeat("あ", 167)}}, "m-ja", strings.Repeat("あ", 167), `messages["ja"] is 501 bytes; at most 500`},
		{"too long, added", nil, url.Values{"new_lang": {"ko"}, "new_text": {strings.Repeat("x", 501)}}, "f-new_text", strings.Repeat("x", 501), `messages["ko"] is 501 bytes`},
		{"a control character", nil, url.Values{"message-en": {"two\tcolumns"}}, "m-en", "two\tcolumns", "control character"},
		{"an eleventh language", many, url.Values{"new_lang": {"sv"}, "new_text": {"Stängt på söndag."}}, "f-new_lang", "sv", "messages has 11 languages; at most 10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.create("a", validDoc)
			if tt.messages != nil {
				cfg := e.room("a").Config()
				cfg.Messages = tt.messages
				if _, _, err := e.reg.Put(context.Background(), "a", cfg, store.AnyVersion, store.Change{By: "setup"}); err != nil {
					t.Fatal(err)
				}
			}
			c := e.login(rwSecret)
			before := e.state("a")
			tt.form.Set("version", strconv.FormatInt(before.version, 10))
			rec := e.send("POST", "/dashboard/rooms/a/message", c, tt.form)
			body := rec.Body.String()
			if rec.Code != http.StatusUnprocessableEntity {
				t.Fatalf("%d %s", rec.Code, body)
			}
			problemID := "e-" + strings.TrimPrefix(tt.field, "f-")
			marked := regexp.MustCompile(`id="` + tt.field + `"[^>]*value="` + regexp.QuoteMeta(template.HTMLEscapeString(tt.value)) +
				`" aria-describedby="` + problemID + ` [^"]+" aria-invalid="true">\s*<p class="problem" id="` + problemID + `">([^<]*)</p>`)
			m := marked.FindStringSubmatch(body)
			if m == nil || !strings.Contains(html.UnescapeString(m[1]), tt.problem) {
				t.Errorf("%s is not marked with %q:\n%s", tt.field, tt.problem, body)
			}
			if n := strings.Count(body, `aria-invalid="true"`); n != 1 {
				t.Errorf("%d fields marked", n)
			}
			if after := e.state("a"); after != before {
				t.Errorf("the room changed:\n%+v\n%+v", before, after)
			}
		})
	}
}

// A message form loaded before another change shows it and saves nothing.
func TestDashboardMessageConflict(t *testing.T) {
	e := newEnv(t)
	e.create("a", validDoc)
	c := e.login(rwSecret)
	v := regexp.MustCompile(`id="message-form" data-version="(\d+)"`).FindStringSubmatch(e.send("GET", "/dashboard/rooms/a", c, nil).Body.String())[1]
	cfg := e.room("a").Config()
	cfg.Messages, cfg.CloseWhenSoldOut = map[string]string{"ja": "本日は満席です。"}, true
	if _, _, err := e.reg.Put(context.Background(), "a", cfg, 1, store.Change{By: "alice", What: "patch"}); err != nil {
		t.Fatal(err)
	}
	before := e.state("a")
	form := url.Values{"version": {v}, "message-en": {"Open until noon."}, "message-ja": {"正午まで受付中です。"}}
	rec := e.send("POST", "/dashboard/rooms/a/message", c, form)
	body := rec.Body.String()
	if rec.Code != http.StatusConflict {
		t.Fatalf("a stale save: %d %s", rec.Code, body)
	}
	for _, want := range []string{"The settings changed since you opened this form", "version 2", "by alice", "Nothing was saved",
		`name="message-ja" type="text" lang="ja" dir="auto" value="正午まで受付中です。"`, `Stored now: <strong lang="ja" dir="auto">本日は満席です。</strong>`,
		`name="message-en" type="text" lang="en" dir="auto" value="Open until noon."`, "Stored now: <strong>none</strong>",
		"Stored now: <strong>on</strong>", `id="message-form" data-version="2"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the conflict page has no %q", want)
		}
	}
	if after := e.state("a"); after != before || e.room("a").Config().Messages["ja"] != "本日は満席です。" {
		t.Errorf("a stale save changed the room:\n%+v\n%+v", before, after)
	}
	// Having seen it, the operator saves again: now it stands.
	form.Set("version", formVersion(t, body))
	if rec := e.send("POST", "/dashboard/rooms/a/message", c, form); rec.Code != http.StatusSeeOther {
		t.Fatalf("saving after the conflict: %d %s", rec.Code, rec.Body)
	}
	if cfg := e.room("a").Config(); cfg.Messages["ja"] != "正午まで受付中です。" || cfg.CloseWhenSoldOut {
		t.Errorf("after saving again: %q, close when sold out %t", cfg.Messages, cfg.CloseWhenSoldOut)
	}
}

// The slots form sets the store's count at once, or stops counting, with no version;
// who did it is logged; a count that is not one is marked, 422, and changes nothing.
func TestDashboardSlots(t *testing.T) {
	e := newEnv(t)
	e.create("a", validDoc)
	c := e.login(rwSecret)
	rec := e.send("POST", "/dashboard/rooms/a/slots", c, url.Values{"do": {"set"}, "remaining": {" 1200 "}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/dashboard/rooms/a?done=slots&n=1200#speak" {
		t.Fatalf("setting the slots: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	if n := slotsOf(t, e.room("a")); n != 1200 {
		t.Errorf("slots %d, want 1200", n)
	}
	if !strings.Contains(e.logs.String(), `"msg":"admin: slots set","by":"ops","room":"a","remaining":1200`) {
		t.Errorf("not logged with who set it:\n%s", e.logs)
	}
	if s := e.state("a"); s.version != 1 || s.changes != 1 {
		t.Errorf("the count is a setting now: %+v", s)
	}
	page := e.send("GET", "/dashboard/rooms/a?done=slots&n=1200", c, nil).Body.String()
	for _, want := range []string{`<p class="flash" role="status">Slots left set to 1,200`, `action="/dashboard/rooms/a/slots#speak"`, `<dt>Slots left</dt><dd><span data-k="slots">1,200</span><span class="reason" data-k="slots_note"></span>`} {
		if !strings.Contains(page, want) {
			t.Errorf("the page after setting has no %s", want)
		}
	}

	rec = e.send("POST", "/dashboard/rooms/a/slots", c, url.Values{"do": {"stop"}, "remaining": {"5"}})
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/dashboard/rooms/a?done=slots-off#speak" {
		t.Fatalf("stopping: %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	if n := slotsOf(t, e.room("a")); n != -1 {
		t.Errorf("slots %d after stopping, want -1", n)
	}
	if !strings.Contains(e.logs.String(), `"msg":"admin: slots set","by":"ops","room":"a","remaining":"not counted"`) {
		t.Errorf("stopping is not logged:\n%s", e.logs)
	}
	if page := e.send("GET", "/dashboard/rooms/a", c, nil).Body.String(); !strings.Contains(page, `<span data-k="slots">–</span><span class="reason" data-k="slots_note">not counted</span>`) {
		t.Error("the page does not say the slots are not counted")
	}

	if err := e.room("a").SetSlots(context.Background(), 7); err != nil {
		t.Fatal(err)
	}
	for _, value := range []string{"", "-1", "1.5", "lots", "1e3", "1000000000000000001", "99999999999999999999"} {
		rec := e.send("POST", "/dashboard/rooms/a/slots", c, url.Values{"do": {"set"}, "remaining": {value}})
		body := rec.Body.String()
		marked := regexp.MustCompile(`id="f-remaining"[^>]*value="` + regexp.QuoteMeta(value) + `" aria-describedby="e-remaining h-remaining" aria-invalid="true">\s*<p class="problem" id="e-remaining">[^<]+</p>`)
		if rec.Code != http.StatusUnprocessableEntity || !marked.MatchString(body) {
			t.Errorf("%q: %d, or the field is not marked:\n%s", value, rec.Code, body)
		}
		if n := slotsOf(t, e.room("a")); n != 7 {
			t.Errorf("%q set the slots to %d", value, n)
		}
	}
}

// The room page, its live JSON and the overview say what the queue is told, and mark a
// room sold out when it closes so and has no slot left.
func TestDashboardSoldOut(t *testing.T) {
	e := newEnv(t, admin.WithStatsMaxAge(0))
	e.create("a", `{"total_active_users":1,"new_users_per_minute":1,"close_when_sold_out":true,"messages":{"en":"Fully booked <today>.","ja":"本日は満席です。"}}`)
	e.create("b", `{"total_active_users":1,"new_users_per_minute":1,"queue_all":true}`)
	e.create("c", `{"total_active_users":1,"new_users_per_minute":1,"close_when_sold_out":true,"suspended":true}`)
	ctx := context.Background()
	for id, n := range map[string]int64{"a": 0, "b": 0, "c": 0} {
		if err := e.room(id).SetSlots(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	c := e.login(roSecret)
	type live struct {
		State            string
		Cells            map[string]string
		Messages         map[string]string
		CloseWhenSoldOut bool   `json:"close_when_sold_out"`
		SaidHTML         string `json:"said_html"`
	}
	read := func(id string) live {
		t.Helper()
		rec := e.send("GET", "/dashboard/rooms/"+id+"/live", c, nil)
		var l live
		if err := json.Unmarshal(rec.Body.Bytes(), &l); err != nil || rec.Code != 200 {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
		return l
	}
	const enSaid = `<dt>English <span class="tag">en</span></dt><dd lang="en" dir="auto">Fully booked &lt;today&gt;.</dd>`
	l := read("a")
	if l.State != "sold-out" || l.Cells["state"] != "Sold out" || l.Cells["slots"] != "0" || l.Cells["slots_note"] != "closed to newcomers" ||
		!l.CloseWhenSoldOut || l.Messages["ja"] != "本日は満席です。" || !strings.Contains(l.SaidHTML, enSaid) ||
		!strings.Contains(l.SaidHTML, "the room closes to newcomers") {
		t.Errorf("a sold-out room, live: %+v", l)
	}
	page := e.send("GET", "/dashboard/rooms/a", c, nil).Body.String()
	for _, want := range []string{`data-state="sold-out"`, `<span class="badge" data-k="state">Sold out</span>`, `<div id="said">` + "\n" + `<dl class="said">`,
		enSaid, `<dd lang="ja" dir="auto">本日は満席です。</dd>`, `<span data-k="slots">0</span><span class="reason" data-k="slots_note">closed to newcomers</span>`} {
		if !strings.Contains(page, want) {
			t.Errorf("the sold-out room's page has no %s", want)
		}
	}
	// Counted, none left, but not closing: the queue-all room says so; the suspended one
	// steps aside, sold out or not.
	if l := read("b"); l.State != "queue-all" || l.Cells["slots"] != "0" || !strings.Contains(l.Cells["slots_note"], "newcomers still queue") ||
		l.Messages != nil || !strings.Contains(l.SaidHTML, "No message") || !strings.Contains(l.SaidHTML, "newcomers still queue") {
		t.Errorf("a room that does not close: %+v", l)
	}
	if l := read("c"); l.State != "suspended" {
		t.Errorf("a suspended room sold out: %+v", l)
	}
	// A slot comes back: open again.
	if _, err := e.room("a").TakeSlots(ctx, -1); err != nil {
		t.Fatal(err)
	}
	if l := read("a"); l.State != "open" || l.Cells["slots"] != "1" || l.Cells["slots_note"] != "" {
		t.Errorf("a room with a slot back: %+v", l)
	}
	if err := e.room("a").SetSlots(ctx, 0); err != nil {
		t.Fatal(err)
	}

	// The overview: the badge, the column, sorted by it with rooms not counted last.
	e.create("d", validDoc)
	e.create("e", validDoc)
	if err := e.room("e").SetSlots(ctx, 1500); err != nil {
		t.Fatal(err)
	}
	page = e.send("GET", "/dashboard/?sort=slots", c, nil).Body.String()
	row := regexp.MustCompile(`(?s)<tr data-id="a" data-state="sold-out">.*?</tr>`).FindString(page)
	if !strings.Contains(row, `<span class="badge" data-k="state">Sold out</span>`) || !strings.Contains(row, `<td class="num" data-label="Slots left" data-k="slots">0</td>`) {
		t.Errorf("the sold-out room's row:\n%s", row)
	}
	if !strings.Contains(page, `<td class="num" data-label="Slots left" data-k="slots">1,500</td>`) || !strings.Contains(page, `<a href="/dashboard/?sort=slots&amp;order=desc">Slots left</a>`) {
		t.Errorf("the overview's slots column:\n%s", page)
	}
	var got []string
	for _, m := range regexp.MustCompile(`<tr data-id="([^"]+)"`).FindAllStringSubmatch(page, -1) {
		got = append(got, m[1])
	}
	if want := []string{"a", "b", "c", "e", "d"}; !slices.Equal(got, want) {
		t.Errorf("by slots left: %v, want %v", got, want)
	}
	page = e.send("GET", "/dashboard/?sort=slots&order=desc", c, nil).Body.String()
	got = got[:0]
	for _, m := range regexp.MustCompile(`<tr data-id="([^"]+)"`).FindAllStringSubmatch(page, -1) {
		got = append(got, m[1])
	}
	if want := []string{"e", "a", "b", "c", "d"}; !slices.Equal(got, want) {
		t.Errorf("by slots left, most first: %v, want %v", got, want)
	}
	// The confirmation pages say it too.
	if rw := e.login(rwSecret); !strings.Contains(e.send("GET", "/dashboard/rooms/a/queue-all", rw, nil).Body.String(), "Now: <strong>Sold out</strong>") {
		t.Error("the confirmation does not say the room is sold out")
	}
}

// Failed logins are counted per IPv6 /64 (one host's addresses), and past the clients the
// limiter keeps, a new one is not limited rather than sharing one limiter with a guesser's
// many addresses.
func TestDashboardLoginLimitByClient(t *testing.T) {
	e := newEnv(t)
	now := t0
	admin.SetDashboardClock(e.h, func() time.Time { return now })
	try := func(addr, secret string) int {
		req := httptest.NewRequest("POST", "/dashboard/login", strings.NewReader("secret="+secret))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = addr
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		return rec.Code
	}
	for i := range admin.LoginBurst {
		if code := try(fmt.Sprintf("[2001:db8:1:2::%x]:443", i+1), "guess-0123456789"); code != http.StatusUnauthorized {
			t.Fatalf("failed login %d: %d", i, code)
		}
	}
	if code := try("[2001:db8:1:2::ffff]:443", rwSecret); code != http.StatusTooManyRequests {
		t.Fatalf("another address of the same /64: %d, want 429", code)
	}
	if code := try("[2001:db8:1:3::1]:443", rwSecret); code != http.StatusSeeOther {
		t.Fatalf("the next /64: %d, want a login", code)
	}
	for i := range admin.MaxLimiters {
		try(fmt.Sprintf("10.%d.%d.%d:1", i>>16&255, i>>8&255, i&255), "guess-0123456789")
	}
	for i := range admin.LoginBurst + 2 {
		if code := try("192.0.2.1:1", "guess-0123456789"); code != http.StatusUnauthorized {
			t.Fatalf("a new client past the kept ones, failure %d: %d, want 401 (not limited)", i, code)
		}
	}
	if code := try("[2001:db8:1:2::1]:443", rwSecret); code != http.StatusTooManyRequests {
		t.Fatalf("a limited client after the table filled: %d, want 429 still", code)
	}
}
