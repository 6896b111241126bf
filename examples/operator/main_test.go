package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/waitingroom-go/waitingroom/store/storetest"
)

// /metrics on the admin listener reports the rooms as their store counts them, and lints.
func TestMetricsOnTheAdminListener(t *testing.T) {
	t.Setenv("WAITINGROOM_KEY", "")
	t.Setenv("WAITINGROOM_ADMIN_TOKEN", "0123456789abcdef0123")
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer hook.Close()
	o, err := parseFlags([]string{"-tenants", "3", "-total-active", "2", "-new-per-minute", "2", "-notify-url", hook.URL})
	if err != nil {
		t.Fatal(err)
	}
	clk := storetest.NewClock(time.Date(2026, 12, 8, 9, 0, 0, 0, time.UTC))
	p, err := assemble(o, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	for range 7 { // 2 in, 5 wait
		rec := httptest.NewRecorder()
		p.site.ServeHTTP(rec, httptest.NewRequest("GET", "/city-002/", nil))
		if rec.Code != 200 {
			t.Fatalf("GET /city-002/: %d", rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	p.admin.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", rec.Code, body)
	}
	rm, _ := p.reg.Room("city-002")
	snap, err := rm.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		fmt.Sprintf(`waitingroom_waiting{room="city-002"} %d`, snap.Waiting),
		fmt.Sprintf(`waitingroom_active_sessions{room="city-002"} %d`, snap.Active),
		`waitingroom_waiting{room="city-001"} 0`,
		`waitingroom_capacity{room="city-003"} 2`,
		`waitingroom_joins_total{room="city-002"} 7`,
		`waitingroom_notifications_total{outcome="dropped"} 0`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if snap.Waiting != 5 || snap.Active != 2 {
		t.Errorf("city-002: %d waiting, %d active; want 5 and 2", snap.Waiting, snap.Active)
	}
	problems, err := testutil.GatherAndLint(p.metrics)
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range problems {
		if strings.HasPrefix(pr.Metric, "waitingroom_") {
			t.Errorf("lint: %s: %s", pr.Metric, pr.Text)
		}
	}
	// The admin API is still there, behind its token.
	rec = httptest.NewRecorder()
	p.admin.ServeHTTP(rec, httptest.NewRequest("GET", "/api/rooms", nil))
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("GET /api/rooms without a token: %d, want 401", rec.Code)
	}
}
