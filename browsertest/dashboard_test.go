package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/admin"
	"github.com/waitingroom-go/waitingroom/estimate"
	"github.com/waitingroom-go/waitingroom/middleware"
	"github.com/waitingroom-go/waitingroom/rooms"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/memory"
)

// TestDashboardInABrowser is an operator's morning: log in through the form, watch the
// waiting count rise on the overview and on the room's page while a crowd joins through
// the protected site, try a higher capacity in the settings form and see the forecast
// follow, save it, and see the room run by it; then tell the queue a Japanese message and a
// count of slots, which a waiter's next poll says, and see the room marked sold out when
// the host takes the last slot. The README shows dashboard-1280x800.png and
// dashboard-390x844.png (docs/dashboard-desktop.png, docs/dashboard-phone.png).
func TestDashboardInABrowser(t *testing.T) {
	t.Parallel()
	chromium := findChromium(t)
	shots := os.Getenv("WAITINGROOM_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	d := startDashboard(t)
	browser := newBrowser(t, chromium, 120*time.Second)
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(browser, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	// A page asks for a login first, and comes back after it.
	run("the login form", viewport(1280, 800), chromedp.Navigate(d.admin+"/dashboard/rooms/booking"), chromedp.WaitVisible("#secret"))
	noSeriousViolations(t, browser, "the login page")
	bigTargets(t, browser, "the login page")
	run("logging in",
		viewport(1280, 800),
		chromedp.SendKeys("#secret", opsSecret),
		chromedp.Submit("#secret"),
		chromedp.WaitVisible("#figures"),
	)
	run("the overview", chromedp.Navigate(d.admin+"/dashboard/"), chromedp.WaitVisible("#rooms"))
	cell := func(room, k string) string {
		return fmt.Sprintf(`(document.querySelector('tr[data-id="%s"] [data-k="%s"]') || {}).textContent`, room, k)
	}
	if first := evaluate[string](t, browser, "the first row", `document.querySelector('#rooms tbody tr').dataset.id`); first != "city-042" {
		t.Errorf("the busiest room is not first: %s", first)
	}

	// The crowd comes through the site; the overview follows within 2 seconds.
	waiting := d.waiting(t)
	for range 3 {
		d.join(t, 40)
		waiting += 40
		run("the overview follows the crowd", waitFor(fmt.Sprintf(`%s === %q`, cell("booking", "waiting"), thousands(waiting)), 2500*time.Millisecond))
	}
	if got := d.waiting(t); got != waiting {
		t.Fatalf("the room counts %d waiting, the test %d", got, waiting)
	}
	noSeriousViolations(t, browser, "the overview")
	run("live", waitFor(live, 2*time.Second))
	screenshot(t, browser, filepath.Join(shots, "dashboard-overview-1280x800.png"), 1280, 800)
	screenshot(t, browser, filepath.Join(shots, "dashboard-overview-390x844.png"), 390, 844)
	noHorizontalScroll(t, browser, "the overview")
	bigTargets(t, browser, "the overview")

	// The room's page, live too.
	run("the room page", viewport(1280, 800), chromedp.Navigate(d.admin+"/dashboard/rooms/booking"), chromedp.WaitVisible("#figures"))
	d.join(t, 20)
	waiting += 20
	run("the room page follows the crowd", waitFor(fmt.Sprintf(`document.querySelector('#figures [data-k="waiting"]').textContent === %q`, thousands(waiting)), 2500*time.Millisecond))
	if n := evaluate[int](t, browser, "the chart", `document.querySelectorAll('#chart circle.point').length`); n != 60 {
		t.Errorf("the chart has %d points, want one a minute for an hour", n)
	}

	// A higher capacity in the form: the forecast follows as it is typed, before saving.
	cfg := d.room.Config()
	want := forecast(t, cfg, waiting, 200)
	before := evaluate[string](t, browser, "the forecast", `document.querySelector('#forecast [data-drain-seconds]').dataset.drainSeconds`)
	if before == want || before != forecast(t, cfg, waiting, cfg.TotalActiveUsers) {
		t.Fatalf("the forecast before: %s s, want %s (and not %s)", before, forecast(t, cfg, waiting, cfg.TotalActiveUsers), want)
	}
	run("typing a capacity",
		chromedp.Clear("#f-total_active_users"),
		chromedp.SendKeys("#f-total_active_users", "200"),
		waitFor(fmt.Sprintf(`(document.querySelector('#forecast [data-drain-seconds]') || {dataset: {}}).dataset.drainSeconds === %q`, want), 3*time.Second),
	)
	if v := d.room.Config().TotalActiveUsers; v != cfg.TotalActiveUsers {
		t.Fatalf("typing changed the room: capacity %d", v)
	}
	noSeriousViolations(t, browser, "the room page")
	run("live", waitFor(live, 2*time.Second))
	screenshot(t, browser, filepath.Join(shots, "dashboard-room-1280x800.png"), 1280, 800)
	screenshot(t, browser, filepath.Join(shots, "dashboard-room-390x844.png"), 390, 844)
	run("saving",
		viewport(1280, 800),
		chromedp.Click("#save"),
		chromedp.WaitVisible(".flash"),
		waitFor(`document.querySelector('#figures [data-k="capacity"]').textContent === '200'`, 2*time.Second),
	)
	if got := d.room.Config().TotalActiveUsers; got != 200 {
		t.Errorf("the room's capacity after saving: %d", got)
	}
	if flash := evaluate[string](t, browser, "the message", `document.querySelector('.flash').textContent`); !strings.HasPrefix(flash, "Saved: the room runs by version 2") {
		t.Errorf("after saving: %q", flash)
	}
	noHorizontalScroll(t, browser, "the room page")
	bigTargets(t, browser, "the room page")
	// A state button asks first; Cancel leaves the room as it was.
	run("the confirmation", chromedp.Click(".action-suspend"), chromedp.WaitVisible(".confirm"))
	noSeriousViolations(t, browser, "the confirmation")
	bigTargets(t, browser, "the confirmation")
	run("cancelling", viewport(1280, 800), chromedp.Click(".confirm a.secondary"), chromedp.WaitVisible("#figures"))
	if d.room.Config().Suspended {
		t.Error("the confirmation page suspended the room")
	}
	// The README's pair: the room on a desktop, the overview on a phone.
	for from, to := range map[string]string{"dashboard-room-1280x800.png": "dashboard-1280x800.png", "dashboard-overview-390x844.png": "dashboard-390x844.png"} {
		if b, err := os.ReadFile(filepath.Join(shots, from)); err != nil || os.WriteFile(filepath.Join(shots, to), b, 0o644) != nil {
			t.Errorf("copying %s: %v", from, err)
		}
	}

	// Without JavaScript: the overview reloads itself, and the form's Preview shows the
	// forecast of what was typed without saving it.
	run("scripts off",
		viewport(1280, 800),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
			return err
		}),
		chromedp.Navigate(d.admin+"/dashboard/rooms/booking"),
		chromedp.WaitVisible("#preview"),
		chromedp.Clear("#f-new_users_per_minute"),
		chromedp.SendKeys("#f-new_users_per_minute", "50"),
	)
	if resp, err := chromedp.RunResponse(browser, chromedp.Click("#preview")); err != nil || resp.Status != 200 || !strings.Contains(resp.URL, "preview=1") {
		t.Fatalf("the preview: %v %v", resp, err)
	}
	cfg = d.room.Config()
	cfg.NewUsersPerMinute = 50
	if got := evaluate[string](t, browser, "the preview", `document.querySelector('#forecast [data-drain-seconds]').getAttribute('data-drain-seconds')`); got != forecast(t, cfg, waiting, 200) {
		t.Errorf("the preview's forecast: %s s, want %s", got, forecast(t, cfg, waiting, 200))
	}
	if got := d.room.Config().NewUsersPerMinute; got == 50 {
		t.Error("the preview saved the rate")
	}

	// Speaking to the queue, still without JavaScript: a waiter is in the queue; the
	// operator sets a Japanese message, closing when sold out, and corrects the count of
	// slots the host keeps.
	waiter := visitor(t)
	if st := status(t, waiter, d.site+"/booking/", "ja"); !st.InWaitingRoom || st.Message != "" || st.SlotsRemaining == nil || *st.SlotsRemaining != 340 {
		t.Fatalf("the waiter before anything is said: %+v", st)
	}
	const ja = "本日の予約枠は残りわずかです。"
	run("the message form", chromedp.Navigate(d.admin+"/dashboard/rooms/booking"), chromedp.WaitVisible("#m-ja"),
		chromedp.SendKeys("#m-ja", ja), chromedp.Click("#f-close_when_sold_out"))
	if resp, err := chromedp.RunResponse(browser, chromedp.Click("#save-message")); err != nil || resp.Status != 200 || !strings.Contains(resp.URL, "done=message") {
		t.Fatalf("saving the message: %v %v", resp, err)
	}
	if cfg := d.room.Config(); cfg.Messages["ja"] != ja || len(cfg.Messages) != 1 || !cfg.CloseWhenSoldOut {
		t.Errorf("after saving the message: %q, close when sold out %t", cfg.Messages, cfg.CloseWhenSoldOut)
	}
	run("the slots form", chromedp.SendKeys("#f-remaining", "25"))
	if resp, err := chromedp.RunResponse(browser, chromedp.Click("#set-slots")); err != nil || resp.Status != 200 || !strings.Contains(resp.URL, "done=slots&n=25") {
		t.Fatalf("setting the slots: %v %v", resp, err)
	}
	if s, err := d.room.Snapshot(context.Background()); err != nil || s.Slots != 25 {
		t.Errorf("slots after the form: %d %v", s.Slots, err)
	}
	// The waiter's next poll says both.
	if st := status(t, waiter, d.site+"/booking/", "ja"); !st.InWaitingRoom || st.Message != ja || st.SlotsRemaining == nil || *st.SlotsRemaining != 25 {
		t.Errorf("the waiter's next poll: %+v", st)
	}

	// With JavaScript: the page follows the host's count and another operator's message.
	run("scripts on",
		viewport(1280, 800),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: false})
			return err
		}),
		chromedp.Navigate(d.admin+"/dashboard/rooms/booking"),
		chromedp.WaitVisible("#said"),
		waitFor(live, 2*time.Second),
	)
	if err := d.room.SetSlots(context.Background(), 0); err != nil { // the host sold the last one
		t.Fatal(err)
	}
	run("sold out", waitFor(`document.querySelector('#room .badge').textContent === 'Sold out' && `+
		`document.querySelector('#figures [data-k="slots_note"]').textContent === 'closed to newcomers'`, 2500*time.Millisecond))
	cfg = d.room.Config()
	cfg.Messages["en"] = "Every slot of today is taken."
	if _, _, err := d.reg.Put(context.Background(), "booking", cfg, d.room.Version(), store.Change{By: "alice", What: "patch"}); err != nil {
		t.Fatal(err)
	}
	run("another operator's message", waitFor(`document.getElementById('said').textContent.includes('Every slot of today is taken.') && `+
		`!document.querySelector('#message-form [data-stale]').hidden`, 2500*time.Millisecond))
	if lang := evaluate[string](t, browser, "the message's language", `document.querySelector('#said dd[lang=ja]').textContent`); lang != ja {
		t.Errorf("the Japanese message on the page: %q", lang)
	}
	noSeriousViolations(t, browser, "the sold-out room")
	run("the speak card", chromedp.ScrollIntoView("#speak"))
	screenshot(t, browser, filepath.Join(shots, "dashboard-speak-390x844.png"), 390, 844)
	// A newcomer now gets no place; the waiter keeps theirs and hears it.
	if st := status(t, visitor(t), d.site+"/booking/", "en"); !st.SoldOut || st.Message != "Every slot of today is taken." {
		t.Errorf("a newcomer once sold out: %+v", st)
	}
	if st := status(t, waiter, d.site+"/booking/", "ja"); !st.InWaitingRoom || st.SlotsRemaining == nil || *st.SlotsRemaining != 0 || st.Message != ja {
		t.Errorf("the waiter once sold out: %+v", st)
	}
}

