package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/storetest"
	"github.com/waitingroom-go/waitingroom/token"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

// serve starts the example with o on a test clock at 9:00.
func serve(t *testing.T, o options) (*clock, *httptest.Server) {
	t.Helper()
	if o.appointments == 0 { // options written out take the flags' defaults for these
		o.appointments, o.postGrace = 500, 2*time.Minute
	}
	clk := &clock{now: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)}
	h, err := build(o, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return clk, srv
}

// flagOptions is the example's options from command-line args.
func flagOptions(t *testing.T, args []string) options {
	t.Helper()
	o, _, err := parseFlags(args)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestBookingWalkthrough walks two visitors through the example with one slot: the first
// books, which releases the slot; the second waits, then gets the form.
func TestBookingWalkthrough(t *testing.T) {
	t.Setenv("WAITINGROOM_KEY", "")
	clk, srv := serve(t, options{total: 1, perMinute: 1, session: 2 * time.Minute, refresh: 5 * time.Second, store: "memory"})
	alice, bob := client(t), client(t)

	code, body := get(t, alice, srv.URL+"/")
	if code != 200 || !strings.Contains(body, "Book your vaccination") {
		t.Fatalf("alice: %d %q", code, body)
	}
	code, body = get(t, bob, srv.URL+"/")
	if code != 200 || !strings.Contains(body, "You are in the queue") || !strings.Contains(body, `id="wr-ahead">You are next<`) ||
		!strings.Contains(body, `<noscript><meta http-equiv="refresh" content="5"></noscript>`) || !strings.Contains(body, "500 places left") {
		t.Fatalf("bob should wait with nobody ahead, 500 appointments left and a 5 s refresh without JavaScript: %d %q", code, body)
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
	if resp.StatusCode != 200 || !strings.Contains(string(b), "your vaccination is booked for 09:15") {
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
	for _, args := range [][]string{
		{"-store", "mongodb://x"}, {"-total-active", "0"}, {"-nope"}, {"-method", "lifo"},
		{"-event-start", "tomorrow"}, {"-event-start", "2m", "-event-end", "2026-11-26 10:00"},
		{"-prequeue-start", "0s"}, {"-shuffle"},
		{"-event-start", "2m", "-event-total-active", "5"},
		{"-event-start", "2m", "-prequeue-start", "3m"},
		{"-max-session", "1m"}, // shorter than the session
	} {
		if err := run(args, io.Discard); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}

// -h prints the usage, naming -addr, to stdout and is no error (exit status 0); a bad flag
// is one error naming it, with no usage dumped.
func TestHelp(t *testing.T) {
	for _, h := range []string{"-h", "-help", "--help"} {
		var out strings.Builder
		if err := run([]string{h}, &out); err != nil {
			t.Errorf("%s: %v", h, err)
		}
		for _, want := range []string{"usage: booking", "-addr string", "-store string"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: usage lacks %q:\n%s", h, want, out.String())
			}
		}
	}
	var out strings.Builder
	err := run([]string{"-total-active", "x"}, &out)
	if err == nil || !strings.Contains(err.Error(), "-total-active") || strings.Contains(err.Error(), "\n") || out.Len() != 0 {
		t.Errorf("bad flag: error %v, stdout %q; want one line naming the flag, nothing on stdout", err, out.String())
	}
}

// TestEventFlags checks that the event's times are read as RFC 3339 times or as durations
// from build's clock, and that the event reaches the room.
func TestEventFlags(t *testing.T) {
	t.Setenv("WAITINGROOM_KEY", "")
	now := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		args          []string
		pre, start    time.Time // pre zero: no pre-queue
		end           time.Time
		shuffle       bool
		total, perMin int
	}{
		{
			args:  []string{"-event-start", "2m"},
			start: now.Add(2 * time.Minute), end: now.Add(2*time.Minute + time.Hour),
		},
		{
			args: []string{"-prequeue-start", "0s", "-event-start", "2m", "-shuffle", "-event-total-active", "5", "-event-new-per-minute", "5"},
			pre:  now, start: now.Add(2 * time.Minute), end: now.Add(2*time.Minute + time.Hour),
			shuffle: true, total: 5, perMin: 5,
		},
		{
			args: []string{"-prequeue-start", "2026-11-26T08:30:00Z", "-event-start", "2026-11-26T10:00:00+01:00", "-event-end", "90m"},
			pre:  now.Add(-30 * time.Minute), start: now, end: now.Add(90 * time.Minute),
		},
		{
			args:  []string{"-event-start", "-1m30s", "-event-end=2026-11-26T11:00:00.5Z"},
			start: now.Add(-90 * time.Second), end: now.Add(2*time.Hour + 500*time.Millisecond),
		},
	} {
		o, _, err := parseFlags(tt.args)
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		e := o.event(now)
		if e == nil {
			t.Errorf("%q: no event", tt.args)
			continue
		}
		if e.Name != eventName || !e.PrequeueStart.Equal(tt.pre) || !e.Start.Equal(tt.start) || !e.End.Equal(tt.end) ||
			e.ShuffleAtEventStart != tt.shuffle || e.TotalActiveUsers != tt.total || e.NewUsersPerMinute != tt.perMin {
			t.Errorf("%q: got %+v", tt.args, *e)
		}
		if _, err := build(o, func() time.Time { return now }); err != nil {
			t.Errorf("%q: build: %v", tt.args, err)
		}
	}

	// No event flags: no event, as before.
	o, _, err := parseFlags(nil)
	if err != nil || o.event(now) != nil || o.store != "memory" || o.method != waitingroom.FIFO {
		t.Errorf("defaults: %+v, %v", o, err)
	}
}

func TestBadEventFlags(t *testing.T) {
	t.Setenv("WAITINGROOM_KEY", "")
	now := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-event-start", "tomorrow"}, `invalid value "tomorrow" for flag -event-start: want an RFC 3339 time`},
		{[]string{"-event-start", "5"}, "or a duration from now such as 30s"},
		{[]string{"-event-start", "2m", "-prequeue-start", "2026-11-26"}, "flag -prequeue-start"},
		{[]string{"-event-start", "2m", "-event-end", ""}, "flag -event-end"},
		{[]string{"-prequeue-start", "0s"}, "-prequeue-start needs -event-start"},
		{[]string{"-event-end", "1h"}, "-event-end needs -event-start"},
		{[]string{"-shuffle"}, "-shuffle needs -event-start"},
		{[]string{"-event-total-active", "5", "-event-new-per-minute", "5"}, "-event-total-active needs -event-start"},
		{[]string{"-event-start", "2m", "-event-total-active", "5"}, "set -event-total-active and -event-new-per-minute together"},
		{[]string{"-event-start", "2m", "-event-new-per-minute", "5"}, "set -event-total-active and -event-new-per-minute together"},
		// The room's validation.
		{[]string{"-event-start", "2m", "-prequeue-start", "3m"}, "PrequeueStart (2026-11-26T09:03:00Z) is after Start (2026-11-26T09:02:00Z)"},
		{[]string{"-event-start", "2m", "-event-end", "2m30s"}, "must be at least a minute after Start"},
		{[]string{"-event-start", "2m", "-event-end", "1m"}, "must be at least a minute after Start"},
		{[]string{"-event-start", "2m", "-event-total-active", "-1", "-event-new-per-minute", "-1"}, "must be at least 1"},
		{[]string{"-event-start", "2m", "-event-total-active", "2", "-event-new-per-minute", "5"}, "NewUsersPerMinute (5) exceeds TotalActiveUsers (2)"},
	} {
		o, _, err := parseFlags(tt.args)
		if err == nil {
			_, err = build(o, func() time.Time { return now })
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got error %v, want one with %q", tt.args, err, tt.want)
		}
	}
}

// TestEventWalkthrough pre-queues two visitors for a booking that opens in two minutes with
// a shuffle: both get the "not open yet" page, then at the start one of them (at random)
// gets the form and the other waits for the next admission.
func TestEventWalkthrough(t *testing.T) {
	t.Setenv("WAITINGROOM_KEY", "")
	clk, srv := serve(t, flagOptions(t, []string{"-total-active", "1", "-new-per-minute", "1",
		"-prequeue-start", "0s", "-event-start", "2m", "-shuffle"}))
	alice, bob := client(t), client(t)

	code, body := get(t, alice, srv.URL+"/")
	if code != 200 || !strings.Contains(body, "Not open yet") || !strings.Contains(body, "in 2 minutes.") ||
		!strings.Contains(body, "random order") || strings.Contains(body, "Book your vaccination") {
		t.Fatalf("alice in the pre-queue: %d %q", code, body)
	}
	clk.Advance(75 * time.Second)
	code, body = get(t, bob, srv.URL+"/")
	if code != 200 || !strings.Contains(body, "Not open yet") || !strings.Contains(body, "in 45 seconds.") {
		t.Fatalf("bob in the pre-queue: %d %q", code, body)
	}
	// Nobody is let in before the start, whatever the room's limits.
	if _, body := get(t, alice, srv.URL+"/"); !strings.Contains(body, "Not open yet") {
		t.Fatalf("alice before the start: %q", body)
	}
	st := getJSON(t, alice, srv.URL+"/")
	if st["isEventPrequeueing"] != true || st["shuffleAtEventStart"] != true || !(st["timeUntilEventStart"].(float64) > 0) {
		t.Fatalf("alice's JSON status in the pre-queue: %v", st)
	}

	clk.Advance(46 * time.Second) // past the start
	_, a := get(t, alice, srv.URL+"/")
	_, b := get(t, bob, srv.URL+"/")
	aIn, bIn := strings.Contains(a, "Book your vaccination"), strings.Contains(b, "Book your vaccination")
	if aIn == bIn {
		t.Fatalf("one of the two should be let in at the start, alice: %q, bob: %q", a, b)
	}
	waiting, waiter, booker := b, bob, alice
	if bIn {
		waiting, waiter, booker = a, alice, bob
	}
	if !strings.Contains(waiting, "You are in the queue") || !strings.Contains(waiting, `id="wr-ahead">You are next<`) ||
		!strings.Contains(waiting, "drawn at random") || strings.Contains(waiting, "Not open yet") {
		t.Fatalf("the other pre-queued visitor should be next: %q", waiting)
	}
	if st := getJSON(t, waiter, srv.URL+"/"); st["isEventActive"] != true || st["isEventPrequeueing"] != false {
		t.Fatalf("JSON status in the event: %v", st)
	}
	// The one let in books, which frees the slot; the room admits one a minute, so the other
	// gets in a minute after the first.
	resp, err := booker.PostForm(srv.URL+"/reserve", url.Values{"name": {"First"}, "slot": {"09:00"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("booking in the event: %d", resp.StatusCode)
	}
	clk.Advance(61 * time.Second)
	if _, body := get(t, waiter, srv.URL+"/"); !strings.Contains(body, "Book your vaccination") {
		t.Fatalf("the second pre-queued visitor a minute after the start: %q", body)
	}
}

// TestEventPrequeueFIFO pre-queues a visitor without a shuffle: the page shows the place in
// line and no random order, and at the start the visitor gets the form.
func TestEventPrequeueFIFO(t *testing.T) {
	t.Setenv("WAITINGROOM_KEY", "")
	clk, srv := serve(t, flagOptions(t, []string{"-prequeue-start", "0s", "-event-start", "2026-11-26T09:30:00Z",
		"-event-total-active", "5", "-event-new-per-minute", "5"}))
	alice := client(t)
	code, body := get(t, alice, srv.URL+"/")
	if code != 200 || !strings.Contains(body, "Not open yet") || !strings.Contains(body, "in 30 minutes.") ||
		!strings.Contains(body, `id="wr-ahead">You are next<`) || strings.Contains(body, "random") {
		t.Fatalf("alice in the pre-queue: %d %q", code, body)
	}
	st := getJSON(t, alice, srv.URL+"/")
	if st["isEventPrequeueing"] != true || st["timeUntilEventStart"] != 30.0 || st["shuffleAtEventStart"] != false {
		t.Fatalf("alice's JSON status in the pre-queue: %v", st)
	}
	clk.Advance(30 * time.Minute)
	if _, body := get(t, alice, srv.URL+"/"); !strings.Contains(body, "Book your vaccination") {
		t.Fatalf("alice at the start: %q", body)
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
	t.Setenv("WAITINGROOM_KEY", token.FormatKeys(key))
	m := miniredis.RunT(t)
	clk := &clock{now: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)}
	m.SetTime(clk.Now())
	o := options{total: 1, perMinute: 1, session: 2 * time.Minute, refresh: 5 * time.Second, store: "redis://" + m.Addr() + "/0",
		appointments: 500}
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

// getJSON asks for the room's status as JSON, as an app's script would.
func getJSON(t *testing.T, c *http.Client, u string) map[string]any {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Room map[string]any `json:"cfWaitingRoom"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || v.Room == nil {
		t.Fatalf("GET %s as JSON: %d, %v", u, resp.StatusCode, err)
	}
	return v.Room
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestGetReserve checks that GET /reserve, where a browser lands when it reloads the URL
// it was queued on, sends an admitted visitor to the form with a 303.
func TestGetReserve(t *testing.T) {
	t.Setenv("WAITINGROOM_KEY", "")
	_, srv := serve(t, options{total: 1, perMinute: 1, session: 2 * time.Minute, refresh: 5 * time.Second, store: "memory"})
	alice := client(t)
	alice.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := alice.Get(srv.URL + "/reserve")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("GET /reserve: %d, Location %q; want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
	}
	if code, body := get(t, alice, srv.URL+"/"); code != 200 || !strings.Contains(body, "Book your vaccination") {
		t.Fatalf("alice at /: %d %q", code, body)
	}
}

// TestWaitEstimate checks that -typical-session gives a queued visitor an estimated wait
// from the first visitor on, and that without it the wait is unavailable at first.
func TestWaitEstimate(t *testing.T) {
	t.Setenv("WAITINGROOM_KEY", "")
	minutes := regexp.MustCompile(`id="wr-wait">([1-9][0-9]* to )?[1-9][0-9]* minutes?<`)
	for _, tt := range []struct {
		name string
		args []string
		want *regexp.Regexp
	}{
		{"default", nil, minutes},
		{"typical 10m", []string{"-typical-session", "10m"}, minutes},
		{"unknown", []string{"-typical-session", "0"}, regexp.MustCompile(`id="wr-wait">not known yet<`)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, srv := serve(t, flagOptions(t, append([]string{"-total-active", "1", "-new-per-minute", "1"}, tt.args...)))
			for _, name := range []string{"alice", "bob"} {
				if _, body := get(t, client(t), srv.URL+"/"); name == "alice" && !strings.Contains(body, "Book your vaccination") {
					t.Fatalf("%s: %q", name, body)
				}
			}
			code, body := get(t, client(t), srv.URL+"/")
			if code != 200 || !strings.Contains(body, "You are in the queue") || !strings.Contains(body, `id="wr-ahead">1<`) ||
				!tt.want.MatchString(body) {
				t.Fatalf("carol should wait behind bob with a wait matching %s: %d %q", tt.want, code, body)
			}
		})
	}
}

// TestDefaults checks the flags' defaults without listening.
func TestDefaults(t *testing.T) {
	o, printKey, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.addr != "127.0.0.1:8080" || o.store != "memory" || o.typical != 2*time.Minute || printKey {
		t.Errorf("defaults: addr %q, store %q, typical session %v, print key %v", o.addr, o.store, o.typical, printKey)
	}
	if o, _, err := parseFlags([]string{"-addr", ":9090"}); err != nil || o.addr != ":9090" {
		t.Errorf("-addr :9090: %q, %v", o.addr, err)
	}
}

// TestKeys checks that a random signing key is not logged, and that -print-key prints a key
// WAITINGROOM_KEY takes and logs nothing.
func TestKeys(t *testing.T) {
	var logged strings.Builder
	log.SetOutput(&logged)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })

	t.Setenv("WAITINGROOM_KEY", "")
	keys, err := loadKeys()
	if err != nil || len(keys) != 1 {
		t.Fatalf("loadKeys: %v, %v", keys, err)
	}
	_, secret, _ := strings.Cut(token.FormatKeys(keys[0]), ":")
	if l := logged.String(); strings.Contains(l, secret) || !strings.Contains(l, "random signing key") || !strings.Contains(l, "-print-key") {
		t.Errorf("log of a random key should say it was made and how to share one, without the secret %q: %q", secret, l)
	}

	logged.Reset()
	var out strings.Builder
	if err := run([]string{"-print-key"}, &out); err != nil {
		t.Fatal(err)
	}
	printed, err := token.ParseKeys(out.String())
	if err != nil || len(printed) != 1 || len(printed[0].Secret) != 32 || out.String() != token.FormatKeys(printed[0])+"\n" {
		t.Fatalf("-print-key printed %q: %v, %v", out.String(), printed, err)
	}
	if logged.Len() != 0 {
		t.Errorf("-print-key logged %q", logged.String())
	}
	t.Setenv("WAITINGROOM_KEY", out.String())
	if keys, err := loadKeys(); err != nil || len(keys) != 1 || token.FormatKeys(keys[0]) != token.FormatKeys(printed[0]) {
		t.Errorf("WAITINGROOM_KEY from -print-key: %v, %v", keys, err)
	}
}

// -admin-addr refuses to start without a token; with one, the admin API lists the room and
// a change through it reaches the site at once.
func TestAdminAddr(t *testing.T) {
	t.Setenv("WAITINGROOM_KEY", "")
	t.Setenv("WAITINGROOM_ADMIN_TOKEN", "")
	if _, _, err := parseFlags([]string{"-admin-addr", "127.0.0.1:0"}); err == nil || !strings.Contains(err.Error(), "WAITINGROOM_ADMIN_TOKEN") {
		t.Fatalf("-admin-addr without a token: %v, want an error naming WAITINGROOM_ADMIN_TOKEN", err)
	}
	const secret = "0123456789abcdef0123"
	t.Setenv("WAITINGROOM_ADMIN_TOKEN", secret)
	o, _, err := parseFlags([]string{"-admin-addr", "127.0.0.1:0", "-total-active", "3", "-new-per-minute", "3"})
	if err != nil {
		t.Fatal(err)
	}
	clk := storetest.NewClock(time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC))
	svc, err := assemble(o, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path, body string) (int, string) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+secret)
		rec := httptest.NewRecorder()
		svc.admin.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	if code, body := call("GET", "/api/rooms/booking", ""); code != 200 || !strings.Contains(body, `"total_active_users":3`) {
		t.Fatalf("GET /api/rooms/booking: %d %s", code, body)
	}
	if code, body := call("PATCH", "/api/rooms/booking", `{"queue_all": true}`); code != 200 {
		t.Fatalf("PATCH: %d %s", code, body)
	}
	if !svc.room.Config().QueueAll {
		t.Errorf("the room does not run by the patched settings")
	}
}

// Across restarts on one Redis, the stored settings win over the flags unless -overwrite.
func TestStoredSettingsWinAcrossRestarts(t *testing.T) {
	t.Setenv("WAITINGROOM_KEY", token.FormatKeys(token.HMACKey{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")}))
	mr := miniredis.RunT(t)
	clk := storetest.NewClock(time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC))
	start := func(args ...string) *service {
		t.Helper()
		o, _, err := parseFlags(append([]string{"-store", "redis://" + mr.Addr() + "/0"}, args...))
		if err != nil {
			t.Fatal(err)
		}
		svc, err := assemble(o, clk.Now)
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	first := start("-total-active", "3", "-new-per-minute", "3")
	cfg := first.room.Config()
	cfg.TotalActiveUsers, cfg.NewUsersPerMinute = 5, 5
	if _, err := first.room.Update(t.Context(), cfg, first.room.Version(), store.Change{By: "ops", What: "patch"}); err != nil {
		t.Fatal(err)
	}
	if c := start("-total-active", "3", "-new-per-minute", "3").room.Config(); c.TotalActiveUsers != 5 {
		t.Errorf("a restart with the same flags: capacity %d, want the operator's 5", c.TotalActiveUsers)
	}
	if c := start("-total-active", "4", "-new-per-minute", "4", "-overwrite").room.Config(); c.TotalActiveUsers != 4 {
		t.Errorf("a restart with -overwrite: capacity %d, want the flags' 4", c.TotalActiveUsers)
	}
	// An instance started without the others' key refuses to start, saying why.
	t.Setenv("WAITINGROOM_KEY", "")
	o, _, err := parseFlags([]string{"-store", "redis://" + mr.Addr() + "/0"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := assemble(o, clk.Now); !errors.Is(err, waitingroom.ErrKeyMismatch) || !strings.Contains(err.Error(), "WAITINGROOM_KEY") {
		t.Errorf("a start with another key: %v, want ErrKeyMismatch naming WAITINGROOM_KEY", err)
	}
}

// -notify-url posts to the webhook, the operator's change naming who, through the admin API.
func TestNotifyURL(t *testing.T) {
	t.Setenv("WAITINGROOM_KEY", "")
	const secret = "0123456789abcdef0123"
	t.Setenv("WAITINGROOM_ADMIN_TOKEN", secret)
	got := make(chan string, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
	}))
	defer hook.Close()
	clk := storetest.NewClock(time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC))
	if bad, _, err := parseFlags([]string{"-notify-url", "not a url"}); err != nil {
		t.Fatal(err)
	} else if _, err := assemble(bad, clk.Now); err == nil || !strings.Contains(err.Error(), "-notify-url") {
		t.Fatalf("-notify-url with a bad URL: %v, want an error naming the flag", err)
	}
	o, _, err := parseFlags([]string{"-notify-url", hook.URL + "/hooks/x", "-admin-addr", "127.0.0.1:0", "-total-active", "1", "-new-per-minute", "1"})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := assemble(o, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	if svc.notifier == nil {
		t.Fatal("-notify-url made no notifier")
	}
	t.Setenv("WAITINGROOM_NOTIFY_URL", hook.URL+"/hooks/x") // instead of the flag
	if plain, _, err := parseFlags(nil); err != nil {
		t.Fatal(err)
	} else if viaEnv, err := assemble(plain, clk.Now); err != nil || viaEnv.notifier == nil {
		t.Fatalf("WAITINGROOM_NOTIFY_URL made no notifier: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.notifier.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	req := httptest.NewRequest("PATCH", "/api/rooms/booking", strings.NewReader(`{"suspended": true}`))
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/merge-patch+json")
	rec := httptest.NewRecorder()
	svc.admin.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("PATCH: %d %s", rec.Code, rec.Body)
	}
	select {
	case b := <-got:
		if !strings.Contains(b, `"event":"settings"`) || !strings.Contains(b, "admin suspended the room") {
			t.Fatalf("notification: %s", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notification within 10 s")
	}
}
