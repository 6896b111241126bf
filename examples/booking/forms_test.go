package main

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The booking form never loses a slow visitor's data: each way a booking can fail to go
// through keeps it, says why, and gives the form back filled in when the visitor's turn
// comes; with the keepalive, a visitor who types for longer than a session books at once.

func post(t *testing.T, c *http.Client, u string, form url.Values) (int, string) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// keepalive calls the form's keepalive endpoint as its script does.
func keepalive(t *testing.T, c *http.Client, u string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u+keepalivePath, nil)
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatalf("keepalive: %d, %v", resp.StatusCode, err)
	}
	return a
}

var aliceForm = url.Values{"name": {"Alice"}, "slot": {"09:15"}}

// restored checks that the form came back with alice's booking filled in.
func restored(t *testing.T, who, body string) {
	t.Helper()
	if !strings.Contains(body, "Book your vaccination") || !strings.Contains(body, `id="restored"`) ||
		!strings.Contains(body, `value="Alice"`) || !strings.Contains(body, `<option selected>09:15</option>`) {
		t.Fatalf("%s: the form should come back filled in: %q", who, body)
	}
}

// TestLateBookingIsKept follows a visitor whose session ended while filling in the form
// (no JavaScript, so no keepalive): the POST is queued, the page says the booking was not
// sent and was kept, its refresh goes to a URL that gives the form, and the form comes back
// filled in once the visitor is admitted.
func TestLateBookingIsKept(t *testing.T) {
	t.Setenv("WAITINGROOM_KEY", "")
	clk, srv := serve(t, options{total: 1, perMinute: 1, session: 2 * time.Minute, refresh: 5 * time.Second, store: "memory"})
	alice, bob := client(t), client(t)
	if _, body := get(t, alice, srv.URL+"/"); !strings.Contains(body, "Book your vaccination") || !strings.Contains(body, `data-wr-session-left`) {
		t.Fatalf("alice: %q", body)
	}
	// Alice dawdles; her session ends and bob takes the place.
	clk.Advance(3 * time.Minute)
	if _, body := get(t, bob, srv.URL+"/"); !strings.Contains(body, "Book your vaccination") {
		t.Fatalf("bob: %q", body)
	}
	code, body := post(t, alice, srv.URL+"/reserve", aliceForm)
	if code != 200 || !strings.Contains(body, "You are in the queue") || !strings.Contains(body, `id="wr-notice"`) ||
		!strings.Contains(body, "your time on the site ran out at 9:02 AM") || !strings.Contains(body, "What you typed has been kept") ||
		strings.Contains(body, "booked for") {
		t.Fatalf("alice's late POST should queue and say the booking was kept: %d %q", code, body)
	}
	m := regexp.MustCompile(`<meta http-equiv="refresh" content="5; url=([^"]+)">`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no refresh to another URL on the POST's waiting page: %q", body)
	}
	next := mustURL(t, srv.URL).ResolveReference(mustURL(t, html.UnescapeString(m[1]))).String()
	if next != srv.URL+"/" {
		t.Fatalf("the POST's page moves on to %s, want the form", next)
	}
	// Still queued at the refresh: a GET page, which refreshes to itself, with no notice.
	clk.Advance(5 * time.Second)
	if _, body := get(t, alice, next); !strings.Contains(body, "You are in the queue") || strings.Contains(body, `id="wr-notice"`) ||
		!strings.Contains(body, `content="5"></noscript>`) {
		t.Fatalf("alice at %s while queued: %q", next, body)
	}
	// Bob books, which frees the place; the rate lets alice in a minute after bob.
	if code, _ := post(t, bob, srv.URL+"/reserve", url.Values{"name": {"Bob"}, "slot": {"09:00"}}); code != 200 {
		t.Fatalf("bob's booking: %d", code)
	}
	clk.Advance(61 * time.Second)
	_, body = get(t, alice, next)
	restored(t, "alice once admitted", body)
	if code, body := post(t, alice, srv.URL+"/reserve", aliceForm); code != 200 || !strings.Contains(body, "your vaccination is booked for 09:15") {
		t.Fatalf("alice's booking once admitted: %d %q", code, body)
	}
	// The draft is gone with the booking.
	clk.Advance(61 * time.Second)
	if _, body := get(t, alice, srv.URL+"/"); strings.Contains(body, `id="restored"`) {
		t.Fatalf("the draft outlived the booking: %q", body)
	}
}

