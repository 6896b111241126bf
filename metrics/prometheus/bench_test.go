package wrprom_test

import (
	"context"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/waitingroom-go/waitingroom"
	wrprom "github.com/waitingroom-go/waitingroom/metrics/prometheus"
	"github.com/waitingroom-go/waitingroom/middleware"
	"github.com/waitingroom-go/waitingroom/notify"
	"github.com/waitingroom-go/waitingroom/store/memory"
	"github.com/waitingroom-go/waitingroom/token"
)

// BenchmarkAdmittedRequest is middleware's hot path (a visitor with a pass, no store call),
// alone, with a collector of its room registered and scraped on another goroutine once
// every scrapeEvery requests (far more often than Prometheus would), with a notifier's
// hook on the room and the notifier running, and with both. B/op and allocs/op count the
// whole process, the scrapes included; path-B/op and path-allocs/op take out what the
// scrapes allocated (measured alone after the run), which leaves the request path's.
func BenchmarkAdmittedRequest(b *testing.B) {
	b.Run("alone", func(b *testing.B) { benchAdmitted(b, false, false) })
	b.Run("scraped", func(b *testing.B) { benchAdmitted(b, true, false) })
	b.Run("notified", func(b *testing.B) { benchAdmitted(b, false, true) })
	b.Run("scraped+notified", func(b *testing.B) { benchAdmitted(b, true, true) })
}

// benchAdmitted measures the admitted path; notified gives the room a notifier's hook
// (running, with its collector scraped too).
// scrapeEvery is how many requests go between two scrapes: about every 20 ms here, 750
// times as often as a 15 s scrape interval, so that a run sees a few hundred.
const scrapeEvery = 10_000

func benchAdmitted(b *testing.B, scraped, notified bool) {
	key := token.HMACKey{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")}
	st := memory.New()
	opts := []waitingroom.Option{waitingroom.WithKeys(key)}
	var room *waitingroom.Room
	var nt *notify.Notifier
	if notified {
		var err error
		nt, err = notify.New("http://127.0.0.1:1/hook", st, func(string) (*waitingroom.Room, bool) { return room, true })
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { nt.Run(ctx); close(done) }()
		b.Cleanup(func() { cancel(); <-done })
		opts = append(opts, waitingroom.WithHook(nt.Hook()))
	}
	room, err := waitingroom.New("bench", st, waitingroom.Config{
		TotalActiveUsers: 1, NewUsersPerMinute: 1, SessionDuration: time.Hour, RenewInterval: 30 * time.Minute,
	}, opts...)
	if err != nil {
		b.Fatal(err)
	}
	v, err := room.Enter(context.Background(), "")
	if err != nil || v.Outcome != waitingroom.Admitted {
		b.Fatal(v.Outcome, err)
	}
	h := middleware.Protect(room, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r, _ := http.NewRequest(http.MethodGet, "http://example.test/", nil)
	r.AddCookie(&http.Cookie{Name: "wr_bench", Value: v.Token})
	w := &discard{h: http.Header{}}

	reg := prometheus.NewRegistry()
	if scraped {
		c, err := wrprom.New(fixed(room))
		if err != nil {
			b.Fatal(err)
		}
		reg.MustRegister(c)
	}
	if notified {
		c, err := wrprom.NewNotifierCollector(nt)
		if err != nil {
			b.Fatal(err)
		}
		reg.MustRegister(c)
	}
	gather := func() {
		if mfs, err := reg.Gather(); err != nil || scraped && len(mfs) == 0 {
			b.Error("scrape:", len(mfs), err)
		}
	}
	gather() // the room's first scrape, as a running server has had
	kick, done := make(chan struct{}, 1), make(chan struct{})
	scrapes := 0
	go func() {
		defer close(done)
		for range kick {
			gather()
			scrapes++
		}
	}()

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
		if n++; scraped && n%scrapeEvery == 0 {
			select {
			case kick <- struct{}{}:
			default: // the last one is still running
			}
		}
	}
	close(kick)
	<-done
	runtime.ReadMemStats(&after)
	if len(w.h) != 0 {
		b.Fatalf("admitted request set headers: %v", w.h)
	}

	// What one scrape allocates, alone.
	var perAllocs, perBytes float64
	if scrapes > 0 {
		const k = 50
		var s0, s1 runtime.MemStats
		runtime.ReadMemStats(&s0)
		for range k {
			gather()
		}
		runtime.ReadMemStats(&s1)
		perAllocs, perBytes = float64(s1.Mallocs-s0.Mallocs)/k, float64(s1.TotalAlloc-s0.TotalAlloc)/k
	}
	allocs := float64(after.Mallocs-before.Mallocs) - float64(scrapes)*perAllocs
	bytes := float64(after.TotalAlloc-before.TotalAlloc) - float64(scrapes)*perBytes
	b.ReportMetric(max(0, allocs)/float64(n), "path-allocs/op")
	b.ReportMetric(max(0, bytes)/float64(n), "path-B/op")
	b.ReportMetric(float64(scrapes), "scrapes")
}

// discard is a reusable ResponseWriter, so that the benchmark measures the middleware.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}
