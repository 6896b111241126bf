package rooms_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/middleware"
	"github.com/waitingroom-go/waitingroom/rooms"
	"github.com/waitingroom-go/waitingroom/store/memory"
)

// A registry holds the rooms of many tenants on one store; each request goes to its
// tenant's room by path prefix.
func ExampleRegistry() {
	st := memory.New() // or a Redis store: then every instance serves the same rooms
	tenantApp := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "the form of", r.URL.Path)
	})
	reg, err := rooms.NewRegistry(st,
		// rooms.WithRoomOptions(waitingroom.WithKeys(keys...)): the same keys everywhere
		rooms.WithRoute(func(id string) rooms.Route { return rooms.Route{Prefix: "/" + id + "/"} }), // the default
		rooms.WithHandler(func(r *waitingroom.Room) http.Handler { return middleware.Protect(r, tenantApp) }),
		rooms.WithFallback(http.NotFoundHandler()))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	// Created with these settings unless the store has the room already; an operator's
	// changes (through the admin API) stand.
	for _, id := range []string{"city-001", "city-002"} {
		if _, err := reg.Ensure(ctx, id, waitingroom.Config{TotalActiveUsers: 50, NewUsersPerMinute: 50}); err != nil {
			log.Fatal(err)
		}
	}
	go reg.Watch(ctx, 0) // rooms created, changed or deleted elsewhere, within a second

	rec := httptest.NewRecorder()
	reg.ServeHTTP(rec, httptest.NewRequest("GET", "/city-002/form", nil))
	fmt.Print(rec.Body.String())
	// Output: the form of /city-002/form
}
