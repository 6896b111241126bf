package browsertest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/middleware"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/memory"
)

// TestSpeakToTheQueueInABrowser walks "speak to the queue" (README) through the built-in
// pages of middleware.Protect, on a memory-store room that holds one visitor and polls
// every second. Two waiters' pages are open, one in English and one in Japanese (by
// ?lang=ja, in an English browser). The operator says an English message and the host
// counts 3 places: within a refresh both pages show them and their live regions say them,
// the Japanese page marking the English message lang="en". A Japanese message follows,
// which the Japanese page shows in place of the English one, without the mark. Then the
// room closes when sold out and the host takes the last places: the waiters' pages say 0
// left and that they keep their place, while a newcomer in a browser context of its own
// gets the sold-out closed page, in English and in Japanese (by Accept-Language), with
// 503, no cookie and no place. axe-core's WCAG rules find nothing serious on the waiting
// pages with the message nor on the sold-out pages, and none scrolls sideways at 320 px.
// With WAITINGROOM_SCREENSHOTS=dir it keeps speak-waiting-{en,ja}-390x844.png,
// speak-waiting-en-1280x800.png, speak-waiting-soldout-en-390x844.png (a waiter once none
// is left), speak-soldout-{en,ja}-390x844.png and speak-soldout-en-1280x800.png there.
func TestSpeakToTheQueueInABrowser(t *testing.T) {
	t.Parallel()
	chromium := findChromium(t)
	shots := os.Getenv("WAITINGROOM_SCREENSHOTS")
	if shots != "" {
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const (
		refresh = time.Second
		// Within a refresh: the page polls a second after its last answer, and the answer
		// has the change; the rest is slack for a busy machine.
		withinRefresh = 3 * time.Second
		enMsg         = "Second doses from 1 December. Bring your vaccination card."
		jaMsg         = "2回目の接種は12月1日からです。接種券をお持ちください。"
		room          = "speak"
	)
	ctx := context.Background()
	rm, err := waitingroom.New(room, memory.New(), waitingroom.Config{
		TotalActiveUsers: 1, NewUsersPerMinute: 1, SessionDuration: 10 * time.Minute,
		RefreshInterval: refresh, TypicalSession: 5 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "the booking form") })
	srv := httptest.NewServer(middleware.Protect(rm, app))
	t.Cleanup(srv.Close)
	base := srv.URL

	browser := newBrowser(t, chromium, 120*time.Second)
	run := func(tab context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(tab, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	type shown struct {
		Heading, Ahead, Message, MessageLang, Slots, Note, Announce string
		MessageShown, SlotsShown, NoteShown                         bool
	}
	const readPage = `(function () {
		var el = function (id) { return document.getElementById('wr-' + id) || {textContent: '', hidden: true, getAttribute: () => null}; };
		return {heading: el('heading').textContent, ahead: el('ahead').textContent,
			message: el('message').textContent, messageLang: el('message').getAttribute('lang') || '',
			messageShown: !el('message-box').hidden, slots: el('slots').textContent, slotsShown: !el('slots').hidden,
			note: el('note').textContent, noteShown: !el('note').hidden, announce: el('announce').textContent};
	})()`
	read := func(tab context.Context, what string) shown {
		t.Helper()
		return evaluate[shown](t, tab, what, readPage)
	}
	// js quotes s as a JavaScript string.
	js := func(s string) string { return fmt.Sprintf("%q", s) }

	// Alice is in, and holds the room's one place for ten minutes.
	alice := visitor(t)
	if body := get(t, alice, base+"/"); body != "the booking form" {
		t.Fatalf("alice: %q", body)
	}
	// The English waiter, next in the queue, and the Japanese one behind: ?lang=ja in a
	// browser that asks for English.
	en := browser
	run(en, "the English waiting page",
		recordAnnouncements(),
		viewport(390, 844),
		headers(network.Headers{"Accept-Language": "en-GB,en;q=0.9"}),
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible("#wr-heading"),
	)
	ja, cancelJa := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	defer cancelJa()
	run(ja, "the Japanese waiting page",
		recordAnnouncements(),
		viewport(390, 844),
		headers(network.Headers{"Accept-Language": "en-GB,en;q=0.9"}),
		chromedp.Navigate(base+"/?lang=ja"),
		chromedp.WaitVisible("#wr-heading"),
	)
	if p := read(en, "the English page"); p.Heading != "You are in the queue" || p.Ahead != "You are next" || p.MessageShown || p.SlotsShown || p.NoteShown {
		t.Fatalf("the English waiter before anything is said: %+v", p)
	}
	if p := read(ja, "the Japanese page"); p.Heading != "順番にご案内しています" || p.Ahead != "1人" || p.MessageShown || p.SlotsShown || p.NoteShown {
		t.Fatalf("the Japanese waiter before anything is said: %+v", p)
	}
	if lang := evaluate[string](t, ja, "the page's language", `document.documentElement.lang`); lang != "ja" {
		t.Fatalf("?lang=ja gives a page in %q", lang)
	}

	// 1. The operator says a message in English only, and the host counts 3 places.
	cfg := rm.Config()
	cfg.Messages = map[string]string{"en": enMsg}
	if _, err := rm.Update(ctx, cfg, rm.Version(), store.Change{By: "operator", What: "message"}); err != nil {
		t.Fatal(err)
	}
	if err := rm.SetSlots(ctx, 3); err != nil {
		t.Fatal(err)
	}
	said := time.Now()
	run(en, "the English page shows the message and the count within a refresh",
		waitFor(`(function (p) { return p.messageShown && p.message === `+js(enMsg)+` && p.slotsShown && p.slots === '3 places left'; })(`+readPage+`)`, withinRefresh))
	t.Logf("the English page showed the message and the count %v after they were set (refresh %v)", time.Since(said).Round(10*time.Millisecond), refresh)
	run(ja, "the Japanese page shows the message and the count within a refresh",
		waitFor(`(function (p) { return p.messageShown && p.message === `+js(enMsg)+` && p.slots === '残り3枠'; })(`+readPage+`)`, withinRefresh))
	t.Logf("the Japanese page too, %v after", time.Since(said).Round(10*time.Millisecond))
	// What the live regions say: the count with the queue, and the message once.
	run(en, "the English live region", waitFor(`document.getElementById('wr-announce').textContent.includes('3 places left')`, time.Second))
	run(ja, "the Japanese live region", waitFor(`document.getElementById('wr-announce').textContent.includes('残り3枠')`, time.Second))
	if p := read(en, "the English page"); p.MessageLang != "" || !strings.Contains(p.Announce, "Message from the site: "+enMsg) || p.NoteShown {
		t.Errorf("the English page with an English message: %+v (want no lang on the message, the message said, no note)", p)
	}
	if p := read(ja, "the Japanese page"); p.MessageLang != "en" || !strings.Contains(p.Announce, "サイトからのお知らせ: "+enMsg) || p.NoteShown {
		t.Errorf("the Japanese page with only an English message: %+v (want lang=\"en\" on the message, the message said, no note)", p)
	}
	// The live region says the English message in English on the Japanese page, and the
	// count as a sentence of its own.
	run(ja, "the Japanese live region marks the English message's language",
		waitFor(`(function (s) { return !!s && s.textContent.includes(`+js(enMsg)+`); })(document.querySelector('#wr-announce span[lang="en"]'))`, time.Second))
	if a := read(en, "the English page").Announce; !strings.Contains(a, "3 places left. Message from the site") {
		t.Errorf("the English live region runs the count into the message: %q", a)
	}
	// The attribute is in the DOM, on the element that holds the text.
	if lang := evaluate[string](t, ja, "the message's lang", `document.querySelector('#wr-message[lang="en"]') ? document.querySelector('#wr-message[lang="en"]').textContent : ''`); lang != enMsg {
		t.Errorf(`#wr-message[lang="en"] on the Japanese page: %q`, lang)
	}
	noSeriousViolations(t, en, "the English waiting page with a message")
	noSeriousViolations(t, ja, "the Japanese waiting page with an English message")
	if shots != "" {
		screenshot(t, en, filepath.Join(shots, "speak-waiting-en-390x844.png"), 390, 844)
		screenshot(t, en, filepath.Join(shots, "speak-waiting-en-1280x800.png"), 1280, 800)
	}
	noHorizontalScroll(t, en, "the English waiting page with a message")
	noHorizontalScroll(t, ja, "the Japanese waiting page with an English message")

	// A Japanese message too: the Japanese page shows it instead, in its own language; the
	// English page goes on with the English one.
	cfg = rm.Config()
	cfg.Messages = map[string]string{"en": enMsg, "ja": jaMsg}
	if _, err := rm.Update(ctx, cfg, rm.Version(), store.Change{By: "operator", What: "message"}); err != nil {
		t.Fatal(err)
	}
	said = time.Now()
	run(ja, "the Japanese page shows the Japanese message within a refresh",
		waitFor(`(function (p) { return p.messageShown && p.message === `+js(jaMsg)+` && p.messageLang === ''; })(`+readPage+`)`, withinRefresh),
		waitFor(`document.getElementById('wr-announce').textContent.includes(`+js("サイトからのお知らせ: "+jaMsg)+`)`, time.Second))
	t.Logf("the Japanese page showed the Japanese message %v after it was set", time.Since(said).Round(10*time.Millisecond))
	noSeriousViolations(t, ja, "the Japanese waiting page with a Japanese message")
	if shots != "" {
		screenshot(t, ja, filepath.Join(shots, "speak-waiting-ja-390x844.png"), 390, 844)
	}
	if p := read(en, "the English page"); p.Message != enMsg || p.MessageLang != "" {
		t.Errorf("the English page once there is a Japanese message too: %+v", p)
	}

	// 2. Sold out: the room closes to newcomers once no place is left, and the host books
	// the last three.
	cfg = rm.Config()
	cfg.CloseWhenSoldOut = true
	if _, err := rm.Update(ctx, cfg, rm.Version(), store.Change{By: "operator", What: "close when sold out"}); err != nil {
		t.Fatal(err)
	}
	if left, err := rm.TakeSlots(ctx, 3); err != nil || left != 0 {
		t.Fatalf("taking the last 3 slots: %d left (%v)", left, err)
	}
	said = time.Now()
	const noneLeftEn = "Every place has been taken. You keep your place in the queue in case some come back (from cancellations, say), but you may not get one."
	const noneLeftJa = "予約枠はすべて埋まりました。キャンセルなどで枠が空く場合に備えて順番はそのまま保たれますが、枠をお取りできない可能性があります。"
	run(en, "the English waiter is told none is left, and keeps the place",
		waitFor(`(function (p) { return p.slots === '0 places left' && p.slotsShown && p.noteShown && p.note === `+js(noneLeftEn)+`; })(`+readPage+`)`, withinRefresh))
	run(ja, "the Japanese waiter is told none is left, and keeps the place",
		waitFor(`(function (p) { return p.slots === '残り0枠' && p.slotsShown && p.noteShown && p.note === `+js(noneLeftJa)+`; })(`+readPage+`)`, withinRefresh))
	t.Logf("both waiters' pages said 0 left %v after the last slots were taken", time.Since(said).Round(10*time.Millisecond))
	// Their live regions say it at once, the note with it: a new state, not a count to say
	// at most every 30 s.
	run(en, "the English live region says none is left",
		waitFor(`document.getElementById('wr-announce').textContent.includes('0 places left. '+`+js(noneLeftEn)+`)`, 2*time.Second))
	run(ja, "the Japanese live region says none is left",
		waitFor(`document.getElementById('wr-announce').textContent.includes('残り0枠。 '+`+js(noneLeftJa)+`)`, 2*time.Second))
	t.Logf("both live regions said it %v after the last slots were taken", time.Since(said).Round(10*time.Millisecond))
	if p := read(en, "the English page"); p.Heading != "You are in the queue" || p.Ahead != "You are next" || p.Message != enMsg || !p.MessageShown {
		t.Errorf("the English waiter, sold out: %+v (want still waiting, next, with the message)", p)
	}
	if p := read(ja, "the Japanese page"); p.Heading != "順番にご案内しています" || p.Ahead != "1人" || p.Message != jaMsg || !p.MessageShown {
		t.Errorf("the Japanese waiter, sold out: %+v (want still waiting, 1 ahead, with the message)", p)
	}
	if shots != "" {
		screenshot(t, en, filepath.Join(shots, "speak-waiting-soldout-en-390x844.png"), 390, 844)
	}

	// A newcomer gets the sold-out page, with no cookie and no place: in a browser context
	// of its own, in English, then in Japanese.
	for _, tt := range []struct {
		lang, heading, intro, message string
	}{
		{"en", "Fully booked", "Every place has been taken, so nobody new can join the queue: waiting would not get you one.", enMsg},
		{"ja", "予約枠はすべて埋まりました", "予約枠がすべて埋まったため、新たに順番待ちに加わることはできません。", jaMsg},
	} {
		tab, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
		defer cancel()
		if err := chromedp.Do(tab, recordAnnouncements(), viewport(390, 844), headers(network.Headers{"Accept-Language": tt.lang})); err != nil {
			t.Fatalf("a newcomer's tab in %s: %v", tt.lang, err)
		}
		resp, err := chromedp.Run(tab, chromedp.NavigateResponse(base+"/"))
		if err != nil {
			t.Fatalf("a newcomer in %s: %v", tt.lang, err)
		}
		if resp.Status != http.StatusServiceUnavailable || resp.Headers["Retry-After"] == nil {
			t.Errorf("a newcomer in %s, sold out: HTTP %d, Retry-After %v; want 503 with Retry-After", tt.lang, resp.Status, resp.Headers["Retry-After"])
		}
		run(tab, "the sold-out page in "+tt.lang, chromedp.WaitVisible("#wr-heading"))
		page := evaluate[map[string]string](t, tab, "the sold-out page", `({lang: document.documentElement.lang, title: document.title,
			heading: document.getElementById('wr-heading').textContent, intro: document.getElementById('wr-intro').textContent,
			message: document.getElementById('wr-message-box').hidden ? '' : document.getElementById('wr-message').textContent,
			messageLang: document.getElementById('wr-message').getAttribute('lang') || '',
			slots: document.getElementById('wr-slots').hidden ? '' : document.getElementById('wr-slots').textContent})`)
		if page["lang"] != tt.lang || page["title"] != tt.heading || page["heading"] != tt.heading || !strings.HasPrefix(page["intro"], tt.intro) ||
			page["message"] != tt.message || page["messageLang"] != "" || page["slots"] != "" {
			t.Errorf("the sold-out page in %s: %q", tt.lang, page)
		}
		cookies, err := chromedp.Call(tab, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cookies.Cookies {
			if strings.HasPrefix(c.Name, "wr_") && c.Name != "wr_lang" {
				t.Errorf("a newcomer in %s given no place got the cookie %s=%s", tt.lang, c.Name, c.Value)
			}
		}
		noSeriousViolations(t, tab, "the sold-out page in "+tt.lang)
		if shots != "" {
			screenshot(t, tab, filepath.Join(shots, "speak-soldout-"+tt.lang+"-390x844.png"), 390, 844)
			if tt.lang == "en" {
				screenshot(t, tab, filepath.Join(shots, "speak-soldout-en-1280x800.png"), 1280, 800)
			}
		}
		noHorizontalScroll(t, tab, "the sold-out page in "+tt.lang)
		// A closed page does not poll: seconds later (axe, the checks), it has not.
		if polls := evaluate[int](t, tab, "the polls", `wrEvents.filter(e => e.kind === 'poll').length`); polls != 0 {
			t.Errorf("the sold-out page in %s polled %d times", tt.lang, polls)
		}
	}
	// The same, as a plain client sees the answer's headers.
	req, err := http.NewRequest("GET", base+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept-Language", "ja")
	resp, err := visitor(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "wr_"+room {
			t.Errorf("a newcomer's answer sets the room's cookie: %s", c.String())
		}
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a newcomer's answer: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Nobody new took a place; the two waiters kept theirs, and their pages are still
	// polling.
	if st, err := rm.Stats(ctx); err != nil || st.Waiting != 2 || st.Active != 1 || st.Slots != 0 {
		t.Errorf("the room after the newcomers: %d waiting, %d active, %d slots (%v); want 2, 1, 0", st.Waiting, st.Active, st.Slots, err)
	}
	for _, tab := range []context.Context{en, ja} {
		polls := evaluate[int](t, tab, "the polls", `wrEvents.filter(e => e.kind === 'poll').length`)
		run(tab, "a waiter's page polls on", waitFor(fmt.Sprintf(`wrEvents.filter(e => e.kind === 'poll').length > %d`, polls), withinRefresh))
	}
	if p := read(en, "the English page"); p.Heading != "You are in the queue" || p.Slots != "0 places left" {
		t.Errorf("the English waiter after the newcomers: %+v", p)
	}

	// What each waiter's live region said, in order: the count with the queue and each
	// message once.
	type event struct{ Kind, Text string }
	for _, w := range []struct {
		name     string
		tab      context.Context
		messages []string
	}{
		{"English", en, []string{"Message from the site: " + enMsg}},
		{"Japanese", ja, []string{"サイトからのお知らせ: " + enMsg, "サイトからのお知らせ: " + jaMsg}},
	} {
		var said []string
		for _, e := range evaluate[[]event](t, w.tab, "the page's events", `wrEvents`) {
			if e.Kind == "say" {
				said = append(said, e.Text)
			}
		}
		all := strings.Join(said, "\n")
		for _, m := range w.messages {
			if n := strings.Count(all, m); n != 1 {
				t.Errorf("the %s live region said %q %d times, want once: %q", w.name, m, n, said)
			}
		}
		t.Logf("the %s live region said: %q", w.name, said)
	}

	// The English waiter reloads: the page, worded on the server, still has the place,
	// the message, 0 left and the note.
	reload, err := chromedp.Run(en, chromedp.NavigateResponse(base+"/"))
	if err != nil || reload.Status != http.StatusOK {
		t.Fatalf("the English waiter's reload: %v (%v)", reload, err)
	}
	if p := read(en, "the reloaded page"); p.Heading != "You are in the queue" || p.Ahead != "You are next" || p.Message != enMsg ||
		!p.MessageShown || p.Slots != "0 places left" || !p.SlotsShown || p.Note != noneLeftEn || !p.NoteShown {
		t.Errorf("the English waiter's page reloaded, sold out: %+v", p)
	}
}
