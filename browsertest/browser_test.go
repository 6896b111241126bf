// Package browsertest walks the booking example in headless Chromium, as a visitor would:
// the waiting page, its live updates and what its live region says, reduced motion, the
// turn coming in a background tab, the form with the keepalive, Japanese, and axe-core's
// accessibility rules; the waiting page when the room goes away; a closed room; the
// pre-queue; the site's message; a form sent after an idle spell, and a session that cannot
// be extended; and the JSON client of examples/jsonclient. dashboard_test.go walks the
// operator's dashboard of the admin package; speak_test.go, a room's message, count of
// places left and sold-out pages on the built-in pages of middleware.Protect.
// It is a module of its own so that chromedp stays out of the library.
//
//	cd browsertest && go test ./...
//
// It needs Chromium (/usr/bin/chromium, or CHROMIUM=path) and skips without it, unless
// WAITINGROOM_BROWSER=required (as in .ci/run). WAITINGROOM_SCREENSHOTS=dir keeps the
// screenshots there; the README shows waiting-en-1280x800.png and waiting-ja-390x844.png
// (docs/waiting-en.png, docs/waiting-ja.png), taken with a Japanese font installed
// (Debian's fonts-noto-cjk), and dashboard-1280x800.png and dashboard-390x844.png
// (docs/dashboard-desktop.png, docs/dashboard-phone.png).
package browsertest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/css"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

