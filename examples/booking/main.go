// Command booking is a small vaccine-booking backend behind a waiting room.
//
//	go run ./examples/booking
//
// GET / shows the booking form, POST /reserve books a slot and releases the visitor's
// session so the next person can come in, GET /healthz bypasses the room. Open the page in a
// few browsers (or private windows) with -total-active 1 to watch the queue.
//
// Several processes share one room through Redis and one signing key:
//
//	export WAITINGROOM_KEY=$(go run ./examples/booking -print-key)
//	go run ./examples/booking -store redis://127.0.0.1:6379/0 -addr 127.0.0.1:8080 &
//	go run ./examples/booking -store redis://127.0.0.1:6379/0 -addr 127.0.0.1:8081
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/middleware"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/memory"
	redisstore "github.com/waitingroom-go/waitingroom/store/redis"
	"github.com/waitingroom-go/waitingroom/token"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "booking:", err)
		os.Exit(2)
	}
}

// options are the command's flags.
type options struct {
	addr      string
	total     int
	perMinute int
	session   time.Duration
	refresh   time.Duration
	method    waitingroom.Method
	store     string
}

func run(args []string) error {
	fs := flag.NewFlagSet("booking", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen address")
	fs.IntVar(&o.total, "total-active", 2, "TotalActiveUsers: visitors on the site at once")
	fs.IntVar(&o.perMinute, "new-per-minute", 2, "NewUsersPerMinute: admissions in any 60 seconds")
	fs.DurationVar(&o.session, "session", 2*time.Minute, "SessionDuration")
	fs.DurationVar(&o.refresh, "refresh", 5*time.Second, "RefreshInterval of the waiting page")
	fs.TextVar(&o.method, "method", waitingroom.FIFO, "QueueingMethod: fifo, random, passthrough or reject")
	fs.StringVar(&o.store, "store", "memory", "store: memory, or redis://host:port/db to share the room between processes")
	printKey := fs.Bool("print-key", false, "print a new WAITINGROOM_KEY value and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *printKey {
		k, err := token.GenerateKey("k1")
		if err != nil {
			return err
		}
		fmt.Println(k)
		return nil
	}
	handler, err := build(o, time.Now)
	if err != nil {
		return err
	}
	srv := &http.Server{Addr: o.addr, Handler: handler, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	log.Printf("booking: listening on http://%s (room: %d active, %d per minute, store %s)", o.addr, o.total, o.perMinute, o.store)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// build assembles the app behind its waiting room; clock is the memory store's and the app's
// clock (tests pass a simulated one).
func build(o options, clock func() time.Time) (http.Handler, error) {
	st, err := openStore(o.store, clock)
	if err != nil {
		return nil, err
	}
	keys, err := loadKeys()
	if err != nil {
		return nil, err
	}
	room, err := waitingroom.New("booking", st, waitingroom.Config{
		TotalActiveUsers:  o.total,
		NewUsersPerMinute: o.perMinute,
		SessionDuration:   o.session,
		RefreshInterval:   o.refresh,
		QueueingMethod:    o.method,
	}, waitingroom.WithKeys(keys...), waitingroom.WithClock(clock))
	if err != nil {
		return nil, err
	}
	app := newApp()
	return middleware.Protect(room, app.routes(),
		middleware.WithWaitingPage(http.HandlerFunc(app.waitingPage)),
		middleware.WithBypass(func(r *http.Request) bool { return r.URL.Path == "/healthz" }),
	), nil
}

func openStore(u string, clock func() time.Time) (store.Store, error) {
	switch {
	case u == "memory":
		return memory.New(memory.WithClock(clock)), nil
	case strings.HasPrefix(u, "redis://"), strings.HasPrefix(u, "rediss://"):
		opt, err := goredis.ParseURL(u)
		if err != nil {
			return nil, fmt.Errorf("-store: %w", err)
		}
		opt.ContextTimeoutEnabled = true // the room's store timeout bounds every call
		return redisstore.New(goredis.NewClient(opt))
	}
	return nil, fmt.Errorf("unknown -store %q (want memory or redis://host:port/db)", u)
}

// loadKeys reads WAITINGROOM_KEY; without it a random key is made, which suits one process.
func loadKeys() ([]token.HMACKey, error) {
	if v := strings.TrimSpace(os.Getenv("WAITINGROOM_KEY")); v != "" {
		return token.ParseKeys(v)
	}
	k, err := token.GenerateKey("k1")
	if err != nil {
		return nil, err
	}
	log.Printf("booking: WAITINGROOM_KEY is not set; using a random signing key, which suits one process only.")
	log.Printf("booking: to share the room between processes, start each with WAITINGROOM_KEY=%s", k)
	return []token.HMACKey{k}, nil
}

type app struct {
	booked atomic.Int64
}

func newApp() *app { return &app{} }

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.form)
	mux.HandleFunc("POST /reserve", a.reserve)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	return mux
}

func (a *app) form(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	pages.ExecuteTemplate(w, "form", nil)
}

func (a *app) reserve(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSpace(r.FormValue("name"))
	slot := r.FormValue("slot")
	if name == "" || len(name) > 100 || !validSlot(slot) {
		w.WriteHeader(http.StatusBadRequest)
		pages.ExecuteTemplate(w, "form", "Please give your name and pick a time.")
		return
	}
	n := a.booked.Add(1)
	// Booking done: give the place to the next person in the queue.
	if err := middleware.Release(r); err != nil {
		log.Printf("booking: release: %v", err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	pages.ExecuteTemplate(w, "booked", map[string]any{"Name": name, "Slot": slot, "Number": n})
}

func (a *app) waitingPage(w http.ResponseWriter, r *http.Request) {
	st, _ := middleware.StatusFromContext(r.Context())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	pages.ExecuteTemplate(w, "waiting", st)
}

var slots = []string{"09:00", "09:15", "09:30", "09:45", "10:00"}

func validSlot(s string) bool {
	for _, v := range slots {
		if v == s {
			return true
		}
	}
	return false
}

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"slots":   func() []string { return slots },
	"seconds": func(d time.Duration) int { return int(d / time.Second) },
}).Parse(`
{{define "head"}}<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width"><title>Vaccine booking</title>
<style>body{font-family:system-ui,sans-serif;max-width:34em;margin:3em auto;padding:0 1em;line-height:1.5}
.box{border:1px solid #ccc;border-radius:8px;padding:1em 1.5em}.big{font-size:2em;font-weight:bold}</style>
{{end}}
{{define "form"}}{{template "head"}}</head><body><h1>Book your vaccination</h1>
{{if .}}<p style="color:#b00">{{.}}</p>{{end}}
<form class="box" method="post" action="/reserve">
<p><label>Full name<br><input name="name" required maxlength="100"></label></p>
<p><label>Time<br><select name="slot">{{range slots}}<option>{{.}}</option>{{end}}</select></label></p>
<p><button type="submit">Book</button></p></form></body></html>{{end}}
{{define "booked"}}{{template "head"}}</head><body><h1>Booked</h1>
<p class="box">{{.Name}}, your vaccination is booked for <strong>{{.Slot}}</strong>.
Booking number {{.Number}}.</p></body></html>{{end}}
{{define "waiting"}}{{template "head"}}{{if .RefreshInterval}}<meta http-equiv="refresh" content="{{seconds .RefreshInterval}}">{{end}}</head>
<body><h1>You are in the queue</h1>
<div class="box">{{if .QueueAll}}<p>Booking is paused for a moment. Keep this page open.</p>
{{else}}<p>People ahead of you</p><p class="big" id="ahead">{{.UsersAhead}}</p>
<p>Estimated wait: <strong id="wait">{{.Wait.Format}}</strong></p>{{end}}</div>
<p>Keep this page open; it refreshes every {{seconds .RefreshInterval}} seconds and takes you to the
booking form when it is your turn. Reloading does not lose your place.</p></body></html>{{end}}
`))
