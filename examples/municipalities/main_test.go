package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom/store/storetest"
)

func newPlatform(tb testing.TB, args ...string) (*platform, *storetest.Clock) {
	tb.Helper()
	tb.Setenv("WAITINGROOM_KEY", "")
	o, err := parseFlags(args, io.Discard)
	if err != nil {
		tb.Fatal(err)
	}
	clk := storetest.NewClock(time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC))
	p, err := assemble(o, clk.Now)
	if err != nil {
		tb.Fatal(err)
	}
	return p, clk
}

func do(h http.Handler, method, path, body string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// 500 tenants, one room each, routed by path prefix; each room queues on its own.
func TestFiveHundredTenants(t *testing.T) {
	p, _ := newPlatform(t, "-tenants", "500", "-total-active", "1", "-new-per-minute", "1")
	if p.reg.Len() != 500 {
		t.Fatalf("%d rooms, want 500", p.reg.Len())
	}
	if rec := do(p.site, "GET", "/", ""); rec.Code != 200 || strings.Count(rec.Body.String(), "<li>") != 500 {
		t.Errorf("the index: %d, %d tenants listed", rec.Code, strings.Count(rec.Body.String(), "<li>"))
	}
	if rec := do(p.site, "GET", "/city-250/", ""); rec.Code != 200 || !strings.Contains(rec.Body.String(), "city-250: vaccination booking") {
		t.Errorf("city-250's form: %d %.200s", rec.Code, rec.Body.String())
	}
	// The next visitor of city-250 waits; city-251's first goes straight in.
	if rec := do(p.site, "GET", "/city-250/", ""); strings.Contains(rec.Body.String(), "vaccination booking</h1>") {
		t.Errorf("city-250's second visitor was let in with capacity 1")
	}
	if rec := do(p.site, "GET", "/city-251/", ""); !strings.Contains(rec.Body.String(), "city-251: vaccination booking") {
		t.Errorf("city-251's first visitor: %d %.200s", rec.Code, rec.Body.String())
	}
	if rec := do(p.site, "GET", "/city-501/", ""); rec.Code != 404 {
		t.Errorf("an unknown tenant: %d, want 404", rec.Code)
	}
	if rec := do(p.site, "GET", "/city-2500/", ""); rec.Code != 404 {
		t.Errorf("a longer ID: %d, want 404", rec.Code)
	}
}

// A room created through the admin API is served at once.
func TestAdminCreatesATenant(t *testing.T) {
	const secret = "0123456789abcdef0123"
	t.Setenv("WAITINGROOM_ADMIN_TOKEN", secret)
	p, _ := newPlatform(t, "-tenants", "2", "-admin-addr", "127.0.0.1:0")
	auth := []string{"Authorization", "Bearer " + secret}
	rec := do(p.admin, "PUT", "/api/rooms/city-new", `{"total_active_users": 2, "new_users_per_minute": 2}`, auth...)
	if rec.Code != http.StatusCreated {
		t.Fatalf("PUT: %d %s", rec.Code, rec.Body.String())
	}
	if rec := do(p.site, "GET", "/city-new/", ""); rec.Code != 200 || !strings.Contains(rec.Body.String(), "city-new: vaccination booking") {
		t.Errorf("the new tenant: %d %.200s", rec.Code, rec.Body.String())
	}
	if rec := do(p.admin, "DELETE", "/api/rooms/city-001", "", auth...); rec.Code != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", rec.Code, rec.Body.String())
	}
	if rec := do(p.site, "GET", "/city-001/", ""); rec.Code != 404 {
		t.Errorf("the deleted tenant: %d, want 404", rec.Code)
	}
}

func TestFlags(t *testing.T) {
	t.Setenv("WAITINGROOM_ADMIN_TOKEN", "")
	for _, args := range [][]string{{"-admin-addr", "127.0.0.1:0"}, {"-tenants", "-1"}, {"extra"}, {"-total-active", "x"}} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}

// How long 500 tenants take to start on the memory store (the issue asks for a few
// seconds at most).
func BenchmarkStart500(b *testing.B) {
	for b.Loop() {
		newPlatform(b, "-tenants", "500")
	}
}
