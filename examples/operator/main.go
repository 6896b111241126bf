// Command operator is the operator's side in one program: tenants' rooms (city-001, ...)
// on one store, and on the admin listener the admin API, its dashboard and Prometheus'
// /metrics, with notifications to a webhook. It is a module of its own (examples/operator)
// so that the Prometheus client stays out of the library's go.mod:
//
//	cd examples/operator
//	export WAITINGROOM_ADMIN_TOKEN=$(openssl rand -hex 16)
//	go run . -admin-addr 127.0.0.1:9090 -notify-url https://hooks.slack.com/services/...
//	curl http://127.0.0.1:9090/metrics
//
// Every instance on the same -store (redis://host:port/db) serves the same rooms, sends each
// notification once between them, and reports the rooms on its own /metrics. The admin
// listener is for operators: /metrics asks for no token (Prometheus scrapes it) and names
// every room, so keep it on a private address, as the default 127.0.0.1 is.
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
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/examples/internal/setup"
	wrprom "github.com/waitingroom-go/waitingroom/metrics/prometheus"
	"github.com/waitingroom-go/waitingroom/middleware"
	"github.com/waitingroom-go/waitingroom/notify"
	"github.com/waitingroom-go/waitingroom/rooms"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "operator:", err)
		os.Exit(2)
	}
}

type options struct {
	addr, adminAddr, store, notifyURL string
	tenants, total, perMinute         int
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("operator", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "the tenants' site, host:port")
	fs.StringVar(&o.adminAddr, "admin-addr", "127.0.0.1:9090", "the admin API, dashboard and /metrics, host:port; needs WAITINGROOM_ADMIN_TOKEN")
	fs.StringVar(&o.store, "store", "memory", "store: memory, or redis://host:port/db to share the rooms between processes")
	fs.StringVar(&o.notifyURL, "notify-url", "", "post notifications to this Slack-compatible webhook (off when empty); WAITINGROOM_NOTIFY_URL instead keeps it out of the process list; WAITINGROOM_NOTIFY_SECRET signs them")
	fs.IntVar(&o.tenants, "tenants", 5, "tenants, one room each: city-001, city-002, ...")
	fs.IntVar(&o.total, "total-active", 5, "each new tenant's TotalActiveUsers")
	fs.IntVar(&o.perMinute, "new-per-minute", 5, "each new tenant's NewUsersPerMinute")
	if err := fs.Parse(args); err != nil {
		return o, fmt.Errorf("%w (see -h)", err)
	}
	if fs.NArg() > 0 || o.tenants < 1 || o.tenants > 999 {
		return o, errors.New("want flags only, and -tenants from 1 to 999")
	}
	if o.adminAddr == "" {
		return o, errors.New("-admin-addr is required: it serves the dashboard and /metrics")
	}
	return o, nil
}

func run(args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	p, err := assemble(o, time.Now)
	if err != nil {
		return err
	}
	log.Printf("operator: %d rooms; dashboard on http://%s/, metrics on http://%s/metrics", p.reg.Len(), o.adminAddr, o.adminAddr)
	return setup.Run("operator", p.reg, p.site, o.addr, p.admin, o.adminAddr, p.notifier)
}

// platform is the assembled program.
type platform struct {
	site, admin http.Handler // admin: the admin API and dashboard, and /metrics
	reg         *rooms.Registry
	notifier    *notify.Notifier // nil without -notify-url
	metrics     *prometheus.Registry
}

func assemble(o options, clock func() time.Time) (*platform, error) {
	cfg := waitingroom.Config{TotalActiveUsers: o.total, NewUsersPerMinute: o.perMinute, RefreshInterval: 5 * time.Second}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	st, err := setup.OpenStore(o.store, clock)
	if err != nil {
		return nil, err
	}
	keys, err := setup.LoadKeys("operator")
	if err != nil {
		return nil, err
	}
	p := &platform{}
	n, hook, err := setup.Notifier(o.notifyURL, st, func(id string) (*waitingroom.Room, bool) { return p.reg.Room(id) })
	if err != nil {
		return nil, err
	}
	p.notifier = n
	pages := middleware.WithPages(middleware.Pages{})
	p.reg, err = rooms.NewRegistry(st,
		rooms.WithRoomOptions(append([]waitingroom.Option{waitingroom.WithKeys(keys...), waitingroom.WithClock(clock)}, hook...)...),
		rooms.WithHandler(func(r *waitingroom.Room) http.Handler {
			return middleware.Protect(r, form(r.ID()), pages, middleware.WithClock(clock))
		}))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.reg.Refresh(ctx); err != nil {
		return nil, err
	}
	for i := 1; i <= o.tenants; i++ {
		if _, err := p.reg.Ensure(ctx, fmt.Sprintf("city-%03d", i), cfg); err != nil {
			return nil, err
		}
	}
	p.site = http.NewCrossOriginProtection().Handler(p.reg)

	// /metrics: the rooms, the notifier, and the process, read when scraped.
	p.metrics = prometheus.NewRegistry()
	rc, err := wrprom.New(p.reg.Rooms)
	if err != nil {
		return nil, err
	}
	p.metrics.MustRegister(rc, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if n != nil {
		nc, err := wrprom.NewNotifierCollector(n)
		if err != nil {
			return nil, err
		}
		p.metrics.MustRegister(nc)
	}
	api, err := setup.AdminHandler(p.reg, st)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(p.metrics, promhttp.HandlerOpts{}))
	mux.Handle("/", api)
	p.admin = mux
	return p, nil
}

var formTmpl = template.Must(template.New("").Parse(`<!doctype html><html lang="en"><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>{{.}}: booking</title>
<h1>{{.}}: booking</h1><p>You are in. This is where the tenant's form would be.</p></html>`))

// form is a tenant's page, under /{id}/.
func form(id string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		formTmpl.Execute(w, id)
	})
}