func TestBookingInABrowser(t *testing.T) {
	t.Parallel()
	chromium := findChromium(t)
	// A typical session of two minutes (the example's default): with two people ahead the
	// estimate is a range of minutes.
	base, _ := startExample(t, "-typical-session", "2m")
	shots := os.Getenv("WAITINGROOM_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}

	browser := newBrowser(t, chromium, 150*time.Second)
	run := func(bctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(bctx context.Context, sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	attr := func(bctx context.Context, sel, name string) string {
		t.Helper()
		a, err := chromedp.Run(bctx, chromedp.AttributeValue(sel, name))
		if err != nil {
			t.Fatalf("%s of %s: %v", name, sel, err)
		}
		return a.Value
	}

	// The room holds one visitor: alice is in, bob and carol wait, and the browser queues
	// behind them.
	alice, bob, carol := visitor(t), visitor(t), visitor(t)
	if body := get(t, alice, base+"/"); !strings.Contains(body, "Book your vaccination") {
		t.Fatalf("alice: %q", body)
	}
	for _, c := range []*http.Client{bob, carol} {
		if body := get(t, c, base+"/"); !strings.Contains(body, "You are in the queue") {
			t.Fatalf("bob or carol: %q", body)
		}
	}
	run(browser, "the waiting page",
		recordAnnouncements(),
		viewport(390, 844),
		headers(network.Headers{"Accept-Language": "en-GB,en;q=0.9"}),
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible("#wr-heading"),
	)
	ahead, wait, around := text(browser, "#wr-ahead"), text(browser, "#wr-wait"), text(browser, "#wr-around")
	progress, progressValue := text(browser, "#wr-progressText"), attr(browser, "#wr-bar", "value")
	if ahead != "2" || !waitRangeEn.MatchString(wait) || !aroundEn.MatchString(around) ||
		progress != "0 of the 2 people ahead of you when you arrived have gone in." || progressValue != "0" {
		t.Fatalf("waiting: ahead %q, wait %q %q (want a range of minutes and a time of day), progress %q (%s)", ahead, wait, around, progress, progressValue)
	}
	noSeriousViolations(t, browser, "the waiting page")
	t.Run("reduced motion", func(t *testing.T) { reducedMotion(t, browser) })
	// Two polls before anything changes: the page says nothing of its own.
	run(browser, "two polls", waitFor(`wrEvents.filter(e => e.kind === 'poll').length >= 2`, 6*time.Second))

	// Alice books, which frees her place: bob goes in, and the page moves along by itself.
	book(t, alice, base, "Alice")
	admit(t, bob, base)
	run(browser, "the page follows the queue",
		waitFor(`document.getElementById('wr-ahead').textContent === '1'`, 15*time.Second),
		waitFor(`document.getElementById('wr-bar').value === 50`, 5*time.Second),
		waitFor(`document.getElementById('wr-announce').textContent.indexOf('1 person ahead of you.') === 0`, 5*time.Second),
	)
	screenshot(t, browser, filepath.Join(shots, "waiting-en-390x844.png"), 390, 844)
	screenshot(t, browser, filepath.Join(shots, "waiting-en-1280x800.png"), 1280, 800)
	noHorizontalScroll(t, browser, "the waiting page")

	// Bob books: carol goes in, and the page says the browser is next, to screen readers too.
	book(t, bob, base, "Bob")
	admit(t, carol, base)
	run(browser, "the browser is next",
		waitFor(`document.getElementById('wr-ahead').textContent === 'You are next'`, 15*time.Second),
		waitFor(`document.getElementById('wr-bar').value === 100`, 5*time.Second),
		waitFor(`document.getElementById('wr-announce').textContent.indexOf('You are next') === 0`, 5*time.Second),
	)
	if said := onlyChangesAnnounced(t, browser); len(said) != 2 || !strings.HasPrefix(said[0], "1 person ahead of you.") ||
		!strings.HasPrefix(said[1], "You are next.") {
		t.Errorf("announced %q, want 1 person ahead, then next", said)
	}

	// The tab goes to the background. Carol books too: the browser's turn comes, which the
	// tab's title says, but the page waits for the person to look before it moves on.
	evaluate[bool](t, browser, "hiding the tab", `window.stayed = true;
		Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});
		Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});
		document.dispatchEvent(new Event('visibilitychange'));
		true`)
	book(t, carol, base, "Carol")
	run(browser, "the title says it is the browser's turn",
		waitFor(`document.title.indexOf('Your turn – ') === 0`, 15*time.Second),
		chromedp.Sleep(2500*time.Millisecond), // a visible tab moves on after 1.5 s
	)
	if stayed := evaluate[bool](t, browser, "the hidden tab", `window.stayed === true && !!document.getElementById('wr-heading') && !document.getElementById('name')`); !stayed {
		t.Fatal("a hidden tab moved on to the form before the person looked")
	}
	evaluate[bool](t, browser, "showing the tab", `Object.defineProperty(document, 'hidden', {configurable: true, get: () => false});
		Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'visible'});
		document.dispatchEvent(new Event('visibilitychange'));
		true`)
	shown, cancelShown := context.WithTimeout(browser, 10*time.Second) // well before the 30 s a hidden tab waits at most
	run(shown, "the browser moves on to the form once the tab is seen", chromedp.WaitVisible("#name"))
	cancelShown()
	noSeriousViolations(t, browser, "the form")

	// Slowly past the session (10 s), with the keepalive renewing it as the person types.
	// Dave waits meanwhile: had the session lapsed, he would have taken the place.
	dave := visitor(t)
	start := time.Now()
	for time.Since(start) < 16*time.Second {
		run(browser, "typing", chromedp.SendKeys("#name", "a"))
		if body := get(t, dave, base+"/"); !strings.Contains(body, "You are in the queue") {
			t.Fatalf("dave got the place %v into the typing: %q", time.Since(start), body)
		}
		time.Sleep(1500 * time.Millisecond)
	}
	left := text(browser, "[data-wr-session-left]")
	pings, err := chromedp.Run(browser, chromedp.Evaluate[int](`performance.getEntriesByType('resource').filter(e => e.name.endsWith('/keepalive')).length`))
	if err != nil || pings < 3 {
		t.Fatalf("keepalive calls while typing for 16 s: %d (%v)", pings, err)
	}
	run(browser, "booking after 16 s",
		chromedp.SetValue("#slot", "09:30"),
		chromedp.Click(`button[type=submit]`),
		chromedp.WaitVisible("#booked"),
	)
	if booked := text(browser, "#booked"); !strings.Contains(booked, "your vaccination is booked for 09:30") || left == "0:00" {
		t.Fatalf("after 16 s of typing in a 10 s session: %q left, booked %q", left, booked)
	}

	// Japanese, in a browser of its own, behind erin and frank; dave is in.
	admit(t, dave, base)
	erin, frank := visitor(t), visitor(t)
	get(t, erin, base+"/")
	get(t, frank, base+"/")
	ja, cancelJa := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	defer cancelJa()
	run(ja, "the Japanese waiting page",
		viewport(390, 844),
		headers(network.Headers{"Accept-Language": "ja"}),
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible("#wr-heading"),
	)
	lang, heading, jaAhead, jaWait := attr(ja, "html", "lang"), text(ja, "#wr-heading"), text(ja, "#wr-ahead"), text(ja, "#wr-wait")
	if lang != "ja" || heading != "順番にご案内しています" || jaAhead != "2人" || !waitRangeJa.MatchString(jaWait) {
		t.Fatalf("Japanese: lang %q, heading %q, ahead %q, wait %q (want a range of minutes)", lang, heading, jaAhead, jaWait)
	}
	book(t, dave, base, "Dave")
	admit(t, erin, base)
	run(ja, "the Japanese page follows the queue",
		waitFor(`document.getElementById('wr-ahead').textContent === '1人'`, 15*time.Second),
		waitFor(`document.getElementById('wr-announce').textContent.indexOf('あなたより前に1人お待ちです。') === 0`, 5*time.Second),
	)
	noSeriousViolations(t, ja, "the Japanese waiting page")

	// The JSON client of examples/jsonclient, as an app would use it in the same browser.
	client, err := os.ReadFile("../examples/jsonclient/waitingroom.js")
	if err != nil {
		t.Fatal(err)
	}
	status, err := chromedp.Run(ja, chromedp.Evaluate[map[string]any](string(client)+`;
		new Promise((resolve, reject) => {
			var stop = WaitingRoom.poll('/', {
				onWaiting: s => { stop(); resolve(s); },
				onAdmitted: r => { stop(); reject(new Error('admitted: ' + r.status)); },
				onError: e => { stop(); reject(e); },
			});
		})`, chromedp.EvalAwaitPromise))
	// The refresh is what is left of the room's 2 s: the page polls the same ticket, so
	// the client's poll may be answered from the ticket, or share the page's answer.
	refresh, _ := status["refreshIntervalSeconds"].(float64)
	if err != nil || status["inWaitingRoom"] != true || status["usersAhead"] != 1.0 || refresh < 1 || refresh > 2 ||
		status["waitTimeKnown"] != true || status["waitTimeFormatted"] == "" {
		t.Fatalf("the JSON client: %v (%v)", status, err)
	}

	screenshot(t, ja, filepath.Join(shots, "waiting-ja-390x844.png"), 390, 844)
	screenshot(t, ja, filepath.Join(shots, "waiting-ja-1280x800.png"), 1280, 800)
	noHorizontalScroll(t, ja, "the Japanese waiting page")
}

// The estimated wait as a range of whole minutes (the catalogues' MinutesRange), and the
// time of day it ends.
var (
	waitRangeEn = regexp.MustCompile(`^\d+ to \d+ minutes$`)
	aroundEn    = regexp.MustCompile(`^around \d{1,2}:\d\d [AP]M$`)
	waitRangeJa = regexp.MustCompile(`^\d+～\d+分$`)
)

// recordAnnouncements makes the tab record, from the first moment of each page, what its
// live region (#wr-announce) says and when what it shows changes: window.wrEvents gets, in
// order, {kind: 'poll'} for each fetch, {kind: 'change'} when the heading, the people
// ahead, the wait, the opening, the places left or the message change, and {kind: 'say',
// text} for each announcement.
func recordAnnouncements() chromedp.Action[chromedp.Void] {
	const recorder = `(function () {
		var events = window.wrEvents = [], lastKey = null, lastSaid = '', fetch = window.fetch;
		window.fetch = function () { events.push({kind: 'poll'}); return fetch.apply(this, arguments); };
		var text = function (id) { var el = document.getElementById(id); return el ? el.textContent : ''; };
		new MutationObserver(function () {
			if (!document.getElementById('wr-announce')) return;
			var key = ['heading', 'ahead', 'wait', 'opens', 'slots', 'message'].map(function (f) { return text('wr-' + f); }).join('|');
			if (lastKey !== null && key !== lastKey) events.push({kind: 'change', text: key});
			lastKey = key;
			var said = text('wr-announce');
			if (said && said !== lastSaid) events.push({kind: 'say', text: said});
			lastSaid = said;
		}).observe(document, {subtree: true, childList: true, characterData: true});
	})()`
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: recorder})
		return err
	})
}

