package middleware_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/middleware"
	"github.com/waitingroom-go/waitingroom/store/memory"
)

// Protect a handler with a room for one visitor at a time: the first visitor goes straight
// through, the second waits and sees the waiting page the host renders from the Status.
func Example() {
	room, err := waitingroom.New("shop", memory.New(), waitingroom.Config{
		TotalActiveUsers:   1,
		NewUsersPerMinute:  1,
		QueueingStatusCode: http.StatusTooManyRequests,
	})
	if err != nil {
		log.Fatal(err)
	}
	shop := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "welcome to the shop")
	})
	waiting := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, _ := middleware.StatusFromContext(r.Context())
		fmt.Fprintf(w, "you are in the queue, %d ahead of you\n", st.UsersAhead)
	})
	h := middleware.Protect(room, shop, middleware.WithWaitingPage(waiting))

	for _, name := range []string{"alice", "bob"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		fmt.Printf("%s: %d %s", name, rec.Code, rec.Body)
	}
	// Output:
	// alice: 200 welcome to the shop
	// bob: 429 you are in the queue, 0 ahead of you
}

// The README's first example: a room in memory in front of an app, with a health check that
// skips it. The first visitor finds the room empty and goes straight through.
func ExampleProtect() {
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "the booking form")
	})
	room, err := waitingroom.New("booking", memory.New(), waitingroom.Config{
		TotalActiveUsers:  200,             // on the site at once
		NewUsersPerMinute: 100,             // admitted in any 60 s
		TypicalSession:    3 * time.Minute, // how long a visitor usually stays: the wait is known from the start
	})
	if err != nil {
		log.Fatal(err) // config errors say what is wrong
	}
	handler := middleware.Protect(room, app,
		middleware.WithBypass(func(r *http.Request) bool { return r.URL.Path == "/healthz" }),
	)

	// A server would run log.Fatal(http.ListenAndServe(addr, handler)); here, one request.
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	fmt.Print(rec.Code, " ", rec.Body)
	// Output: 200 the booking form
}

// The README's waiting page: an ordinary http.Handler that reads the visitor's Status from
// the request context. A room of one place: the second visitor waits.
func ExampleStatusFromContext() {
	waitingPage := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, ok := middleware.StatusFromContext(r.Context())
		if !ok {
			http.NotFound(w, r) // not a waiting visitor: the room did not send it here
			return
		}
		// Also st.Wait.P25, P50 and P75, st.QueueAll, st.EventPrequeueing, ...
		w.Header().Set("Refresh", strconv.Itoa(int(st.RefreshInterval.Seconds())))
		fmt.Fprintf(w, "%d ahead of you; wait: %s\n", st.UsersAhead, st.Wait.Format())
	})
	room, err := waitingroom.New("booking", memory.New(), waitingroom.Config{
		TotalActiveUsers: 1, NewUsersPerMinute: 1, TypicalSession: 3 * time.Minute,
	})
	if err != nil {
		log.Fatal(err)
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "the booking form") })
	handler := middleware.Protect(room, app, middleware.WithWaitingPage(waitingPage))

	for _, visitor := range []string{"first", "second"} {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		fmt.Printf("%s: %d %s", visitor, rec.Code, rec.Body)
	}
	// Output:
	// first: 200 the booking form
	// second: 200 0 ahead of you; wait: 2 minutes to 6 minutes
}
