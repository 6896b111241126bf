package middleware_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/middleware"
	"github.com/waitingroom-go/waitingroom/store/memory"
	"github.com/waitingroom-go/waitingroom/token"
)

// A room whose keys do not match its other instances' stays shut, fail-open or not: that
// is no store outage.
func TestKeyMismatchDoesNotFailOpen(t *testing.T) {
	s := memory.New()
	ctx := context.Background()
	mk := func(secret string) *waitingroom.Room {
		r, err := waitingroom.New("r", s, waitingroom.Config{TotalActiveUsers: 5, NewUsersPerMinute: 5},
			waitingroom.WithKeys(token.HMACKey{ID: "k1", Secret: []byte(secret + "0123456789abcdef0123456789abcdef")}))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if err := mk("a").CheckKeys(ctx); err != nil {
		t.Fatal(err)
	}
	other := mk("b")
	if err := other.CheckKeys(ctx); err == nil {
		t.Fatal("no mismatch")
	}
	var served, reported int
	h := middleware.Protect(other, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served++ }),
		middleware.WithFailOpen(true), middleware.WithErrorHandler(func(*http.Request, error) { reported++ }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if served != 0 || rec.Code != http.StatusServiceUnavailable || reported != 1 {
		t.Errorf("status %d, served %d, reported %d; want 503, the site untouched, the error reported", rec.Code, served, reported)
	}
}