// onlyChangesAnnounced checks what recordAnnouncements saw on the page: nothing said at
// load, nor after a poll that changed nothing (one at least), and each change said once at
// most. It returns the announcements.
func onlyChangesAnnounced(t *testing.T, ctx context.Context) []string {
	t.Helper()
	type event struct{ Kind, Text string }
	events := evaluate[[]event](t, ctx, "the page's events", `wrEvents`)
	changed, quiet := false, 0
	var said []string
	for i, e := range events {
		switch e.Kind {
		case "change":
			changed = true
		case "say":
			if !changed {
				t.Errorf("announced %q with nothing changed since the page loaded or since the last announcement: %v", e.Text, events[:i+1])
			}
			changed = false
			said = append(said, e.Text)
		case "poll":
			if i > 0 && events[i-1].Kind == "poll" {
				quiet++ // the poll before it changed nothing, and nothing was said
			}
		}
	}
	if quiet == 0 {
		t.Errorf("no poll that changed nothing to check: %v", events)
	}
	return said
}

// TestSoldOutIsAnnounced books the last appointment (-appointments 1) while the browser
// waits: the site's message that none are left appears, and the live region says it once.
func TestSoldOutIsAnnounced(t *testing.T) {
	t.Parallel()
	chromium := findChromium(t)
	base, _ := startExample(t, "-appointments", "1")
	browser := newBrowser(t, chromium, 60*time.Second)
	alice, bob := visitor(t), visitor(t)
	get(t, alice, base+"/")
	get(t, bob, base+"/")
	const soldOut = "All the appointments have been booked. We are sorry."
	if err := chromedp.Do(browser,
		recordAnnouncements(),
		headers(network.Headers{"Accept-Language": "en"}),
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible("#wr-heading"),
	); err != nil {
		t.Fatalf("the waiting page: %v", err)
	}
	book(t, alice, base, "Alice")
	admit(t, bob, base)
	if err := chromedp.Do(browser,
		waitFor(`!document.getElementById('wr-message-box').hidden && document.getElementById('wr-message').textContent === '`+soldOut+`'`, 10*time.Second),
		waitFor(`document.getElementById('wr-ahead').textContent === 'You are next'`, 5*time.Second),
	); err != nil {
		t.Fatalf("the message does not show: %v", err)
	}
	polls := evaluate[int](t, browser, "the polls", `wrEvents.filter(e => e.kind === 'poll').length`)
	if err := chromedp.Do(browser, waitFor(fmt.Sprintf(`wrEvents.filter(e => e.kind === 'poll').length >= %d`, polls+2), 6*time.Second)); err != nil {
		t.Fatalf("the page stopped polling: %v", err)
	}
	said := onlyChangesAnnounced(t, browser)
	if n := strings.Count(strings.Join(said, "\n"), "Message from the site: "+soldOut); n != 1 {
		t.Errorf("the message was announced %d times, want once: %q", n, said)
	}
}

