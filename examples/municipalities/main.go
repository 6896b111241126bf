// Command municipalities is a form platform for many tenants, each behind a waiting room
// of its own: the project's story, where hundreds of towns opened their vaccine bookings on
// one platform at the same minute.
//
//	go run ./examples/municipalities -tenants 500
//
// Tenant city-001 is served under /city-001/ (its booking form; POST /city-001/reserve books
// and frees the visitor's place), and so on; / lists the tenants. Each tenant is a room of
// one registry (package rooms) on one store, so the rooms' settings live in the store:
// created here from the flags the first time, changed at run time through the admin API
// (-admin-addr, with the bearer token WAITINGROOM_ADMIN_TOKEN), and followed by every
// process on the same -store within a second:
//
//	export WAITINGROOM_KEY=$(go run ./examples/booking -print-key)
//	export WAITINGROOM_ADMIN_TOKEN=$(openssl rand -hex 16)
//	go run ./examples/municipalities -store redis://127.0.0.1:6379/0 -admin-addr 127.0.0.1:9090 &
//	go run ./examples/municipalities -store redis://127.0.0.1:6379/0 -addr 127.0.0.1:8081
//	curl -H "Authorization: Bearer $WAITINGROOM_ADMIN_TOKEN" -X PATCH \
//	  -d '{"total_active_users": 50, "new_users_per_minute": 50}' http://127.0.0.1:9090/api/rooms/city-007
//
// Rooms created through the admin API (PUT /api/rooms/{id}) are served at once, on every
// process, at /{id}/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"html/template"
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
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "municipalities:", err)
		os.Exit(2)
	}
}

type options struct {
	addr, adminAddr, store string
	notifyURL              string
	tenants                int
	total, perMinute       int
	session, refresh       time.Duration
}

func parseFlags(args []string, stdout io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("municipalities", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen address, host:port")
	fs.StringVar(&o.adminAddr, "admin-addr", "", "serve the admin JSON API and the dashboard on this address (off when empty); needs WAITINGROOM_ADMIN_TOKEN")
	fs.StringVar(&o.notifyURL, "notify-url", "", "post notifications (queueing started and stopped, every 5 minutes for the first 30, settings changes) to this Slack-compatible webhook; WAITINGROOM_NOTIFY_URL instead keeps it out of the process list; WAITINGROOM_NOTIFY_SECRET signs them")
	fs.StringVar(&o.store, "store", "memory", "store: memory, or redis://host:port/db to share the rooms between processes")
	fs.IntVar(&o.tenants, "tenants", 20, "tenants, one room each: city-001, city-002, ...")
	fs.IntVar(&o.total, "total-active", 5, "each new tenant's TotalActiveUsers")
	fs.IntVar(&o.perMinute, "new-per-minute", 5, "each new tenant's NewUsersPerMinute")
	fs.DurationVar(&o.session, "session", 2*time.Minute, "each new tenant's SessionDuration")
	fs.DurationVar(&o.refresh, "refresh", 5*time.Second, "each new tenant's RefreshInterval")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(stdout, "usage: municipalities [flags]\n\nMany tenants' booking forms, each behind its own waiting room.\n\nFlags:")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return o, err
	} else if err != nil {
		return o, fmt.Errorf("%w (see -h)", err)
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.tenants < 0 || o.tenants > 99_999:
		return o, fmt.Errorf("-tenants must be from 0 to 99999, got %d", o.tenants)
	}
	if o.adminAddr != "" {
		if _, err := setup.AdminTokens(); err != nil {
			return o, err
		}
	}
	return o, nil
}

func run(args []string, stdout io.Writer) error {
	o, err := parseFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	start := time.Now()
	p, err := assemble(o, time.Now)
	if err != nil {
		return err
	}
	log.Printf("municipalities: %d tenants ready in %v, store %s", p.reg.Len(), time.Since(start).Round(time.Millisecond), o.store)
	return setup.Run("municipalities", p.reg, p.site, o.addr, p.admin, o.adminAddr, p.notifier)
}

// platform is the assembled program.
type platform struct {
	site, admin http.Handler
	notifier    *notify.Notifier // nil without -notify-url
	reg         *rooms.Registry
}

