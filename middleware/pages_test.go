package middleware_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/language"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/middleware"
)

func TestCatalog(t *testing.T) {
	c := middleware.DefaultCatalog()
	for _, tt := range []struct {
		name   string
		target string
		cookie string
		accept string
		want   language.Tag
	}{
		{"default", "/", "", "", language.English},
		{"accept ja", "/", "", "ja-JP,ja;q=0.9,en;q=0.8", language.Japanese},
		{"accept zh-CN", "/", "", "zh-CN,zh;q=0.9", language.SimplifiedChinese},
		{"accept zh-TW is not Simplified", "/", "", "zh-TW", language.English},
		{"accept fr then ja", "/", "", "fr-FR,fr;q=0.9,ja;q=0.5", language.Japanese},
		{"unknown", "/", "", "fr", language.English},
		{"query overrides", "/?lang=ja", "zh-Hans", "zh-CN", language.Japanese},
		{"cookie overrides accept", "/", "zh-Hans", "ja", language.SimplifiedChinese},
		{"bad query ignored", "/?lang=%%%", "", "ja", language.Japanese},
		{"unsupported query ignored", "/?lang=fr", "", "ja", language.Japanese},
		{"malformed header", "/", "", ";;;q=x", language.English},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tt.target, nil)
			if tt.cookie != "" {
				r.AddCookie(&http.Cookie{Name: "wr_lang", Value: tt.cookie})
			}
			if tt.accept != "" {
				r.Header.Set("Accept-Language", tt.accept)
			}
			if got := c.Pick(r).Tag; got != tt.want {
				t.Errorf("Pick = %v, want %v", got, tt.want)
			}
		})
	}

	incomplete := middleware.English
	incomplete.Turn = ""
	if _, err := middleware.NewCatalog(incomplete); !errors.Is(err, middleware.ErrCatalog) || !strings.Contains(err.Error(), "Turn") {
		t.Errorf("a missing text: %v", err)
	}
	if _, err := middleware.NewCatalog(middleware.English, middleware.English); !errors.Is(err, middleware.ErrCatalog) {
		t.Errorf("a language twice: %v", err)
	}
	if _, err := middleware.NewCatalog(); !errors.Is(err, middleware.ErrCatalog) {
		t.Errorf("no languages: %v", err)
	}
	site := middleware.Japanese
	site.Site = "予約"
	if c, err := middleware.NewCatalog(middleware.English, site); err != nil || c.Languages()[1].Site != "予約" || middleware.Japanese.Site != "" {
		t.Errorf("a copy with a site name: %v", err)
	}
}

// fullRoom returns a handler behind a room whose one place is taken, and a waiting visitor.
func fullRoom(t *testing.T, e *env, cfg waitingroom.Config, opts ...middleware.Option) (http.Handler, *visitor) {
	t.Helper()
	h := e.protect(e.room("r", cfg), &app{}, opts...)
	var first, v visitor
	first.get(h, "/")
	v.get(h, "/")
	return h, &v
}