// TestFormAfterAnIdleSpell renews the session with the form's "Keep my session" button,
// then leaves the form until the session is over and sends it: within the example's post
// grace (2 minutes) the booking goes through, though the rate (one a minute) keeps anyone
// new waiting. For that the cookie of the keepalive's pass must outlive the pass, or the
// browser drops it and the form arrives from a stranger.
func TestFormAfterAnIdleSpell(t *testing.T) {
	t.Parallel()
	chromium := findChromium(t)
	base, _ := startExample(t, "-total-active", "2", "-new-per-minute", "1")
	browser := newBrowser(t, chromium, 60*time.Second)
	secondsLeft := `(function () {
		var s = document.querySelector('[data-wr-session-left]').textContent.split(':');
		return s.length === 2 ? +s[0] * 60 + +s[1] : -1;
	})()`
	if err := chromedp.Do(browser,
		headers(network.Headers{"Accept-Language": "en"}),
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible("#name"),
		chromedp.SendKeys("#name", "Idle"),
		chromedp.SetValue("#slot", "09:45"),
		chromedp.Sleep(2200*time.Millisecond), // the renewal is due after 2 s (a fifth of the session)
		chromedp.Click("[data-wr-keep-session]"),
		waitFor(secondsLeft+` >= 9`, 3*time.Second),
	); err != nil {
		t.Fatalf("the form, renewed: %v", err)
	}
	// Then the page loses the server (a phone asleep, a train in a tunnel) and nobody
	// touches it until the session is over, and a moment more. (Online, the script would
	// renew the session near its end for a minute after the last keystroke.)
	evaluate[bool](t, browser, "cutting off the keepalive", `var f = window.fetch;
		window.fetch = function (u) { return String(u).endsWith('/keepalive') ? Promise.reject(new TypeError('offline')) : f.apply(this, arguments); };
		true`)
	if err := chromedp.Do(browser, waitFor(`!document.querySelector('[data-wr-session-ended]').hidden`, 15*time.Second),
		chromedp.Sleep(1500*time.Millisecond)); err != nil {
		t.Fatalf("the session did not end on the page: %v", err)
	}
	if err := chromedp.Do(browser, chromedp.Click(`button[type=submit]`), chromedp.WaitVisible("#booked, #wr-heading")); err != nil {
		t.Fatalf("sending the form: %v", err)
	}
	if booked, err := chromedp.Run(browser, chromedp.Text("body")); err != nil || !strings.Contains(booked, "Idle, your vaccination is booked for 09:45") {
		t.Errorf("the form sent after the session, within the grace: %q (%v)", booked, err)
	}
}

// TestSessionCannotBeExtended opens the form in Japanese in a room whose sessions last 12 s
// at most (-max-session 12s, sessions of 10 s): the first renewal, asked for with the
// button once it is due, would go past that, so the page says the session cannot be
// extended. The Japanese form passes axe and fits 320 px.
func TestSessionCannotBeExtended(t *testing.T) {
	t.Parallel()
	chromium := findChromium(t)
	base, _ := startExample(t, "-max-session", "12s")
	browser := newBrowser(t, chromium, 60*time.Second)
	if err := chromedp.Do(browser,
		viewport(390, 844),
		headers(network.Headers{"Accept-Language": "ja"}),
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible("#name"),
	); err != nil {
		t.Fatalf("the Japanese form: %v", err)
	}
	start := time.Now()
	if heading, err := chromedp.Run(browser, chromedp.Text("h1")); err != nil || heading != "ワクチン接種のご予約" {
		t.Fatalf("the Japanese form's heading: %q (%v)", heading, err)
	}
	noSeriousViolations(t, browser, "the Japanese form")
	noHorizontalScroll(t, browser, "the Japanese form")
	if err := chromedp.Do(browser,
		chromedp.Sleep(max(2200*time.Millisecond-time.Since(start), 0)), // the renewal is due after 2 s
		chromedp.Click("[data-wr-keep-session]"),
		waitFor(`!document.querySelector('[data-wr-session-fixed]').hidden`, 5*time.Second),
	); err != nil {
		t.Fatalf("the page does not say the session cannot be extended: %v", err)
	}
	if fixed, err := chromedp.Run(browser, chromedp.Text("[data-wr-session-fixed]")); err != nil || fixed != "このご利用時間は延長できません。" {
		t.Errorf("the session cannot be extended: %q (%v)", fixed, err)
	}
}

