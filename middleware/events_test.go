package middleware_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/middleware"
)

// TestEventFairnessAtActivation is the booking story over HTTP: a visitor who opened the form
// before the event is queued like everyone else when submitting inside it; the pre-queue
// says when the booking opens; a request the host exempts is served throughout.
func TestEventFairnessAtActivation(t *testing.T) {
	e := newEnv(t)
	cfg := waitingroom.Config{TotalActiveUsers: 10, NewUsersPerMinute: 10, Events: []waitingroom.Event{{
		Name: "bookings", PrequeueStart: t0.Add(time.Minute), Start: t0.Add(10 * time.Minute), End: t0.Add(time.Hour),
		TotalActiveUsers: 1, NewUsersPerMinute: 1, ShuffleAtEventStart: true,
	}}}
	room := e.room("r", cfg)
	var site app
	h := e.protect(room, &site, middleware.WithBypass(func(r *http.Request) bool { return r.Header.Get("X-Staff") != "" }))
	staff := func(r *http.Request) { r.Header.Set("X-Staff", "1") }

	var early, queued visitor
	if resp := early.get(h, "/form"); resp.body != "app" {
		t.Fatalf("before the event: %d %q", resp.StatusCode, resp.body)
	}

	e.clock.Advance(2 * time.Minute)
	resp := queued.get(h, "/form", accept("application/json"))
	st := decodeStatus(t, resp.body)
	if st["isEventPrequeueing"] != true || st["isEventActive"] != false || st["timeUntilEventStart"] != 8.0 ||
		st["shuffleAtEventStart"] != true || st["waitTimeKnown"] != false || st["timeUntilEventStartFormatted"] == "" {
		t.Fatalf("pre-queue JSON: %v", st)
	}
	if resp := early.get(h, "/form"); resp.body != "app" {
		t.Fatalf("a pass from before the pre-queue, in it: %d %q", resp.StatusCode, resp.body)
	}
	var s1 visitor
	if resp := s1.get(h, "/admin", staff); resp.body != "app" {
		t.Fatalf("an exempt request in the pre-queue: %d %q", resp.StatusCode, resp.body)
	}

	// Inside the event the early visitor's pass is void: the submit is queued, behind the
	// pre-queue, and never reaches the app.
	e.clock.Advance(4 * time.Minute)
	queued.get(h, "/form") // keeps the place
	e.clock.Advance(4 * time.Minute)
	hits := site.hits.Load()
	resp = early.get(h, "/reserve", accept("application/json"))
	if site.hits.Load() != hits || decodeStatus(t, resp.body)["isEventActive"] != true {
		t.Fatalf("a pass from before the event reached the app inside it: %d %q", resp.StatusCode, resp.body)
	}
	if resp := queued.get(h, "/form"); resp.body != "app" {
		t.Fatalf("the pre-queued visitor at the start: %d %q", resp.StatusCode, resp.body)
	}
	var s2 visitor
	if resp := s2.get(h, "/admin", staff); resp.body != "app" {
		t.Fatalf("an exempt request in the full event: %d %q", resp.StatusCode, resp.body)
	}
}
