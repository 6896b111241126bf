// Command booking is a small vaccine-booking backend behind a waiting room.
//
//	go run ./examples/booking
//
// GET / shows the booking form, POST /reserve books a slot and releases the visitor's
// session so the next person can come in, GET /healthz bypasses the room. The pages are in
// English and Japanese (Accept-Language, or ?lang=ja); the waiting pages are the built-in
// ones, which show how many appointments are left and say when none are (Pages.Announce).
//
// Nobody loses a form: the form page keeps its session alive while the person types
// (middleware.KeepaliveScript) and shows the time left with a "keep my session" button. A
// booking sent after the session ended anyway is kept as a draft (middleware.WithKeep) and
// the waiting page says so; when the visitor's turn comes, the form comes back filled in.
// Open the page in a few browsers (or private windows) with -total-active 1 to watch the
// queue.
//
// Several processes share one room through Redis and one signing key:
//
//	export WAITINGROOM_KEY=$(go run ./examples/booking -print-key)
//	go run ./examples/booking -store redis://127.0.0.1:6379/0 -addr 127.0.0.1:8080 &
//	go run ./examples/booking -store redis://127.0.0.1:6379/0 -addr 127.0.0.1:8081
//
// A scheduled event opens the booking at a fixed time. Here the pre-queue opens at once, the
// booking two minutes later (for an hour, the default of -event-end), and those who came
// before the start are let in in a random order, five at a time:
//
//	go run ./examples/booking -prequeue-start 0s -event-start 2m -shuffle -event-total-active 5 -event-new-per-minute 5
//
// -prequeue-start, -event-start and -event-end take an RFC 3339 time (2026-11-26T09:00:00Z)
// or a duration from when the program starts (30s, 5m). Processes that share a room must
// agree on the times to the millisecond, so give them RFC 3339 times.
//
// The room's settings live in the store: the flags seed them the first time, and after
// that what is stored wins (an operator's change through the admin API stands across
// restarts), unless -overwrite says the flags replace it. -admin-addr serves the admin API
// (off by default) on a listener of its own, with the bearer token WAITINGROOM_ADMIN_TOKEN:
//
//	export WAITINGROOM_ADMIN_TOKEN=$(openssl rand -hex 16)
//	go run ./examples/booking -admin-addr 127.0.0.1:9090
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/examples/internal/setup"
	"github.com/waitingroom-go/waitingroom/middleware"
	"github.com/waitingroom-go/waitingroom/notify"
	"github.com/waitingroom-go/waitingroom/rooms"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/token"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "booking:", err)
		os.Exit(2)
	}
}

// helpRequested is -h: the usage, for stdout, and exit status 0.
type helpRequested struct{ usage string }

func (h helpRequested) Error() string { return "help requested" }
func (h helpRequested) Unwrap() error { return flag.ErrHelp }

// options are the command's flags.
type options struct {
	addr      string
	total     int
	perMinute int
	rateAbove bool
	session   time.Duration
	maxSess   time.Duration
	typical   time.Duration
	refresh   time.Duration
	method    waitingroom.Method
	store     string
	adminAddr string
	notifyURL string
	overwrite bool
	// appointments is how many bookings can be made; postGrace is middleware.WithPostGrace.
	appointments int
	postGrace    time.Duration

	// The scheduled event, when eventStart is set.
	prequeueStart, eventStart, eventEnd when
	shuffle                             bool
	eventTotal, eventPerMinute          int
}

// eventName is the name of the event that -event-start schedules.
const eventName = "booking opens"

// defaultEventLength is how long the event lasts without -event-end.
const defaultEventLength = time.Hour

// run is the command; stdout gets -h's usage and -print-key's key, the log gets the rest.
func run(args []string, stdout io.Writer) error {
	o, printKey, err := parseFlags(args)
	var help helpRequested
	if errors.As(err, &help) {
		_, err := io.WriteString(stdout, help.usage)
		return err
	}
	if err != nil {
		return err
	}
	if printKey {
		k, err := token.GenerateKey("k1")
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, token.FormatKeys(k))
		return nil
	}
	svc, err := assemble(o, time.Now)
	if err != nil {
		return err
	}
	c, v := svc.room.Settings()
	log.Printf("booking: room: %d active, %d per minute, settings version %d, store %s", c.TotalActiveUsers, c.NewUsersPerMinute, v, o.store)
	return setup.Run("booking", svc.reg, svc.site, o.addr, svc.admin, o.adminAddr, svc.notifier)
}