// TestPrequeuePage opens the pre-queue of an event whose order will be drawn (-shuffle), in
// English and Japanese: its texts, axe-core, and 320 px.
func TestPrequeuePage(t *testing.T) {
	t.Parallel()
	chromium := findChromium(t)
	base, _ := startExample(t, "-prequeue-start", "0s", "-event-start", "10m", "-shuffle")
	browser := newBrowser(t, chromium, 60*time.Second)
	for _, tt := range []struct{ lang, heading, intro, opens string }{
		{"en", "Not open yet", "random order", "in 10 minutes."},
		{"ja", "まだ受付開始前です", "抽選", "（あと10分）。"},
	} {
		tab := browser
		if tt.lang != "en" { // a browser context of its own, once the browser has started
			var cancel context.CancelFunc
			tab, cancel = chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
			defer cancel()
		}
		if err := chromedp.Do(tab,
			viewport(390, 844),
			headers(network.Headers{"Accept-Language": tt.lang}),
			chromedp.Navigate(base+"/"),
			chromedp.WaitVisible("#wr-heading"),
		); err != nil {
			t.Fatalf("the pre-queue page in %s: %v", tt.lang, err)
		}
		texts := evaluate[map[string]string](t, tab, "the page's texts", `({heading: document.getElementById('wr-heading').textContent,
			intro: document.getElementById('wr-intro').textContent, opens: document.getElementById('wr-opens').textContent})`)
		if texts["heading"] != tt.heading || !strings.Contains(texts["intro"], tt.intro) || !strings.HasSuffix(texts["opens"], tt.opens) {
			t.Errorf("the pre-queue page in %s: %q", tt.lang, texts)
		}
		noSeriousViolations(t, tab, "the pre-queue page in "+tt.lang)
		noHorizontalScroll(t, tab, "the pre-queue page in "+tt.lang)
	}
}

// newBrowser starts a headless Chromium of the test's own, for at most d, and returns its
// first tab.
func newBrowser(t *testing.T, chromium string, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // as root in CI
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
	)...)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	return browser
}

// TestWaitingPageOffline stops the room under an open waiting page: the page says it is
// reconnecting and tries again less and less often (after the refresh, twice it, three
// times it), not every 100 ms.
func TestWaitingPageOffline(t *testing.T) {
	t.Parallel()
	chromium := findChromium(t)
	base, stop := startExample(t)
	browser := newBrowser(t, chromium, 60*time.Second)
	if body := get(t, visitor(t), base+"/"); !strings.Contains(body, "Book your vaccination") {
		t.Fatalf("alice: %q", body)
	}
	if err := chromedp.Do(browser,
		headers(network.Headers{"Accept-Language": "en"}),
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible("#wr-heading"),
	); err != nil {
		t.Fatalf("the waiting page: %v", err)
	}
	// Every poll counted, and one answered before the room goes away.
	evaluate[bool](t, browser, "counting the polls", `window.polls = 0;
		var f = window.fetch;
		window.fetch = function () { window.polls++; return f.apply(this, arguments); };
		true`)
	if err := chromedp.Do(browser, waitFor(`window.polls >= 1`, 5*time.Second)); err != nil {
		t.Fatalf("the page did not poll: %v", err)
	}
	stop()
	const reconnecting = "The connection was lost. Trying again… You keep your place."
	if err := chromedp.Do(browser,
		waitFor(`!document.getElementById('wr-alert').hidden && document.getElementById('wr-alert').textContent === '`+reconnecting+`'`, 5*time.Second),
		waitFor(`document.getElementById('wr-announce').textContent === '`+reconnecting+`'`, 2*time.Second),
	); err != nil {
		alert := evaluate[string](t, browser, "the alert", `document.getElementById('wr-alert').textContent`)
		t.Fatalf("offline, the page does not say it is reconnecting: %q (%v)", alert, err)
	}
	before := evaluate[int](t, browser, "the polls", `window.polls`)
	time.Sleep(5 * time.Second)
	// After the failed poll, the next ones go 2 s and 4 s later: one in 5 s, two with slack.
	if polls := evaluate[int](t, browser, "the polls", `window.polls`) - before; polls > 2 {
		t.Errorf("offline with a 2 s refresh, the page polled %d times in 5 s", polls)
	}
	if still := evaluate[bool](t, browser, "the page", `window.polls !== undefined && !!document.getElementById('wr-heading')`); !still {
		t.Error("offline, the page left the waiting page")
	}
}

