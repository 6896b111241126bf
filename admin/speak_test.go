package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/admin"
	"github.com/waitingroom-go/waitingroom/rooms"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/memory"
)

// The room's count of slots: set and stopped through PUT /slots by a read-write token,
// shown in the room's stats, refused with 422 when malformed; the message is a setting,
// PATCHed like any other, validated, merged by language.
func TestSlotsAndMessages(t *testing.T) {
	e := newEnv(t)
	e.create("vaccines", validDoc)
	rw, ro := bearer(rwSecret), bearer(roSecret)
	slotsOf := func() any {
		t.Helper()
		rec := e.do(http.MethodGet, "/api/rooms/vaccines", ro, "")
		var room struct {
			Stats map[string]any `json:"stats"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &room); err != nil || room.Stats == nil {
			t.Fatalf("GET: %d %s", rec.Code, rec.Body)
		}
		v, ok := room.Stats["slots_remaining"]
		if !ok {
			t.Fatalf("stats without slots_remaining: %s", rec.Body)
		}
		return v
	}
	if got := slotsOf(); got != nil {
		t.Errorf("slots_remaining before any count: %v, want null", got)
	}

	rec := e.do(http.MethodPut, "/api/rooms/vaccines/slots", rw, `{"remaining": 120}`, "Content-Type", "application/json")
	if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != `{"remaining":120}` {
		t.Fatalf("PUT slots: %d %s", rec.Code, rec.Body)
	}
	if got := slotsOf(); got != 120.0 {
		t.Errorf("slots_remaining %v, want 120", got)
	}
	if !strings.Contains(e.logs.String(), `"msg":"admin: slots set","by":"ops","room":"vaccines","remaining":120`) {
		t.Errorf("the change is not logged with who made it:\n%s", e.logs)
	}
	rec = e.do(http.MethodPut, "/api/rooms/vaccines/slots", rw, `{"remaining": null}`)
	if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != `{"remaining":null}` {
		t.Fatalf("PUT slots null: %d %s", rec.Code, rec.Body)
	}
	if got := slotsOf(); got != nil {
		t.Errorf("slots_remaining after null: %v, want null", got)
	}

	for _, tt := range []struct {
		name, auth, target, body, ctype string
		code                            int
		field                           string
	}{
		{"read-only token", ro, "/api/rooms/vaccines/slots", `{"remaining":1}`, "", http.StatusForbidden, ""},
		{"no such room", rw, "/api/rooms/nowhere/slots", `{"remaining":1}`, "", http.StatusNotFound, ""},
		{"negative", rw, "/api/rooms/vaccines/slots", `{"remaining":-1}`, "", http.StatusUnprocessableEntity, "remaining"},
		{"fraction", rw, "/api/rooms/vaccines/slots", `{"remaining":1.5}`, "", http.StatusUnprocessableEntity, "remaining"},
		{"string", rw, "/api/rooms/vaccines/slots", `{"remaining":"5"}`, "", http.StatusUnprocessableEntity, "remaining"},
		{"over the most", rw, "/api/rooms/vaccines/slots", `{"remaining":1000000000000001}`, "", http.StatusUnprocessableEntity, "remaining"},
		{"missing", rw, "/api/rooms/vaccines/slots", `{}`, "", http.StatusUnprocessableEntity, "remaining"},
		{"another field", rw, "/api/rooms/vaccines/slots", `{"remaining":1,"take":1}`, "", http.StatusUnprocessableEntity, "remaining"},
		{"not JSON", rw, "/api/rooms/vaccines/slots", `remaining=1`, "", http.StatusUnprocessableEntity, "remaining"},
		{"not an object", rw, "/api/rooms/vaccines/slots", `5`, "", http.StatusUnprocessableEntity, "remaining"},
		{"media type", rw, "/api/rooms/vaccines/slots", `{"remaining":1}`, "text/plain", http.StatusUnsupportedMediaType, ""},
		{"bad room id", rw, "/api/rooms/a%20b/slots", `{"remaining":1}`, "", http.StatusUnprocessableEntity, "id"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var headers []string
			if tt.ctype != "" {
				headers = []string{"Content-Type", tt.ctype}
			}
			rec := e.do(http.MethodPut, tt.target, tt.auth, tt.body, headers...)
			if rec.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			if got := errorOf(t, rec); got.Field != tt.field {
				t.Errorf("field %q, want %q", got.Field, tt.field)
			}
			if got := slotsOf(); got != nil {
				t.Errorf("a refused request set slots_remaining %v", got)
			}
		})
	}

	// The message is a setting: merged by language, validated, its field named.
	rec = e.do(http.MethodPatch, "/api/rooms/vaccines", rw, `{"messages":{"en":"Fully booked today.","ja":"本日は満席です。"},"close_when_sold_out":true}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("PATCH messages: %d %s", rec.Code, rec.Body)
	}
	rec = e.do(http.MethodPatch, "/api/rooms/vaccines", rw, `{"messages":{"en":null,"zh-hans":"今日已满。"}}`)
	if rec.Code != http.StatusOK {
		t.Fatalf("PATCH one message: %d %s", rec.Code, rec.Body)
	}
	rm, _ := e.reg.Room("vaccines")
	cfg := rm.Config()
	if len(cfg.Messages) != 2 || cfg.Messages["ja"] != "本日は満席です。" || cfg.Messages["zh-Hans"] != "今日已满。" || !cfg.CloseWhenSoldOut {
		t.Errorf("after the patches: messages %v, close when sold out %t", cfg.Messages, cfg.CloseWhenSoldOut)
	}
	if !strings.Contains(e.do(http.MethodGet, "/api/rooms/vaccines", ro, "").Body.String(), `"messages":{"ja":"本日は満席です。","zh-Hans":"今日已满。"}`) {
		t.Errorf("GET does not show the messages")
	}
	for body, field := range map[string]string{
		`{"messages":{"klingon!":"x"}}`:                          `messages["klingon!"]`,
		`{"messages":{"en":"two\nlines"}}`:                       `messages["en"]`,
		`{"messages":{"en":"` + strings.Repeat("x", 501) + `"}}`: `messages["en"]`,
		`{"messages":{"en":5}}`:                                  `messages["en"]`,
	} {
		rec := e.do(http.MethodPatch, "/api/rooms/vaccines", rw, body)
		if rec.Code != http.StatusUnprocessableEntity {
			t.Errorf("PATCH %.40s: %d, want 422", body, rec.Code)
			continue
		}
		if got := errorOf(t, rec); got.Field != field || strings.Contains(got.Message, "Messages") {
			t.Errorf("PATCH %.40s: field %q (%s), want %q named as JSON names it", body, got.Field, got.Message, field)
		}
	}
	if v, _ := rm.TakeSlots(context.Background(), 1); v != -1 {
		t.Errorf("TakeSlots after null: %d", v)
	}
}

// noSlots is a store that keeps settings but no count of slots.
type noSlots struct {
	store.Store
	store.Control
}

// A store that keeps no count answers PUT /slots with 501: the server's setup, not the
// client's mistake.
func TestSlotsOnAStoreThatKeepsNoCount(t *testing.T) {
	st := noSlots{}
	mem := memory.New()
	st.Store, st.Control = mem, mem
	reg, err := rooms.NewRegistry(st)
	if err != nil {
		t.Fatal(err)
	}
	h, err := admin.New(reg, st, admin.WithTokens(rwToken), admin.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Ensure(context.Background(), "vaccines", waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1}); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPut, "/api/rooms/vaccines/slots", strings.NewReader(`{"remaining": 3}`))
	req.Header.Set("Authorization", bearer(rwSecret))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotImplemented || !strings.Contains(rec.Body.String(), `"code":"not_implemented"`) {
		t.Fatalf("PUT slots on a store that keeps no count: %d %s; want 501 not_implemented", rec.Code, rec.Body)
	}
}