// parseFlags reads the command line; printKey is -print-key.
func parseFlags(args []string) (o options, printKey bool, err error) {
	fs := flag.NewFlagSet("booking", flag.ContinueOnError)
	// The flag package would print its error and the whole usage; main prints one line, and
	// -h writes the usage to stdout.
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen address, host:port (:8080 for every interface)")
	fs.IntVar(&o.total, "total-active", 2, "TotalActiveUsers: visitors on the site at once")
	fs.IntVar(&o.perMinute, "new-per-minute", 2, "NewUsersPerMinute: admissions in any 60 seconds")
	fs.BoolVar(&o.rateAbove, "allow-rate-above-capacity", false, "AllowRateAboveCapacity: -new-per-minute may exceed -total-active (a booking releases its visitor's place at once)")
	fs.DurationVar(&o.session, "session", 2*time.Minute, "SessionDuration")
	fs.DurationVar(&o.maxSess, "max-session", 0, "MaxSessionDuration: the longest a session lasts from admission, however often the form's keepalive renews it; 0: no limit")
	fs.DurationVar(&o.typical, "typical-session", 2*time.Minute, "TypicalSession: how long a visitor usually takes to fill in the booking form, so the waiting page estimates the wait from the first visitor on; 0: unknown, the wait shows as unavailable until the room has watched people go in")
	fs.DurationVar(&o.refresh, "refresh", 5*time.Second, "RefreshInterval of the waiting page")
	fs.TextVar(&o.method, "method", waitingroom.FIFO, "QueueingMethod: fifo, random, passthrough or reject")
	fs.IntVar(&o.appointments, "appointments", 500, "appointments to book; the waiting page shows how many are left")
	fs.DurationVar(&o.postGrace, "post-grace", 2*time.Minute, "a booking sent up to this long after the session ended is let through when there is room (middleware.WithPostGrace)")
	fs.StringVar(&o.store, "store", "memory", "store: memory, or redis://host:port/db to share the room between processes")
	fs.StringVar(&o.adminAddr, "admin-addr", "", "serve the admin JSON API and the dashboard on this address (host:port; off when empty); needs WAITINGROOM_ADMIN_TOKEN")
	fs.StringVar(&o.notifyURL, "notify-url", "", "post notifications (queueing started and stopped, every 5 minutes for the first 30, settings changes) to this Slack-compatible webhook; WAITINGROOM_NOTIFY_URL instead keeps it out of the process list; WAITINGROOM_NOTIFY_SECRET signs them")
	fs.BoolVar(&o.overwrite, "overwrite", false, "the flags replace the room's settings stored by an earlier run or an operator (by default they only seed a room the store does not have)")
	fs.Var(&o.eventStart, "event-start", "schedule the event \""+eventName+"\" opening the booking at this time: an RFC 3339 time (2026-11-26T09:00:00Z) or a duration from now (30s, 5m)")
	fs.Var(&o.eventEnd, "event-end", "end of the event, as for -event-start (default: -event-start plus "+strings.TrimSuffix(defaultEventLength.String(), "0m0s")+")")
	fs.Var(&o.prequeueStart, "prequeue-start", "open the event's pre-queue at this time, as for -event-start and no later; visitors from then on wait for the start (default: no pre-queue)")
	fs.BoolVar(&o.shuffle, "shuffle", false, "ShuffleAtEventStart: let the pre-queued visitors in in a random order at the start")
	fs.IntVar(&o.eventTotal, "event-total-active", 0, "TotalActiveUsers during the event, with -event-new-per-minute (default: the room's)")
	fs.IntVar(&o.eventPerMinute, "event-new-per-minute", 0, "NewUsersPerMinute during the event, with -event-total-active (default: the room's)")
	pk := fs.Bool("print-key", false, "print a new WAITINGROOM_KEY value and exit")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		var b strings.Builder
		fmt.Fprintln(&b, "usage: booking [flags]")
		fmt.Fprintln(&b, "\nA vaccine-booking form behind a waiting room, at http://127.0.0.1:8080 unless -addr says otherwise.")
		fmt.Fprintln(&b, "\nFlags:")
		fs.SetOutput(&b)
		fs.PrintDefaults()
		return options{}, false, helpRequested{b.String()}
	} else if err != nil {
		return options{}, false, fmt.Errorf("%w (see -h)", err)
	}
	if fs.NArg() > 0 {
		return options{}, false, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if !o.eventStart.set {
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"-prequeue-start", o.prequeueStart.set},
			{"-event-end", o.eventEnd.set},
			{"-shuffle", o.shuffle},
			{"-event-total-active", o.eventTotal != 0},
			{"-event-new-per-minute", o.eventPerMinute != 0},
		} {
			if f.set {
				return options{}, false, fmt.Errorf("%s needs -event-start", f.name)
			}
		}
	}
	if (o.eventTotal == 0) != (o.eventPerMinute == 0) {
		return options{}, false, errors.New("set -event-total-active and -event-new-per-minute together, or neither")
	}
	if o.adminAddr != "" {
		if _, err := setup.AdminTokens(); err != nil {
			return options{}, false, err
		}
	}
	return o, *pk, nil
}