// TestClosedRoom opens a closed room (-method reject) in the browser: the closed page, and
// the JSON client of examples/jsonclient, which must stop polling with onClosed.
func TestClosedRoom(t *testing.T) {
	t.Parallel()
	chromium := findChromium(t)
	base, _ := startExample(t, "-method", "reject")
	browser := newBrowser(t, chromium, 60*time.Second)
	if err := chromedp.Do(browser,
		viewport(390, 844),
		headers(network.Headers{"Accept-Language": "en"}),
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible("#wr-heading"),
	); err != nil {
		t.Fatalf("the closed page: %v", err)
	}
	client, err := os.ReadFile("../examples/jsonclient/waitingroom.js")
	if err != nil {
		t.Fatal(err)
	}
	closed := evaluate[map[string]any](t, browser, "the JSON client", string(client)+`;
		window.polls = 0;
		var f = window.fetch;
		window.fetch = function () { window.polls++; return f.apply(this, arguments); };
		new Promise((resolve, reject) => {
			setTimeout(() => reject(new Error('neither closed nor anything else in 10 s')), 10000);
			WaitingRoom.poll('/', {
				onWaiting: s => reject(new Error('waiting: ' + JSON.stringify(s))),
				onAdmitted: r => reject(new Error('admitted: ' + r.status)),
				onError: e => reject(e),
				onClosed: (s, r) => resolve({status: r.status, isRejectQueue: s.isRejectQueue, method: s.queueingMethod}),
			});
		})`)
	if closed["status"] != 503.0 || closed["isRejectQueue"] != true || closed["method"] != "reject" {
		t.Errorf("the JSON client in a closed room: %v", closed)
	}
	noSeriousViolations(t, browser, "the closed page")
	noHorizontalScroll(t, browser, "the closed page")
	if polls := evaluate[int](t, browser, "the polls", `window.polls`); polls != 1 {
		t.Errorf("the JSON client polled a closed room %d times", polls)
	}
}

