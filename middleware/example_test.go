package middleware_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

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