// when is an instant given on the command line: an RFC 3339 time, or a duration from the
// time the program starts (read on build's clock).
type when struct {
	set   bool
	abs   bool
	at    time.Time     // when abs
	after time.Duration // when not abs
}

func (w *when) String() string {
	switch {
	case w == nil || !w.set:
		return ""
	case w.abs:
		return w.at.Format(time.RFC3339Nano)
	}
	return w.after.String()
}

func (w *when) Set(s string) error {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		*w = when{set: true, abs: true, at: t}
		return nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		*w = when{set: true, after: d}
		return nil
	}
	return errors.New("want an RFC 3339 time such as 2026-11-26T09:00:00Z or a duration from now such as 30s or 5m")
}

// from is the instant, taking durations from now.
func (w when) from(now time.Time) time.Time {
	if w.abs {
		return w.at
	}
	return now.Add(w.after)
}

// event is the scheduled event the options ask for at now, or nil.
func (o options) event(now time.Time) *waitingroom.Event {
	if !o.eventStart.set {
		return nil
	}
	e := &waitingroom.Event{
		Name:                eventName,
		Start:               o.eventStart.from(now),
		ShuffleAtEventStart: o.shuffle,
		TotalActiveUsers:    o.eventTotal,
		NewUsersPerMinute:   o.eventPerMinute,
	}
	if o.prequeueStart.set {
		e.PrequeueStart = o.prequeueStart.from(now)
	}
	e.End = e.Start.Add(defaultEventLength)
	if o.eventEnd.set {
		e.End = o.eventEnd.from(now)
	}
	return e
}

// describe is e for the log.
func describe(e waitingroom.Event, now time.Time) string {
	rel := func(t time.Time) string {
		d := t.Sub(now).Round(time.Second)
		if d >= 0 {
			return fmt.Sprintf("%s (in %v)", t.Format(time.RFC3339), d)
		}
		return fmt.Sprintf("%s (%v ago)", t.Format(time.RFC3339), -d)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "event %q: ", e.Name)
	if !e.PrequeueStart.IsZero() {
		fmt.Fprintf(&b, "pre-queue from %s, ", rel(e.PrequeueStart))
	}
	fmt.Fprintf(&b, "booking opens %s, ends %s", rel(e.Start), rel(e.End))
	if e.ShuffleAtEventStart {
		b.WriteString("; pre-queued visitors go in in a random order")
	}
	if e.TotalActiveUsers != 0 {
		fmt.Fprintf(&b, "; %d active, %d per minute during the event", e.TotalActiveUsers, e.NewUsersPerMinute)
	}
	if !e.End.After(now) {
		b.WriteString("; it is over already")
	}
	return b.String()
}