// status is the JSON status c gets from the protected site's u, in language lang.
func status(t *testing.T, c *http.Client, u, lang string) middleware.CloudflareStatus {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Accept-Language", lang)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Room middleware.CloudflareStatus `json:"cfWaitingRoom"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("GET %s: %d, not a status: %v", u, resp.StatusCode, err)
	}
	return body.Room
}

// bigTargets checks, on a phone's screen, that every link, button and field the page
// shows is at least 44 by 44 CSS pixels.
func bigTargets(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	if err := chromedp.Do(ctx, viewport(390, 844), chromedp.Sleep(200*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	small := evaluate[[]string](t, ctx, "the tap targets", `Array.from(document.querySelectorAll('a, button, input:not([type=hidden]), summary, select, textarea'))
		.filter(e => e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden')
		.map(e => [e, e.getBoundingClientRect()])
		.filter(([e, r]) => r.width < 44 || r.height < 44)
		.map(([e, r]) => e.outerHTML.slice(0, 80) + ': ' + Math.round(r.width) + 'x' + Math.round(r.height))`)
	for _, s := range small {
		t.Errorf("%s at 390 px: a small target: %s", page, s)
	}
}

// live holds when the page's script has its figures.
const live = `document.getElementById('live-status').classList.contains('on')`

const opsSecret = "ops-secret-for-the-browser-0123456789"

// dashboardSite is the admin handler and a protected site on one memory store, with room
// "booking" (the one the operator watches) among others.
type dashboardSite struct {
	admin, site string
	room        *waitingroom.Room
	reg         *rooms.Registry
	client      *http.Client
}

func startDashboard(t *testing.T) *dashboardSite {
	t.Helper()
	st := memory.New()
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "the booking form") })
	reg, err := rooms.NewRegistry(st, rooms.WithHandler(func(r *waitingroom.Room) http.Handler {
		return middleware.Protect(r, app, middleware.WithoutJoinLimit()) // the crowd comes from one address
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now().Truncate(time.Minute)
	rng := rand.New(rand.NewPCG(1, 2)) // the same pictures every run
	// Other rooms, for a realistic overview: quiet ones and busy ones, one queueing
	// everyone, one suspended. city-042 is the busiest before the crowd comes.
	for i, n := range []int{0, 12, 0, 180, 3, 0, 57, 0, 21, 0, 1, 160} {
		id := fmt.Sprintf("city-%03d", []int{1, 2, 3, 5, 7, 8, 11, 13, 17, 23, 31, 42}[i])
		cfg := waitingroom.Config{TotalActiveUsers: 100, NewUsersPerMinute: 50, TypicalSession: 4 * time.Minute}
		switch id {
		case "city-042":
			cfg.TotalActiveUsers, cfg.NewUsersPerMinute = 200, 100
			n += 200
		case "city-013":
			cfg.QueueAll = true
		case "city-023":
			cfg.Suspended = true
		case "city-005":
			cfg.CloseWhenSoldOut = true
		}
		rm, _, err := reg.Put(ctx, id, cfg, 0, store.Change{By: "code", What: "create"})
		if err != nil {
			t.Fatal(err)
		}
		for range n {
			if _, err := rm.Enter(ctx, ""); err != nil {
				t.Fatal(err)
			}
		}
		// Some count their slots: city-005 has none left and closes to newcomers.
		if slots, ok := map[string]int64{"city-005": 0, "city-042": 37, "city-011": 412}[id]; ok {
			if err := rm.SetSlots(ctx, slots); err != nil {
				t.Fatal(err)
			}
		}
	}
	room, _, err := reg.Put(ctx, "booking", waitingroom.Config{TotalActiveUsers: 120, NewUsersPerMinute: 60, TypicalSession: 3 * time.Minute},
		0, store.Change{By: "code", What: "create"})
	if err != nil {
		t.Fatal(err)
	}
	if err := room.SetSlots(ctx, 340); err != nil { // the morning's appointments
		t.Fatal(err)
	}
	// An hour of a morning rush, as the instances recorded it.
	for m := 60; m >= 1; m-- {
		start := now.Add(-time.Duration(m) * time.Minute)
		rush := 60 - m
		peak := int64(max(0, 25*rush-rush*rush/3+rng.IntN(40)))
		if err := st.Record(ctx, "booking", store.Minute{Start: start, Joins: int64(40 + rush*3 + rng.IntN(20)),
			Admissions: int64(min(60, 20+rush+rng.IntN(15))), PeakWaiting: peak, PeakActive: 120, Waiting: peak * 9 / 10,
			WaitingAt: start.Add(55 * time.Second), LongestWait: time.Duration(rush) * 20 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	h, err := admin.New(reg, st, admin.WithTokens(admin.Token{Name: "ops", Secret: opsSecret, Scope: admin.ReadWrite}),
		admin.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	adminSrv := httptest.NewServer(h)
	t.Cleanup(adminSrv.Close)
	siteSrv := httptest.NewServer(reg)
	t.Cleanup(siteSrv.Close)
	watch, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	go reg.Watch(watch, 0)
	d := &dashboardSite{admin: adminSrv.URL, site: siteSrv.URL, room: room, reg: reg, client: &http.Client{Timeout: 5 * time.Second}}
	d.join(t, 130) // 60 go in at once, as the rate allows; 70 wait (nobody polls, so they keep waiting)
	return d
}

// join brings n new visitors to the site, each without a cookie: n places.
func (d *dashboardSite) join(t *testing.T, n int) {
	t.Helper()
	for range n {
		resp, err := d.client.Get(d.site + "/booking/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("a join: %d", resp.StatusCode)
		}
	}
}

// waiting is how many wait in the room, as its store says.
func (d *dashboardSite) waiting(t *testing.T) int {
	t.Helper()
	s, err := d.room.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int(s.Waiting)
}

// forecast is how long, in seconds as the page writes it, the planner says waiting people
// take to go through cfg's room with capacity total.
func forecast(t *testing.T, cfg waitingroom.Config, waiting, total int) string {
	t.Helper()
	f, err := estimate.Plan(estimate.Scenario{Arrivals: waiting, TotalActiveUsers: total, NewUsersPerMinute: cfg.NewUsersPerMinute,
		Session: cfg.TypicalSession, RefreshInterval: cfg.RefreshInterval, QueueHold: cfg.QueueHold, ArrivalGrace: cfg.ArrivalGrace})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(f.Drain.Seconds())
}

// thousands writes n as the dashboard does: 1,234.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
