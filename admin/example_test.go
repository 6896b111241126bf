package admin_test

import (
	"fmt"
	"log"
	"log/slog"
	"net/http/httptest"
	"strings"

	"github.com/waitingroom-go/waitingroom/admin"
	"github.com/waitingroom-go/waitingroom/rooms"
	"github.com/waitingroom-go/waitingroom/store/memory"
)

// An operator creates a room, then raises its capacity against the version read.
func Example() {
	st := memory.New()
	reg, err := rooms.NewRegistry(st)
	if err != nil {
		log.Fatal(err)
	}
	// The host runs go reg.Watch(ctx, 0) to follow other instances' changes.
	h, err := admin.New(reg, st, admin.WithTokens(
		admin.Token{Name: "ops", Secret: "a-long-random-secret-0123456789", Scope: admin.ReadWrite},
	), admin.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		log.Fatal(err)
	}
	// The host serves h on a listener of its own, say http.ListenAndServe("127.0.0.1:8081", h).

	send := func(method, body, ifMatch string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "/api/rooms/booking", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer a-long-random-secret-0123456789")
		if ifMatch != "" {
			req.Header.Set("If-Match", ifMatch)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	created := send("PUT", `{"total_active_users": 200, "new_users_per_minute": 100}`, "")
	fmt.Println(created.Code, created.Header().Get("ETag"))
	patched := send("PATCH", `{"total_active_users": 300}`, created.Header().Get("ETag"))
	fmt.Println(patched.Code, patched.Header().Get("ETag"))
	stale := send("PATCH", `{"total_active_users": 250}`, created.Header().Get("ETag"))
	fmt.Println(stale.Code, strings.TrimSpace(stale.Body.String()))
	// Output:
	// 201 "1"
	// 200 "2"
	// 412 {"error":{"code":"version_mismatch","message":"the room's settings are at version 2; read them again and retry","stored_version":2}}
}