// TestJSONClient runs the JSON client against a stand-in for a room, on loopback, that
// answers in turn: waiting with the next poll due in 150 ms; a proxy's 502 page; an outage
// (503 in JSON); and the app's own answer.
func TestJSONClient(t *testing.T) {
	t.Parallel()
	chromium := findChromium(t)
	var (
		mu    sync.Mutex
		calls []time.Time
	)
	answers := []func(w http.ResponseWriter){
		func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"cfWaitingRoom":{"inWaitingRoom":true,"waitTimeKnown":true,"waitTimeFormatted":"1 minute",` +
				`"refreshIntervalSeconds":1,"refreshIntervalMilliseconds":150,"queueingMethod":"fifo","isFIFOQueue":true,"usersAhead":1}}`))
		},
		func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("<html><body><h1>502 Bad Gateway</h1></body></html>"))
		},
		func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"cfWaitingRoom":{"inWaitingRoom":true,"waitTimeFormatted":"unavailable",` +
				`"refreshIntervalSeconds":1,"refreshIntervalMilliseconds":300,"queueingMethod":"fifo","isFIFOQueue":true,"outage":true}}`))
		},
		func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"booked":false}`))
		},
	}
	room := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.URL.Path != "/api" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte(`<!doctype html><html lang="en"><title>The app</title><main><h1>The app</h1></main></html>`))
			return
		}
		mu.Lock()
		n := len(calls)
		calls = append(calls, time.Now())
		mu.Unlock()
		answers[min(n, len(answers)-1)](w)
	}))
	t.Cleanup(room.Close)
	browser := newBrowser(t, chromium, 60*time.Second)
	if err := chromedp.Do(browser, chromedp.Navigate(room.URL+"/")); err != nil {
		t.Fatalf("the app's page: %v", err)
	}
	client, err := os.ReadFile("../examples/jsonclient/waitingroom.js")
	if err != nil {
		t.Fatal(err)
	}
	seen := evaluate[[]string](t, browser, "the JSON client", string(client)+`;
		new Promise((resolve, reject) => {
			var seen = [];
			setTimeout(() => reject(new Error('not admitted in 10 s: ' + seen.join(', '))), 10000);
			WaitingRoom.poll('/api', {
				onWaiting: s => seen.push('waiting ' + s.usersAhead),
				onError: (e, s) => seen.push('error' + (s && s.outage ? ' outage' : '')),
				onClosed: s => { seen.push('closed'); resolve(seen); },
				onAdmitted: r => r.text().then(b => { seen.push('admitted ' + r.status + ' ' + b); resolve(seen); }),
			});
		})`)
	want := []string{"waiting 1", "error", "error outage", `admitted 200 {"booked":false}`}
	if strings.Join(seen, "; ") != strings.Join(want, "; ") {
		t.Errorf("the JSON client saw %q, want %q", seen, want)
	}
	mu.Lock()
	defer mu.Unlock()
	// The waiting answer asked for the next poll in 150 ms (refreshIntervalMilliseconds), not
	// its refreshIntervalSeconds' 1 s.
	if len(calls) >= 2 {
		if gap := calls[1].Sub(calls[0]); gap > 700*time.Millisecond {
			t.Errorf("the poll after a 150 ms refresh came %v later", gap)
		}
	}
}

// reducedMotion checks that the progress bar, the <progress> element and the parts inside
// it (::-webkit-progress-bar, ::-webkit-progress-value, in the browser's own shadow tree),
// moves without transition or animation when the person asks for reduced motion.
func reducedMotion(t *testing.T, ctx context.Context) {
	setMotion := func(value string) {
		t.Helper()
		var features []*emulation.MediaFeature
		if value != "" {
			features = []*emulation.MediaFeature{{Name: "prefers-reduced-motion", Value: value}}
		}
		if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: features}); err != nil {
			t.Fatalf("prefers-reduced-motion %q: %v", value, err)
		}
	}
	defer setMotion("")
	setMotion("no-preference")
	moving := barMotion(t, ctx)
	if moving["-webkit-progress-value"] == "" {
		t.Fatalf("the bar's value does not move even without reduced motion: %q", moving)
	}
	setMotion("reduce")
	if !evaluate[bool](t, ctx, "the media query", `matchMedia('(prefers-reduced-motion: reduce)').matches`) {
		t.Fatal("prefers-reduced-motion: reduce is not emulated")
	}
	still := barMotion(t, ctx)
	for part, motion := range still {
		t.Errorf("with reduced motion, the progress bar's %s still moves: %s", part, motion)
	}
}

// barMotion returns the transitions and animations of #wr-bar and of the elements of its
// shadow tree, by part (the element's pseudo attribute, "progress" for the bar itself);
// parts that do not move are left out.
func barMotion(t *testing.T, ctx context.Context) map[string]string {
	t.Helper()
	depth, pierce := int64(-1), true
	doc, err := chromedp.Call(ctx, dom.GetDocument, dom.GetDocumentParams{Depth: &depth, Pierce: &pierce})
	if err == nil {
		_, err = chromedp.Call(ctx, css.Enable, cdp.Empty{})
	}
	if err != nil {
		t.Fatalf("the document: %v", err)
	}
	attr := func(n *cdp.Node, name string) string {
		for i := 0; i+1 < len(n.Attributes); i += 2 {
			if n.Attributes[i] == name {
				return n.Attributes[i+1]
			}
		}
		return ""
	}
	moving := map[string]string{}
	var walk func(n *cdp.Node, in bool)
	walk = func(n *cdp.Node, in bool) {
		bar := n.NodeType == 1 && n.LocalName == "progress" && attr(n, "id") == "wr-bar"
		in = in || bar
		if in && n.NodeType == 1 {
			st, err := chromedp.Call(ctx, css.GetComputedStyleForNode, css.GetComputedStyleForNodeParams{NodeID: n.NodeID})
			if err != nil {
				t.Fatalf("the style of %s: %v", n.LocalName, err)
			}
			p := map[string]string{}
			for _, c := range st.ComputedStyle {
				p[c.Name] = c.Value
			}
			lasts := func(durations string) bool { // "0s", or "0s, 0.6s" for several
				for _, d := range strings.Split(durations, ",") {
					if strings.TrimSpace(d) != "0s" {
						return true
					}
				}
				return false
			}
			var motion []string
			if p["transition-property"] != "none" && lasts(p["transition-duration"]) {
				motion = append(motion, "transition "+p["transition-property"]+" "+p["transition-duration"])
			}
			if p["animation-name"] != "none" && lasts(p["animation-duration"]) {
				motion = append(motion, "animation "+p["animation-name"]+" "+p["animation-duration"])
			}
			part := attr(n, "pseudo")
			if bar {
				part = "progress"
			} else if part == "" {
				part = n.LocalName + " inside the bar"
			}
			if len(motion) > 0 {
				moving[part] = strings.Join(motion, ", ")
			}
		}
		for _, c := range append(n.ShadowRoots, n.Children...) {
			walk(c, in)
		}
	}
	walk(doc.Root, false)
	return moving
}

// book books a slot for c, which releases its place.
func book(t *testing.T, c *http.Client, base, name string) {
	t.Helper()
	post(t, c, base+"/reserve", url.Values{"name": {name}, "slot": {"09:00"}})
}

// admit polls for c until it gets the form: its next counted poll, a refresh interval at most.
func admit(t *testing.T, c *http.Client, base string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(get(t, c, base+"/"), "Book your vaccination"); {
		if time.Now().After(deadline) {
			t.Fatal("a visitor was not let in after a booking freed the place")
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// evaluate evaluates the JavaScript expression js in ctx's page, awaiting it if a promise.
func evaluate[T any](t *testing.T, ctx context.Context, what, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// waitFor polls the JavaScript condition until it holds, for at most d.
func waitFor(cond string, d time.Duration) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Poll[bool](cond, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(d))(ctx, t)
		return err
	})
}

// viewport makes the page w by h CSS pixels, as a phone's when narrow.
func viewport(w, h int64) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
			Width: w, Height: h, DeviceScaleFactor: 1, Mobile: w < 600})
		return err
	})
}

// headers adds h to every request of the tab, its fetches included.
func headers(h network.Headers) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: h})
		return err
	})
}

// noSeriousViolations runs axe-core's WCAG 2.2 A and AA rules on the page: none serious or
// critical may fail.
func noSeriousViolations(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	axe, err := os.ReadFile("testdata/axe-core/axe.min.js")
	if err != nil {
		t.Fatal(err)
	}
	type violation struct {
		ID, Impact, Help string
		Nodes            []string
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](string(axe)+";0")); err != nil {
		t.Fatalf("loading axe on %s: %v", page, err)
	}
	found, err := chromedp.Run(ctx, chromedp.Evaluate[[]violation](`axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']}})
			.then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.html)})))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("axe on %s: %v", page, err)
	}
	for _, v := range found {
		if v.Impact == "serious" || v.Impact == "critical" {
			t.Errorf("axe on %s: %s (%s): %s, at %q", page, v.ID, v.Impact, v.Help, v.Nodes)
		} else {
			t.Logf("axe on %s, %s: %s (%s)", page, v.Impact, v.ID, v.Help)
		}
	}
}

