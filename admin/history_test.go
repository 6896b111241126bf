package admin_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/admin"
	"github.com/waitingroom-go/waitingroom/rooms"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/memory"
	"github.com/waitingroom-go/waitingroom/store/storetest"
)

// The live counters and the history of a room with a queue.
func TestStatsAndHistory(t *testing.T) {
	clock := storetest.NewClock(t0)
	st := memory.New(memory.WithClock(clock.Now))
	reg, err := rooms.NewRegistry(st, rooms.WithRoomOptions(waitingroom.WithClock(clock.Now)))
	if err != nil {
		t.Fatal(err)
	}
	h, err := admin.New(reg, st, admin.WithTokens(rwToken, roToken), admin.WithStatsMaxAge(0))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	room, _, err := reg.Put(ctx, "city-001", waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1, RefreshInterval: 10 * time.Second}, 0, store.Change{By: "setup"})
	if err != nil {
		t.Fatal(err)
	}
	var tickets []string
	for range 3 {
		v, err := room.Enter(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if v.Outcome == waitingroom.Waiting {
			tickets = append(tickets, v.Token)
		}
	}
	clock.Advance(15 * time.Second)
	if _, err := room.Enter(ctx, tickets[0]); err != nil {
		t.Fatal(err)
	}
	get := func(target string) (int, map[string]any) {
		req := httptest.NewRequest("GET", target, nil)
		req.Header.Set("Authorization", bearer(roSecret))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var out map[string]any
		json.Unmarshal(rec.Body.Bytes(), &out)
		return rec.Code, out
	}
	code, body := get("/api/rooms/city-001")
	stats, _ := body["stats"].(map[string]any)
	if code != 200 || stats["active"] != 1.0 || stats["waiting"] != 2.0 || stats["admissions_last_minute"] != 1.0 || stats["longest_wait_seconds"] != 15.0 {
		t.Errorf("GET a room: %d, stats %v", code, stats)
	}
	clock.Advance(2 * time.Minute)
	if err := room.FlushHistory(ctx); err != nil {
		t.Fatal(err)
	}
	code, body = get("/api/rooms/city-001/history?minutes=10")
	minutes, _ := body["minutes"].([]any)
	if code != 200 || len(minutes) != 1 {
		t.Fatalf("history: %d %v", code, body)
	}
	m := minutes[0].(map[string]any)
	if m["joins"] != 3.0 || m["admissions"] != 1.0 || m["peak_waiting"] != 2.0 || m["start"] != "2026-03-01T09:00:00Z" {
		t.Errorf("the minute: %v", m)
	}
	for _, bad := range []string{"0", "-1", "x", "2881", "1.5"} {
		if code, body := get("/api/rooms/city-001/history?minutes=" + bad); code != 422 || body["error"].(map[string]any)["field"] != "minutes" {
			t.Errorf("minutes=%s: %d %v, want 422 naming minutes", bad, code, body)
		}
	}
	if code, _ := get("/api/rooms/nowhere/history"); code != 404 {
		t.Errorf("the history of an unknown room: %d, want 404", code)
	}
}
