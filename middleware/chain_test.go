package middleware_test

import (
	"errors"
	"fmt"
	"log"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/middleware"
	"github.com/waitingroom-go/waitingroom/store/memory"
)

// New's middleware serves a handler as Protect does, with the same options.
func TestNewServesAsProtect(t *testing.T) {
	e := newEnv(t)
	room := e.room("r", oneAtATime())
	var site app
	protect, err := middleware.New(room, middleware.WithBypass(func(r *http.Request) bool { return r.URL.Path == "/healthz" }))
	if err != nil {
		t.Fatal(err)
	}
	h := protect(&site)

	var first, second visitor
	if resp := first.get(h, "/"); resp.StatusCode != http.StatusOK || resp.body != "app" {
		t.Fatalf("first visitor: %d %q, want the app", resp.StatusCode, resp.body)
	}
	if first.cookies["wr_r"] == "" {
		t.Error("the first visitor got no pass in the room's cookie")
	}
	if resp := second.get(h, "/"); resp.body == "app" {
		t.Fatalf("second visitor reached the app in a room of one")
	}
	if resp := second.get(h, "/healthz"); resp.body != "app" {
		t.Errorf("bypassed request: %d %q, want the app", resp.StatusCode, resp.body)
	}
}

// The handlers one New wraps share its join limit: a client that joined through one of them
// is over the limit in the other. Two Protect calls keep one bucket each.
func TestNewSharesTheJoinLimit(t *testing.T) {
	e := newEnv(t)
	room := e.room("r", waitingroom.Config{TotalActiveUsers: 10, NewUsersPerMinute: 10})
	opts := []middleware.Option{
		middleware.WithJoinLimit(middleware.JoinLimit{PerMinute: 1, Burst: 1}),
		middleware.WithClock(e.clock.Now),
	}
	join := func(h http.Handler) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil)) // one client address, no cookie
		return rec.Code
	}

	protect, err := middleware.New(room, opts...)
	if err != nil {
		t.Fatal(err)
	}
	a, b := protect(&app{}), protect(&app{})
	if got := join(a); got != http.StatusOK {
		t.Fatalf("first join: %d, want 200", got)
	}
	if got := join(b); got != http.StatusTooManyRequests {
		t.Errorf("second join, through the other handler: %d, want 429", got)
	}

	c, d := middleware.Protect(room, &app{}, opts...), middleware.Protect(room, &app{}, opts...)
	if got := join(c); got != http.StatusOK {
		t.Fatalf("Protect, first join: %d, want 200", got)
	}
	if got := join(d); got != http.StatusOK {
		t.Errorf("Protect, second join through another Protect: %d, want 200 (its own bucket)", got)
	}
}

// The room in a chain of the usual middleware shape, as chi's r.Use(protect) or
// alice.New(logRequests, protect).Then(mux) put it, here by hand.
func ExampleNew() {
	room, err := waitingroom.New("shop", memory.New(), waitingroom.Config{
		TotalActiveUsers: 1, NewUsersPerMinute: 1, QueueingStatusCode: http.StatusTooManyRequests,
	})
	if err != nil {
		log.Fatal(err)
	}
	protect, err := middleware.New(room, middleware.WithBypass(func(r *http.Request) bool { return r.URL.Path == "/healthz" }))
	if err != nil {
		log.Fatal(err)
	}
	logRequests := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Print(r.Method, " ", r.URL.Path, " ")
			next.ServeHTTP(w, r)
		})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "the shop") })
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	handler := logRequests(protect(mux))

	for _, path := range []string{"/", "/", "/healthz"} { // the second visitor waits
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		fmt.Println(rec.Code)
	}
	// Output:
	// GET / 200
	// GET / 429
	// GET /healthz 200
}

// Options refuse values out of range: New says which, Protect stops the program.
func TestOptionsRefuseBadValues(t *testing.T) {
	e := newEnv(t)
	room := e.room("r", oneAtATime())
	for name, opt := range map[string]middleware.Option{
		"negative join rate":       middleware.WithJoinLimit(middleware.JoinLimit{PerMinute: -1}),
		"infinite join rate":       middleware.WithJoinLimit(middleware.JoinLimit{PerMinute: math.Inf(1)}),
		"negative burst":           middleware.WithJoinLimit(middleware.JoinLimit{Burst: -2}),
		"one client remembered":    middleware.WithJoinLimit(middleware.JoinLimit{MaxClients: 1}),
		"negative grace for posts": middleware.WithPostGrace(-time.Second),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := middleware.New(room, opt); !errors.Is(err, middleware.ErrOption) {
				t.Errorf("New: %v, want ErrOption", err)
			}
			defer func() {
				if recover() == nil {
					t.Error("Protect with a bad option did not panic")
				}
			}()
			middleware.Protect(room, &app{}, opt)
		})
	}
	if _, err := middleware.New(room, middleware.WithJoinLimit(middleware.JoinLimit{})); err != nil {
		t.Errorf("a join limit of defaults: %v", err)
	}
	if _, err := middleware.New(nil); !errors.Is(err, middleware.ErrOption) {
		t.Errorf("New(nil room): %v, want ErrOption", err)
	}
}