// tenantID is the room of tenant i (from 1).
func tenantID(i int) string { return fmt.Sprintf("city-%03d", i) }

func assemble(o options, clock func() time.Time) (*platform, error) {
	cfg := waitingroom.Config{
		TotalActiveUsers:  o.total,
		NewUsersPerMinute: o.perMinute,
		SessionDuration:   o.session,
		RefreshInterval:   o.refresh,
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	st, err := setup.OpenStore(o.store, clock)
	if err != nil {
		return nil, err
	}
	keys, err := setup.LoadKeys("municipalities")
	if err != nil {
		return nil, err
	}
	p := &platform{}
	var hook []waitingroom.Option
	p.notifier, hook, err = setup.Notifier(o.notifyURL, st, func(id string) (*waitingroom.Room, bool) { return p.reg.Room(id) })
	if err != nil {
		return nil, err
	}
	// One catalogue and one set of pages for every tenant: a room costs its state, not a
	// copy of the templates.
	pages := middleware.WithPages(middleware.Pages{})
	p.reg, err = rooms.NewRegistry(st,
		rooms.WithRoomOptions(append([]waitingroom.Option{waitingroom.WithKeys(keys...), waitingroom.WithClock(clock)}, hook...)...),
		rooms.WithHandler(func(r *waitingroom.Room) http.Handler {
			return middleware.Protect(r, tenantApp(r.ID()), pages, middleware.WithClock(clock))
		}),
		rooms.WithFallback(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/" {
				http.NotFound(w, r)
				return
			}
			index(w, p.reg)
		})))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Rooms the store already holds (another process, or an operator) are loaded as they
	// are; the flags' tenants that are missing are created.
	if err := p.reg.Refresh(ctx); err != nil {
		return nil, err
	}
	for i := 1; i <= o.tenants; i++ {
		if _, err := p.reg.Ensure(ctx, tenantID(i), cfg); err != nil {
			return nil, fmt.Errorf("tenant %s: %w", tenantID(i), err)
		}
	}
	p.site = http.NewCrossOriginProtection().Handler(p.reg)
	if o.adminAddr != "" {
		if p.admin, err = setup.AdminHandler(p.reg, st); err != nil {
			return nil, err
		}
	}
	return p, nil
}

var pageTmpl = template.Must(template.New("").Parse(`
{{define "index"}}<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Vaccination booking: municipalities</title><h1>Vaccination booking</h1><p>{{len .}} municipalities.</p>
<ul>{{range .}}<li><a href="/{{.}}/">{{.}}</a></li>{{end}}</ul></html>{{end}}
{{define "form"}}<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.}}: vaccination booking</title><h1>{{.}}: vaccination booking</h1>
<form method="post" action="/{{.}}/reserve"><label>Name <input name="name" required maxlength="100" autocomplete="name"></label>
<button>Book</button></form></html>{{end}}
{{define "booked"}}<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.}}: booked</title><h1>Booked</h1><p>Your appointment in {{.}} is booked.</p></html>{{end}}`))

// index lists the tenants.
func index(w http.ResponseWriter, reg *rooms.Registry) {
	var ids []string
	for _, r := range reg.Rooms() {
		ids = append(ids, r.ID())
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	pageTmpl.ExecuteTemplate(w, "index", ids)
}

// tenantApp is one municipality's booking form, under /{id}/.
func tenantApp(id string) http.Handler {
	mux := http.NewServeMux()
	base := "/" + id + "/"
	mux.HandleFunc("GET "+base+"{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		pageTmpl.ExecuteTemplate(w, "form", id)
	})
	mux.HandleFunc("POST "+base+"reserve", func(w http.ResponseWriter, r *http.Request) {
		if name := strings.TrimSpace(r.FormValue("name")); name == "" || len(name) > 100 {
			http.Error(w, "a name, please", http.StatusBadRequest)
			return
		}
		// Booked: the visitor's place goes to the next in the queue.
		if err := middleware.Release(r); err != nil {
			log.Printf("municipalities: %s: release: %v", id, err)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		pageTmpl.ExecuteTemplate(w, "booked", id)
	})
	return mux
}