// TestBookingWithoutCookieIsKept posts the form from a browser the room does not know
// (cookies cleared, or refused): the page says so, not that time ran out, and keeps it.
func TestBookingWithoutCookieIsKept(t *testing.T) {
	t.Setenv("WAITINGROOM_KEY", "")
	clk, srv := serve(t, options{total: 1, perMinute: 1, session: 2 * time.Minute, refresh: 5 * time.Second, store: "memory"})
	bob, alice := client(t), client(t)
	get(t, bob, srv.URL+"/")
	code, body := post(t, alice, srv.URL+"/reserve", aliceForm)
	if code != 200 || !strings.Contains(body, "we could not recognise your visit") || strings.Contains(body, "ran out") ||
		!strings.Contains(body, "What you typed has been kept") || !strings.Contains(body, `data-cookies-off="Your form was not sent: your browser does not accept cookies`) {
		t.Fatalf("a POST without a cookie: %d %q", code, body)
	}
	post(t, bob, srv.URL+"/reserve", url.Values{"name": {"Bob"}, "slot": {"09:00"}})
	clk.Advance(61 * time.Second)
	_, body = get(t, alice, srv.URL+"/")
	restored(t, "alice once admitted", body)
}

// TestBookingWhileQueuedIsKept posts the form with a ticket (the form was open in another
// tab while the visitor waits): the page says the visitor is still in the queue.
func TestBookingWhileQueuedIsKept(t *testing.T) {
	t.Setenv("WAITINGROOM_KEY", "")
	clk, srv := serve(t, options{total: 1, perMinute: 1, session: 2 * time.Minute, refresh: 5 * time.Second, store: "memory"})
	bob, alice := client(t), client(t)
	get(t, bob, srv.URL+"/")
	get(t, alice, srv.URL+"/")
	code, body := post(t, alice, srv.URL+"/reserve", aliceForm)
	if code != 200 || !strings.Contains(body, "you are still in the queue") || !strings.Contains(body, "What you typed has been kept") {
		t.Fatalf("a POST with a ticket: %d %q", code, body)
	}
	post(t, bob, srv.URL+"/reserve", url.Values{"name": {"Bob"}, "slot": {"09:00"}})
	clk.Advance(61 * time.Second)
	_, body = get(t, alice, srv.URL+"/")
	restored(t, "alice once admitted", body)
}

// TestKeepaliveOutlastsTheSession fills the form for five minutes with a two-minute session:
// the keepalive, called as the script does while the person types, keeps the session, so
// the booking goes through and nobody else took the place. Without it the session ends.
func TestKeepaliveOutlastsTheSession(t *testing.T) {
	t.Setenv("WAITINGROOM_KEY", "")
	clk, srv := serve(t, options{total: 1, perMinute: 1, session: 2 * time.Minute, refresh: 5 * time.Second, store: "memory"})
	alice, bob := client(t), client(t)
	get(t, alice, srv.URL+"/")
	if a := keepalive(t, alice, srv.URL); a["active"] != true || a["expiresInSeconds"] != 120.0 || a["renewInSeconds"] != 24.0 {
		t.Fatalf("keepalive at once: %v; want active, 120 s left, renewal due in 24 s", a)
	}
	for range 10 { // typing for five minutes, the script calling every 30 s
		clk.Advance(30 * time.Second)
		if a := keepalive(t, alice, srv.URL); a["active"] != true || a["expiresInSeconds"].(float64) < 90 {
			t.Fatalf("keepalive at %v: %v", clk.Now(), a)
		}
		if _, body := get(t, bob, srv.URL+"/"); !strings.Contains(body, "You are in the queue") {
			t.Fatalf("bob got alice's place at %v: %q", clk.Now(), body)
		}
	}
	if code, body := post(t, alice, srv.URL+"/reserve", aliceForm); code != 200 || !strings.Contains(body, "booked for 09:15") {
		t.Fatalf("alice's booking after five minutes: %d %q", code, body)
	}

	// A page left open without anyone typing: the session ends, and the keepalive says so
	// without taking a place in the queue.
	carol := client(t)
	clk.Advance(61 * time.Second)
	if _, body := get(t, carol, srv.URL+"/"); !strings.Contains(body, "Book your vaccination") && !strings.Contains(body, "You are in the queue") {
		t.Fatalf("carol: %q", body)
	}
	clk.Advance(3 * time.Minute)
	for _, c := range []*http.Client{bob, carol} {
		if a := keepalive(t, c, srv.URL); a["active"] == true {
			t.Fatalf("keepalive after the session: %v", a)
		}
	}
}

// TestKeepaliveStopsAtMaxSession types in the form with -max-session 3m: the keepalive
// renews the session until a renewal would carry it past three minutes from admission, then
// tells the script the end stands (the renewal due, renewInSeconds 0: "cannot be extended").
func TestKeepaliveStopsAtMaxSession(t *testing.T) {
	t.Setenv("WAITINGROOM_KEY", "")
	o := flagOptions(t, []string{"-total-active", "1", "-new-per-minute", "1", "-session", "2m", "-max-session", "3m", "-refresh", "5s"})
	clk, srv := serve(t, o)
	alice := client(t)
	get(t, alice, srv.URL+"/")
	clk.Advance(30 * time.Second) // renewed until 2m30s: within three minutes
	if a := keepalive(t, alice, srv.URL); a["active"] != true || a["expiresInSeconds"] != 120.0 || a["renewInSeconds"] != 24.0 {
		t.Fatalf("keepalive at 30 s: %v; want renewed, 120 s left, the next renewal in 24 s", a)
	}
	clk.Advance(31 * time.Second) // at 61 s a renewal would reach 3m01s
	for _, left := range []float64{89, 59} {
		if a := keepalive(t, alice, srv.URL); a["active"] != true || a["expiresInSeconds"] != left || a["renewInSeconds"] != 0.0 {
			t.Fatalf("keepalive past the last renewal: %v; want %v s left and the renewal due", a, left)
		}
		clk.Advance(30 * time.Second)
	}
}