// noHorizontalScroll checks the page at 320 CSS pixels wide, what a 1280-pixel window
// shows at 400 % zoom and a 640-pixel one at 200 %: nothing may need a sideways scroll.
func noHorizontalScroll(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	err := chromedp.Do(ctx, viewport(320, 640), chromedp.Sleep(200*time.Millisecond))
	var over bool
	if err == nil {
		over, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > document.documentElement.clientWidth`))
	}
	if err != nil || over {
		t.Errorf("%s at 320 px: scrolls sideways %v (%v)", page, over, err)
	}
}

func screenshot(t *testing.T, ctx context.Context, file string, w, h int64) {
	t.Helper()
	err := chromedp.Do(ctx, viewport(w, h), chromedp.Sleep(300*time.Millisecond)) // a frame with the new size
	var png []byte
	if err == nil {
		png, err = chromedp.Run(ctx, chromedp.CaptureScreenshot())
	}
	if err != nil {
		t.Fatalf("screenshot %s: %v", file, err)
	}
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func findChromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("WAITINGROOM_BROWSER") == "required" {
		t.Fatal("no Chromium: install Debian's chromium (apt-get install chromium) or set CHROMIUM")
	}
	t.Skip("no Chromium (apt-get install chromium, or set CHROMIUM=path); WAITINGROOM_BROWSER=required makes this a failure")
	return ""
}

// The booking example, built once for every test.
var example struct {
	once sync.Once
	dir  string // a temporary directory, removed by TestMain
	bin  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if example.dir != "" {
		os.RemoveAll(example.dir)
	}
	os.Exit(code)
}

// startExample builds and starts the booking example on a free port with one place, a
// 10-second session (the shortest a room takes) and a 2-second refresh, args changing
// these or adding to them (the last of a flag given twice counts). It returns its URL and
// stop, which ends the process (at the test's end too, if not called before).
func startExample(t *testing.T, args ...string) (base string, stop func()) {
	t.Helper()
	example.once.Do(func() {
		if example.dir, example.err = os.MkdirTemp("", "booking"); example.err != nil {
			return
		}
		example.bin = filepath.Join(example.dir, "booking")
		build := exec.Command("go", "build", "-o", example.bin, "./examples/booking")
		build.Dir = ".."
		if out, err := build.CombinedOutput(); err != nil {
			example.err = fmt.Errorf("go build ./examples/booking: %v\n%s", err, out)
		}
	})
	if example.err != nil {
		t.Fatal(example.err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(example.bin, append([]string{"-addr", addr, "-total-active", "1", "-new-per-minute", "30",
		"-allow-rate-above-capacity", "-session", "10s", "-refresh", "2s", "-typical-session", "20s"}, args...)...)
	cmd.Env = append(os.Environ(), "WAITINGROOM_KEY=")
	var log syncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("the example's log (%s):\n%s", strings.Join(args, " "), log.String())
		}
	})
	base = "http://" + addr
	for deadline := time.Now().Add(10 * time.Second); ; {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base, stop
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the example did not start:\n%s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// visitor is a plain HTTP client with cookies, another person in the queue.
func visitor(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 5 * time.Second}
}

func get(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return b.String()
}

func post(t *testing.T, c *http.Client, u string, form url.Values) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(b.String(), "booked for") {
		t.Fatalf("POST %s: %d %s", u, resp.StatusCode, b.String())
	}
}