func TestBuiltInWaitingPage(t *testing.T) {
	e := newEnv(t)
	h, v := fullRoom(t, e, oneAtATime(), middleware.WithPages(middleware.Pages{
		Location: time.UTC,
		Announce: func(*http.Request) middleware.Announcement {
			return middleware.Announcement{Message: "Second doses from 1 December.", SlotsLeft: 42, ShowSlots: true}
		},
	}))
	resp := v.get(h, "/?lang=ja", func(r *http.Request) { r.Header.Set("Accept-Language", "en") })
	page := resp.body
	for _, want := range []string{`<html lang="ja">`, `<h1 id="wr-heading">順番にご案内しています</h1>`, `id="wr-ahead">次はあなたの番です<`,
		`aria-live="polite"`, "Second doses from 1 December.", "残り42枠", `<noscript><meta http-equiv="refresh" content="20"></noscript>`,
		`href="/?lang=en"`, `aria-current="true">日本語`} {
		if !strings.Contains(resp.body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(resp.body, "http://") || strings.Contains(resp.body, "https://") || strings.Contains(resp.body, " src=") {
		t.Errorf("the page loads something from elsewhere")
	}
	csp := resp.Header.Get("Content-Security-Policy")
	m := regexp.MustCompile(`script-src 'nonce-([A-Za-z0-9_-]+)'`).FindStringSubmatch(csp)
	if m == nil || !strings.Contains(resp.body, `<script nonce="`+m[1]+`">`) || !strings.Contains(resp.body, `<style nonce="`+m[1]+`">`) {
		t.Errorf("policy %q does not allow the page's own script and style", csp)
	}
	if c := lastCookie(resp, "wr_lang"); c == nil || c.Value != "ja" {
		t.Errorf("the chosen language is not kept: %v", resp.Header.Values("Set-Cookie"))
	}
	// The choice is kept for the page's polls.
	resp = v.get(h, "/", accept("application/json"), func(r *http.Request) { r.Header.Set(middleware.PageHeader, "texts") })
	var doc struct {
		Room map[string]any `json:"cfWaitingRoom"`
		Page map[string]any `json:"waitingRoomPage"`
	}
	if err := json.Unmarshal([]byte(resp.body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Page["heading"] != "順番にご案内しています" || doc.Page["slots"] != "残り42枠" || doc.Room["message"] != "Second doses from 1 December." ||
		doc.Room["slotsLeft"] != 42.0 || doc.Room["usersAhead"] != 0.0 {
		t.Errorf("JSON with the page's texts: %s", resp.body)
	}
	// The site's message is said through the page's one live region, which is always there:
	// its own box is hidden until there is a message, and a live region that appears with
	// its text is not announced. The script says announceMessage when the message changes.
	if doc.Page["announceMessage"] != "サイトからのお知らせ: Second doses from 1 December." ||
		strings.Contains(doc.Page["announce"].(string), "Second doses") {
		t.Errorf("the message for screen readers: announceMessage %q, announce %q", doc.Page["announceMessage"], doc.Page["announce"])
	}
	if live := regexp.MustCompile(`<[^>]*aria-live[^>]*>`).FindAllString(page, -1); len(live) != 1 ||
		!strings.Contains(live[0], `id="wr-announce"`) || strings.Contains(live[0], "hidden") {
		t.Errorf("live regions %q, want #wr-announce alone, not hidden", live)
	}
	// Without the header, the hosted rooms' object alone.
	resp = v.get(h, "/", accept("application/json"))
	if strings.Contains(resp.body, "waitingRoomPage") {
		t.Errorf("texts sent without being asked: %s", resp.body)
	}

	// The host's nonce: no policy of the page's own.
	e2 := newEnv(t)
	h2, v2 := fullRoom(t, e2, oneAtATime(), middleware.WithPages(middleware.Pages{Nonce: func(*http.Request) string { return "host-nonce" }}))
	resp = v2.get(h2, "/")
	if resp.Header.Get("Content-Security-Policy") != "" || !strings.Contains(resp.body, `<script nonce="host-nonce">`) {
		t.Errorf("with the host's nonce: policy %q", resp.Header.Get("Content-Security-Policy"))
	}
}

func TestClosedPage(t *testing.T) {
	e := newEnv(t)
	cfg := oneAtATime()
	cfg.QueueingMethod = waitingroom.Reject
	room := e.room("r", cfg)
	h := e.protect(room, &app{}, middleware.WithPages(middleware.Pages{Location: time.UTC}))
	var v visitor
	resp := v.get(h, "/")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "300" ||
		!strings.Contains(resp.body, `name="viewport"`) || !strings.Contains(resp.body, "Closed for now") || strings.Contains(resp.body, "<noscript>") {
		t.Errorf("closed: %d, Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), resp.body)
	}
	if resp := v.get(h, "/", accept("application/json")); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "300" {
		t.Errorf("closed, JSON: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// An event opens the room later: the page says when, and Retry-After counts to then.
	if err := room.AddEvent(waitingroom.Event{Name: "e", PrequeueStart: t0.Add(90 * time.Minute), Start: t0.Add(2 * time.Hour), End: t0.Add(3 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	resp = v.get(h, "/")
	if resp.Header.Get("Retry-After") != "5400" || !strings.Contains(resp.body, "It opens on Monday 2 March at 10:30 AM.") ||
		!strings.Contains(resp.body, `"reopen":5401`) {
		t.Errorf("closed until an event: Retry-After %q: %s", resp.Header.Get("Retry-After"), resp.body)
	}
}

func TestOutagePage(t *testing.T) {
	e := newEnv(t)
	cfg := oneAtATime()
	cfg.RefreshInterval = 15 * time.Second
	h := e.protect(e.room("r", cfg), &app{})
	e.flaky.err = errors.New("redis down")
	e.flaky.failing.Store(true)
	var v visitor
	resp := v.get(h, "/", func(r *http.Request) { r.Header.Set("Accept-Language", "ja") })
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "15" || !strings.Contains(resp.body, "申し訳ありません") ||
		!strings.Contains(resp.body, `content="15"></noscript>`) || strings.Contains(resp.body, "redis") {
		t.Errorf("outage page: %d, Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), resp.body)
	}
	resp = v.get(h, "/", accept("application/json"))
	st := decodeStatus(t, resp.body)
	if resp.StatusCode != http.StatusServiceUnavailable || st["outage"] != true || st["inWaitingRoom"] != true || st["refreshIntervalSeconds"] != 15.0 {
		t.Errorf("outage JSON: %d %s", resp.StatusCode, resp.body)
	}
	e.takeErrors()

	// Replaced: the host's page, with the status, 503 and Retry-After.
	var seen waitingroom.Status
	h = e.protect(e.room("r2", cfg), &app{}, middleware.WithOutagePage(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = middleware.StatusFromContext(r.Context())
		w.Write([]byte("our own outage page"))
	})))
	resp = v.get(h, "/")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.body != "our own outage page" || resp.Header.Get("Retry-After") != "15" || seen.RefreshInterval != 15*time.Second {
		t.Errorf("custom outage page: %d %q, status %+v", resp.StatusCode, resp.body, seen)
	}
	e.takeErrors()
	_ = context.Background
}

// TestPageStaysOnSite checks that the page moves on, and polls, only within the site,
// whatever the request's path or the form's Referer.
func TestPageStaysOnSite(t *testing.T) {
	e := newEnv(t)
	h, v := fullRoom(t, e, oneAtATime())
	for _, target := range []string{"//evil.example/x", "///evil.example/x"} {
		resp := v.get(h, target)
		if strings.Contains(resp.body, `"next":"//`) || strings.Contains(resp.body, `"next":"/\\`) || !strings.Contains(resp.body, `"next":"/evil.example/x"`) {
			t.Errorf("GET %s: moves on to %s", target, regexp.MustCompile(`"next":"[^"]*"`).FindString(resp.body))
		}
	}
	for ref, want := range map[string]string{
		"http://example.com//evil.example/form": "/evil.example/form",
		"http://elsewhere.example/form":         "/",
		"javascript:alert(1)":                   "/",
	} {
		resp := postAs(h, "", func(r *http.Request) { r.Header.Set("Referer", ref) })
		if !strings.Contains(resp.body, `"next":"`+want+`"`) {
			t.Errorf("POST from %s: moves on to %s, want %s", ref, regexp.MustCompile(`"next":"[^"]*"`).FindString(resp.body), want)
		}
	}
}

// A catalogue written for the previous release lacks the texts this one added: they come
// from the built-in one of its language, or English; any other missing text is refused.
func TestCatalogOfThePreviousRelease(t *testing.T) {
	ja := middleware.Japanese
	ja.NoneLeft, ja.SoldOutTitle, ja.SoldOut = "", "", ""
	de := middleware.English
	de.Tag, de.Name = language.German, "Deutsch"
	de.NoneLeft, de.SoldOutTitle, de.SoldOut = "", "", ""
	c, err := middleware.NewCatalog(ja, de)
	if err != nil {
		t.Fatalf("a catalogue without the new texts: %v", err)
	}
	if got := c.Pick(httptest.NewRequest("GET", "/?lang=ja", nil)); got.SoldOut != middleware.Japanese.SoldOut {
		t.Errorf("Japanese SoldOut %q, want the built-in Japanese one", got.SoldOut)
	}
	if got := c.Pick(httptest.NewRequest("GET", "/?lang=de", nil)); got.SoldOutTitle != middleware.English.SoldOutTitle {
		t.Errorf("German SoldOutTitle %q, want English", got.SoldOutTitle)
	}
	old := middleware.English
	old.Closed = ""
	if _, err := middleware.NewCatalog(old); !errors.Is(err, middleware.ErrCatalog) {
		t.Errorf("a catalogue without Closed: %v, want ErrCatalog", err)
	}
}