// service is the assembled program: the site behind its room, the admin API (nil without
// -admin-addr) and the registry that keeps the room following its stored settings.
type service struct {
	site, admin http.Handler
	reg         *rooms.Registry
	room        *waitingroom.Room
	store       store.Store
	notifier    *notify.Notifier // nil without -notify-url
}

// build assembles the app behind its waiting room; clock is the memory store's and the app's
// clock (tests pass a simulated one).
// Durations in the event's flags are taken from clock's time now.
func build(o options, clock func() time.Time) (http.Handler, error) {
	svc, err := assemble(o, clock)
	if err != nil {
		return nil, err
	}
	return svc.site, nil
}

// assemble is build with the admin API and the registry.
func assemble(o options, clock func() time.Time) (*service, error) {
	cfg := waitingroom.Config{
		TotalActiveUsers:       o.total,
		NewUsersPerMinute:      o.perMinute,
		SessionDuration:        o.session,
		MaxSessionDuration:     o.maxSess,
		AllowRateAboveCapacity: o.rateAbove,
		TypicalSession:         o.typical,
		RefreshInterval:        o.refresh,
		QueueingMethod:         o.method,
	}
	now := clock()
	if e := o.event(now); e != nil {
		cfg.Events = []waitingroom.Event{*e}
	}
	// The flags' settings are checked before anything is stored.
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	st, err := setup.OpenStore(o.store, clock)
	if err != nil {
		return nil, err
	}
	keys, err := loadKeys()
	if err != nil {
		return nil, err
	}
	app := newApp(o.appointments, clock)
	var room *waitingroom.Room
	var reg *rooms.Registry
	notifier, hook, err := setup.Notifier(o.notifyURL, st, func(id string) (*waitingroom.Room, bool) { return reg.Room(id) })
	if err != nil {
		return nil, err
	}
	reg, err = rooms.NewRegistry(st,
		rooms.WithRoomOptions(append([]waitingroom.Option{waitingroom.WithKeys(keys...), waitingroom.WithClock(clock)}, hook...)...),
		rooms.WithRoute(func(string) rooms.Route { return rooms.Route{Prefix: "/"} }))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if o.overwrite {
		room, _, err = reg.Put(ctx, "booking", cfg, store.AnyVersion, store.Change{By: "code", What: "overwrite"})
	} else {
		room, err = reg.Ensure(ctx, "booking", cfg)
	}
	if err != nil {
		return nil, err
	}
	if stored := room.Config(); !o.overwrite && (stored.TotalActiveUsers != cfg.TotalActiveUsers || stored.NewUsersPerMinute != cfg.NewUsersPerMinute) {
		log.Printf("booking: the store holds the room's settings (version %d: %d active, %d per minute), which win over the flags; -overwrite replaces them", room.Version(), stored.TotalActiveUsers, stored.NewUsersPerMinute)
	}
	for _, e := range room.Events() {
		log.Printf("booking: %s", describe(e, now))
	}
	// Cross-origin form posts are refused (403) before they reach the room, so a page on
	// another site can neither take a place in the queue nor replace a visitor's cookie.
	cop := http.NewCrossOriginProtection()
	svc := &service{reg: reg, room: room, store: st, notifier: notifier}
	svc.site = cop.Handler(middleware.Protect(room, app.routes(),
		middleware.WithPages(middleware.Pages{Catalog: catalog, Announce: app.announce}),
		middleware.WithBypass(func(r *http.Request) bool { return r.URL.Path == "/healthz" }),
		middleware.WithKeepalive(keepalivePath),
		middleware.WithPostGrace(o.postGrace),
		middleware.WithKeep(app.keepDraft),
		middleware.WithClock(clock),
	))
	if o.adminAddr != "" {
		if svc.admin, err = setup.AdminHandler(reg, st); err != nil {
			return nil, err
		}
	}
	return svc, nil
}

// loadKeys reads WAITINGROOM_KEY (see setup.LoadKeys).
func loadKeys() ([]token.HMACKey, error) { return setup.LoadKeys("booking") }