// TestLateBookingWithinGraceGoesThrough posts the form a little after the session ended
// (no keepalive), within the example's post grace, when a newcomer would have to wait (the
// rate is spent): while the site has room, the booking goes through at once. (With the place
// taken, it is kept: TestLateBookingIsKept.)
func TestLateBookingWithinGraceGoesThrough(t *testing.T) {
	t.Setenv("WAITINGROOM_KEY", "")
	clk, srv := serve(t, options{total: 2, perMinute: 1, session: 2 * time.Minute, refresh: 5 * time.Second, store: "memory",
		appointments: 500, postGrace: 2 * time.Minute})
	alice, dave := client(t), client(t)
	if _, body := get(t, alice, srv.URL+"/"); !strings.Contains(body, "Book your vaccination") {
		t.Fatalf("alice: %q", body)
	}
	clk.Advance(2 * time.Minute)
	if _, body := get(t, dave, srv.URL+"/"); !strings.Contains(body, "Book your vaccination") {
		t.Fatalf("dave: %q", body)
	}
	// Alice's session ended 30 s ago; one place is free, but the rate lets nobody new in.
	clk.Advance(30 * time.Second)
	if code, body := post(t, alice, srv.URL+"/reserve", aliceForm); code != 200 || !strings.Contains(body, "your vaccination is booked for 09:15") {
		t.Fatalf("alice's booking 30 s after her session ended, within the grace: %d %q", code, body)
	}

}

// TestSoldOut books the last appointment: those waiting are told so in the waiting page's
// message (in their language), and a booking sent after that is refused, its form kept.
func TestSoldOut(t *testing.T) {
	t.Setenv("WAITINGROOM_KEY", "")
	clk, srv := serve(t, options{total: 1, perMinute: 1, session: 2 * time.Minute, refresh: 5 * time.Second, store: "memory",
		appointments: 1, postGrace: 2 * time.Minute})
	alice, bob := client(t), client(t)
	get(t, alice, srv.URL+"/")
	if _, body := get(t, bob, srv.URL+"/"); !strings.Contains(body, "1 place left") || strings.Contains(body, "All the appointments") {
		t.Fatalf("bob before the last booking: %q", body)
	}
	if code, body := post(t, alice, srv.URL+"/reserve", aliceForm); code != 200 || !strings.Contains(body, "booked for 09:15") {
		t.Fatalf("the last appointment: %d %q", code, body)
	}
	clk.Advance(5 * time.Second)
	if st := getJSON(t, bob, srv.URL+"/"); st["message"] != "All the appointments have been booked. We are sorry." || st["slotsLeft"] != 0.0 {
		t.Fatalf("bob's status once they are all booked: %v", st)
	}
	clk.Advance(5 * time.Second)
	if _, body := get(t, bob, srv.URL+"/?lang=ja"); !strings.Contains(body, "ご用意した予約枠はすべて埋まりました。") {
		t.Fatalf("bob in Japanese: %q", body)
	}
	clk.Advance(61 * time.Second)
	code, body := post(t, bob, srv.URL+"/reserve", url.Values{"name": {"Bob"}, "slot": {"09:00"}})
	if code != http.StatusConflict || !strings.Contains(body, "ご用意した予約枠はすべて埋まりました。") || !strings.Contains(body, `value="Bob"`) {
		t.Fatalf("a booking with none left: %d %q", code, body)
	}
}

// TestCrossSitePostIsRefused: a form posted from another site is refused before the room
// (net/http's CrossOriginProtection): it takes no place and sets no cookie. The same form
// from the site itself goes on as usual.
func TestCrossSitePostIsRefused(t *testing.T) {
	_, srv := serve(t, options{total: 1, perMinute: 1, session: 2 * time.Minute, refresh: 5 * time.Second, store: "memory"})
	for _, site := range []string{"cross-site", "same-site"} {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/reserve", strings.NewReader(aliceForm.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", site)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
			t.Errorf("a %s POST: %d, cookies %v; want 403 and none", site, resp.StatusCode, resp.Cookies())
		}
	}
	// Nobody took a place: the first real visitor is let in at once, and books.
	bob := client(t)
	if _, body := get(t, bob, srv.URL+"/"); !strings.Contains(body, "<form") {
		t.Errorf("the first real visitor waits: %.200q", body)
	}
	if code, body := post(t, bob, srv.URL+"/reserve", url.Values{"name": {"Bob"}, "slot": {"09:00"}}); code != http.StatusOK {
		t.Errorf("the site's own form: %d %.200q", code, body)
	}
}
