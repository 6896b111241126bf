package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/admin"
	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/rooms"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/memory"
	"github.com/waitingroom-go/waitingroom/token"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

const (
	rwSecret = "rw-secret-0123456789abcdef"
	roSecret = "ro-secret-0123456789abcdef"
	validDoc = `{"total_active_users":100,"new_users_per_minute":50}`
	// A passthrough room, to which a passthrough event adds nothing.
	passDoc = `{"total_active_users":100,"new_users_per_minute":50,"queueing_method":"passthrough"}`
	// The store failure the flaky store reports: internal detail the API must not show.
	storeDown = "dial tcp 10.0.0.7:6379: connection refused"
)

// testKey signs for every instance: instances with other keys refuse the room.
var testKey = token.HMACKey{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")}

var (
	rwToken = admin.Token{Name: "ops", Secret: rwSecret, Scope: admin.ReadWrite}
	roToken = admin.Token{Name: "viewer", Secret: roSecret, Scope: admin.ReadOnly}
)

// flakyStore is the memory store with failures on demand and a count of counter reads.
type flakyStore struct {
	*memory.Store
	failStats, failWrites atomic.Bool
	statsCalls            atomic.Int64
	statsGate             func(context.Context) // called by Stats when set
}

func (s *flakyStore) Stats(ctx context.Context, room string, l admission.Limits) (store.Stats, error) {
	s.statsCalls.Add(1)
	if s.statsGate != nil {
		s.statsGate(ctx)
	}
	if s.failStats.Load() {
		return store.Stats{}, errors.New(storeDown)
	}
	return s.Store.Stats(ctx, room, l)
}

func (s *flakyStore) PutSettings(ctx context.Context, room string, st store.Settings, ifVersion int64, c store.Change) (int64, error) {
	if s.failWrites.Load() {
		return 0, errors.New(storeDown)
	}
	return s.Store.PutSettings(ctx, room, st, ifVersion, c)
}

func (s *flakyStore) DeleteSettings(ctx context.Context, room string, ifVersion int64, c store.Change) error {
	if s.failWrites.Load() {
		return errors.New(storeDown)
	}
	return s.Store.DeleteSettings(ctx, room, ifVersion, c)
}

// env is one instance: a registry on a store at t0 and its admin API.
type env struct {
	t    testing.TB
	st   *flakyStore
	reg  *rooms.Registry
	h    *admin.Handler
	logs *bytes.Buffer
}

func newEnv(t testing.TB, opts ...admin.Option) *env {
	t.Helper()
	return newInstance(t, &flakyStore{Store: memory.New(memory.WithClock(func() time.Time { return t0 }))}, opts...)
}

// newInstance is another instance on st.
func newInstance(t testing.TB, st *flakyStore, opts ...admin.Option) *env {
	t.Helper()
	clock := func() time.Time { return t0 }
	reg, err := rooms.NewRegistry(st, rooms.WithRoomOptions(waitingroom.WithClock(clock), waitingroom.WithKeys(testKey)))
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{} // slog's handlers serialize their writes
	base := []admin.Option{
		admin.WithTokens(rwToken, roToken),
		admin.WithLogger(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
	}
	h, err := admin.New(reg, st, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, st: st, reg: reg, h: h, logs: logs}
}

// create stores room id with settings doc, as code would.
func (e *env) create(id, doc string) {
	e.t.Helper()
	cfg, err := waitingroom.DecodeConfig([]byte(doc))
	if err != nil {
		e.t.Fatal(err)
	}
	if _, _, err := e.reg.Put(context.Background(), id, cfg, store.AnyVersion, store.Change{By: "setup", What: "create"}); err != nil {
		e.t.Fatal(err)
	}
}

// do serves a request with the Authorization header auth ("": none) and headers given as
// name, value pairs.
func (e *env) do(method, target, auth, body string, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

func bearer(secret string) string { return "Bearer " + secret }

// roomState is all a request could change about a room.
type roomState struct {
	version     int64  // stored
	doc         string // stored
	changes     int
	newest      int64 // the newest change's version
	inRegistry  bool
	roomVersion int64
	roomDoc     string
	rooms       int
}

func (e *env) state(id string) roomState {
	e.t.Helper()
	ctx := context.Background()
	var s roomState
	st, err := e.st.Settings(ctx, id)
	if err != nil && !errors.Is(err, store.ErrInvalidRoom) {
		e.t.Fatal(err)
	}
	if st != nil {
		s.version, s.doc = st.Version, string(st.Doc)
	}
	ch, _ := e.st.Changes(ctx, id)
	s.changes = len(ch)
	if len(ch) > 0 {
		s.newest = ch[0].Version
	}
	if rm, ok := e.reg.Room(id); ok {
		doc, err := waitingroom.EncodeConfig(rm.Config())
		if err != nil {
			e.t.Fatal(err)
		}
		s.inRegistry, s.roomVersion, s.roomDoc = true, rm.Version(), string(doc)
	}
	s.rooms = e.reg.Len()
	return s
}

type apiError struct {
	Code          string `json:"code"`
	Message       string `json:"message"`
	Field         string `json:"field"`
	StoredVersion *int64 `json:"stored_version"`
}

func errorOf(t testing.TB, rec *httptest.ResponseRecorder) apiError {
	t.Helper()
	var body struct {
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error == nil {
		t.Fatalf("status %d, body %q: not a JSON error (%v)", rec.Code, rec.Body, err)
	}
	return *body.Error
}

type roomJSON struct {
	ID         string          `json:"id"`
	Version    int64           `json:"version"`
	Settings   json.RawMessage `json:"settings"`
	Stats      *statsJSON      `json:"stats"`
	StatsError string          `json:"stats_error"`
}

type statsJSON struct {
	At     string `json:"at"`
	Active int64  `json:"active"`
	Wait   struct {
		Known bool `json:"known"`
	} `json:"wait"`
}

func decode[T any](t testing.TB, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	return v
}

func ptr[T any](v T) *T { return &v }

// goNames are Config's field names as Go writes them: no message may use them.
var goNames = []string{"TotalActiveUsers", "NewUsersPerMinute", "AllowRateAboveCapacity", "SessionDuration",
	"RenewInterval", "MaxSessionDuration", "QueueingMethod", "RefreshInterval", "QueueHold", "ArrivalGrace",
	"TypicalSession", "QueueingStatusCode", "Events", "PrequeueStart"}

// An event of the passthrough rooms.
const passEvent = `"events":[{"name":"sale","event_start_time":"2026-03-02T09:00:00Z","event_end_time":"2026-03-02T10:00:00Z","queueing_method":"passthrough"}]`

// oversized is a settings document one byte over the limit.
var oversized = func() string {
	s := `{"total_active_users":100,"new_users_per_minute":50`
	return s + strings.Repeat(" ", waitingroom.MaxConfigJSON+1-len(s)-1) + "}"
}()

// Every refusal: its status, code and field, and that it changed nothing.
func TestErrors(t *testing.T) {
	rw, ro := bearer(rwSecret), bearer(roSecret)
	mp := []string{"Content-Type", "application/merge-patch+json"}
	tests := []struct {
		name           string
		method, target string
		auth, body     string
		headers        []string
		status         int
		code, field    string
		stored         *int64 // the stored_version said, when one is
		message        string // a part of the message, when it matters
	}{
		{name: "no token", method: "GET", target: "/api/rooms", status: 401, code: "unauthorized"},
		{name: "no token on a write", method: "PUT", target: "/api/rooms/b", body: validDoc, status: 401, code: "unauthorized"},
		{name: "unknown token", method: "GET", target: "/api/rooms", auth: bearer(rwSecret + "x"), status: 401, code: "unauthorized"},
		{name: "a token's prefix", method: "GET", target: "/api/rooms", auth: bearer(rwSecret[:len(rwSecret)-1]), status: 401, code: "unauthorized"},
		{name: "basic scheme", method: "GET", target: "/api/rooms/a", auth: "Basic " + rwSecret, status: 401, code: "unauthorized"},
		{name: "bearer without a secret", method: "GET", target: "/api/rooms", auth: "Bearer", status: 401, code: "unauthorized"},
		{name: "bearer and spaces", method: "GET", target: "/api/rooms", auth: "Bearer    ", status: 401, code: "unauthorized"},
		{name: "secret alone", method: "GET", target: "/api/rooms", auth: rwSecret, status: 401, code: "unauthorized"},
		{name: "two authorizations", method: "GET", target: "/api/rooms", auth: rw, headers: []string{"Authorization", rw}, status: 401, code: "unauthorized"},
		{name: "unauthorized unknown path", method: "GET", target: "/api/nothing", status: 401, code: "unauthorized"},

		{name: "read-only put", method: "PUT", target: "/api/rooms/a", auth: ro, body: validDoc, status: 403, code: "forbidden"},
		{name: "read-only create", method: "PUT", target: "/api/rooms/b", auth: ro, body: validDoc, status: 403, code: "forbidden"},
		{name: "read-only patch", method: "PATCH", target: "/api/rooms/a", auth: ro, body: `{"total_active_users":300}`, headers: mp, status: 403, code: "forbidden"},
		{name: "read-only delete", method: "DELETE", target: "/api/rooms/a", auth: ro, status: 403, code: "forbidden"},

		{name: "get unknown room", method: "GET", target: "/api/rooms/b", auth: rw, status: 404, code: "not_found"},
		{name: "patch unknown room", method: "PATCH", target: "/api/rooms/b", auth: rw, body: `{"total_active_users":300}`, headers: mp, status: 404, code: "not_found"},
		{name: "delete unknown room", method: "DELETE", target: "/api/rooms/b", auth: rw, status: 404, code: "not_found"},
		{name: "delete unknown room if-match", method: "DELETE", target: "/api/rooms/b", auth: rw, headers: []string{"If-Match", `"1"`}, status: 404, code: "not_found"},
		{name: "delete unknown room if-match any", method: "DELETE", target: "/api/rooms/b", auth: rw, headers: []string{"If-Match", `*`}, status: 404, code: "not_found"},
		{name: "changes of unknown room", method: "GET", target: "/api/rooms/b/changes", auth: rw, status: 404, code: "not_found"},
		{name: "unknown path", method: "GET", target: "/api/nothing", auth: rw, status: 404, code: "not_found"},
		{name: "unknown room path", method: "GET", target: "/api/rooms/a/other", auth: rw, status: 404, code: "not_found"},
		{name: "history minutes not a number", method: "GET", target: "/api/rooms/a/history?minutes=five", auth: rw, status: 422, code: "invalid_request", field: "minutes"},
		{name: "outside the api", method: "GET", target: "/elsewhere", auth: rw, status: 404, code: "not_found"},

		{name: "post to the list", method: "POST", target: "/api/rooms", auth: rw, body: validDoc, status: 405, code: "method_not_allowed"},
		{name: "delete the list", method: "DELETE", target: "/api/rooms", auth: rw, status: 405, code: "method_not_allowed"},
		{name: "post to a room", method: "POST", target: "/api/rooms/a", auth: rw, body: validDoc, status: 405, code: "method_not_allowed"},
		{name: "put the changes", method: "PUT", target: "/api/rooms/a/changes", auth: rw, body: validDoc, status: 405, code: "method_not_allowed"},

		{name: "put stale if-match", method: "PUT", target: "/api/rooms/a", auth: rw, body: validDoc, headers: []string{"If-Match", `"7"`}, status: 412, code: "version_mismatch", stored: ptr[int64](1)},
		{name: "put weak if-match", method: "PUT", target: "/api/rooms/a", auth: rw, body: validDoc, headers: []string{"If-Match", `W/"1"`}, status: 412, code: "version_mismatch", stored: ptr[int64](1)},
		{name: "put foreign tag", method: "PUT", target: "/api/rooms/a", auth: rw, body: validDoc, headers: []string{"If-Match", `"xyz"`}, status: 412, code: "version_mismatch", stored: ptr[int64](1)},
		{name: "put stale tag list", method: "PUT", target: "/api/rooms/a", auth: rw, body: validDoc, headers: []string{"If-Match", `"5", "6"`}, status: 412, code: "version_mismatch", stored: ptr[int64](1)},
		{name: "put create only on existing", method: "PUT", target: "/api/rooms/a", auth: rw, body: validDoc, headers: []string{"If-None-Match", "*"}, status: 412, code: "version_mismatch", stored: ptr[int64](1)},
		{name: "put if-match on missing", method: "PUT", target: "/api/rooms/b", auth: rw, body: validDoc, headers: []string{"If-Match", `"1"`}, status: 412, code: "version_mismatch", stored: ptr[int64](0)},
		{name: "put if-match any on missing", method: "PUT", target: "/api/rooms/b", auth: rw, body: validDoc, headers: []string{"If-Match", "*"}, status: 412, code: "version_mismatch", stored: ptr[int64](0)},
		{name: "patch stale if-match", method: "PATCH", target: "/api/rooms/a", auth: rw, body: `{"total_active_users":300}`, headers: append([]string{"If-Match", `"7"`}, mp...), status: 412, code: "version_mismatch", stored: ptr[int64](1)},
		{name: "patch weak if-match", method: "PATCH", target: "/api/rooms/a", auth: rw, body: `{"total_active_users":300}`, headers: []string{"If-Match", `W/"1"`}, status: 412, code: "version_mismatch", stored: ptr[int64](1)},
		{name: "delete stale if-match", method: "DELETE", target: "/api/rooms/a", auth: rw, headers: []string{"If-Match", `"7"`}, status: 412, code: "version_mismatch", stored: ptr[int64](1)},
		{name: "delete weak if-match", method: "DELETE", target: "/api/rooms/a", auth: rw, headers: []string{"If-Match", `W/"1"`}, status: 412, code: "version_mismatch", stored: ptr[int64](1)},

		{name: "put zero capacity", method: "PUT", target: "/api/rooms/a", auth: rw, body: `{"total_active_users":0,"new_users_per_minute":50}`, status: 422, code: "invalid_settings", field: "total_active_users", message: "total_active_users must be at least 1"},
		{name: "put negative rate", method: "PUT", target: "/api/rooms/b", auth: rw, body: `{"total_active_users":100,"new_users_per_minute":-5}`, status: 422, code: "invalid_settings", field: "new_users_per_minute", message: "new_users_per_minute must be at least 1, got -5"},
		{name: "put rate above capacity", method: "PUT", target: "/api/rooms/a", auth: rw, body: `{"total_active_users":100,"new_users_per_minute":200}`, status: 422, code: "invalid_settings", field: "new_users_per_minute",
			message: "new_users_per_minute (200) exceeds total_active_users (100); set allow_rate_above_capacity"},
		{name: "put short session", method: "PUT", target: "/api/rooms/a", auth: rw, body: `{"total_active_users":100,"new_users_per_minute":50,"session_duration":0.1}`, status: 422, code: "invalid_settings", field: "session_duration", message: "session_duration must be from 10s to 24h"},
		{name: "put unknown field", method: "PUT", target: "/api/rooms/b", auth: rw, body: `{"total_active_users":100,"new_users_per_minute":50,"bogus":1}`, status: 422, code: "invalid_settings", field: "bogus"},
		{name: "put go field name", method: "PUT", target: "/api/rooms/a", auth: rw, body: `{"TotalActiveUsers":100}`, status: 422, code: "invalid_settings", field: "TotalActiveUsers"},
		{name: "put wrong type", method: "PUT", target: "/api/rooms/a", auth: rw, body: `{"total_active_users":"many","new_users_per_minute":50}`, status: 422, code: "invalid_settings", field: "total_active_users"},
		{name: "put malformed json", method: "PUT", target: "/api/rooms/a", auth: rw, body: `{"total_active_users":100,`, status: 422, code: "invalid_request"},
		{name: "put trailing data", method: "PUT", target: "/api/rooms/a", auth: rw, body: validDoc + `{}`, status: 422, code: "invalid_request"},
		{name: "put empty body", method: "PUT", target: "/api/rooms/b", auth: rw, status: 422, code: "invalid_request"},
		{name: "put null", method: "PUT", target: "/api/rooms/a", auth: rw, body: `null`, status: 422, code: "invalid_request"},
		{name: "put array", method: "PUT", target: "/api/rooms/a", auth: rw, body: `[]`, status: 422, code: "invalid_request"},
		{name: "put 64 KiB and one byte", method: "PUT", target: "/api/rooms/b", auth: rw, body: oversized, status: 422, code: "invalid_request", message: "over 65536 bytes"},
		{name: "put invalid id", method: "PUT", target: "/api/rooms/bad%21id", auth: rw, body: validDoc, status: 422, code: "invalid_request", field: "id"},
		{name: "put id with a slash", method: "PUT", target: "/api/rooms/a%2Fb", auth: rw, body: validDoc, status: 422, code: "invalid_request", field: "id"},
		{name: "put long id", method: "PUT", target: "/api/rooms/" + strings.Repeat("x", 65), auth: rw, body: validDoc, status: 422, code: "invalid_request", field: "id"},
		{name: "put passthrough event", method: "PUT", target: "/api/rooms/p", auth: rw, body: passDoc[:len(passDoc)-1] + "," + passEvent + "}", status: 422, code: "invalid_settings",
			field: `events["sale"].queueing_method`, message: `event "sale": a passthrough event`},
		{name: "put event without end", method: "PUT", target: "/api/rooms/a", auth: rw,
			body:   `{"total_active_users":100,"new_users_per_minute":50,"events":[{"name":"Start","event_start_time":"2026-03-02T09:00:00Z"}]}`,
			status: 422, code: "invalid_settings", field: `events["Start"].event_start_time`, message: `event "Start": event_start_time and event_end_time are required`},
		{name: "put bad if-match", method: "PUT", target: "/api/rooms/a", auth: rw, body: validDoc, headers: []string{"If-Match", "abc"}, status: 422, code: "invalid_request", field: "If-Match"},
		{name: "put unterminated if-match", method: "PUT", target: "/api/rooms/a", auth: rw, body: validDoc, headers: []string{"If-Match", `"1`}, status: 422, code: "invalid_request", field: "If-Match"},
		{name: "put if-none-match version", method: "PUT", target: "/api/rooms/a", auth: rw, body: validDoc, headers: []string{"If-None-Match", `"1"`}, status: 422, code: "invalid_request", field: "If-None-Match"},
		{name: "put both preconditions", method: "PUT", target: "/api/rooms/a", auth: rw, body: validDoc, headers: []string{"If-None-Match", "*", "If-Match", `"1"`}, status: 422, code: "invalid_request", field: "If-None-Match"},
		{name: "patch zero capacity", method: "PATCH", target: "/api/rooms/a", auth: rw, body: `{"total_active_users":0}`, headers: mp, status: 422, code: "invalid_settings", field: "total_active_users"},
		{name: "patch removes capacity", method: "PATCH", target: "/api/rooms/a", auth: rw, body: `{"total_active_users":null}`, headers: mp, status: 422, code: "invalid_settings", field: "total_active_users"},
		{name: "patch rate above capacity", method: "PATCH", target: "/api/rooms/a", auth: rw, body: `{"new_users_per_minute":101}`, headers: mp, status: 422, code: "invalid_settings", field: "new_users_per_minute", message: "allow_rate_above_capacity"},
		{name: "patch unknown field", method: "PATCH", target: "/api/rooms/a", auth: rw, body: `{"bogus":true}`, headers: mp, status: 422, code: "invalid_settings", field: "bogus"},
		{name: "patch malformed json", method: "PATCH", target: "/api/rooms/a", auth: rw, body: `{"total_active_users":`, headers: mp, status: 422, code: "invalid_request"},
		{name: "patch array", method: "PATCH", target: "/api/rooms/a", auth: rw, body: `[{"op":"replace"}]`, headers: mp, status: 422, code: "invalid_request"},
		{name: "patch 64 KiB and one byte", method: "PATCH", target: "/api/rooms/a", auth: rw, body: oversized, headers: mp, status: 422, code: "invalid_request", message: "over 65536 bytes"},
		{name: "patch invalid id", method: "PATCH", target: "/api/rooms/bad%21id", auth: rw, body: `{}`, headers: mp, status: 422, code: "invalid_request", field: "id"},
		{name: "patch passthrough event", method: "PATCH", target: "/api/rooms/p", auth: rw, body: "{" + passEvent + "}", headers: mp, status: 422, code: "invalid_settings", field: `events["sale"].queueing_method`},
		{name: "patch bad if-match", method: "PATCH", target: "/api/rooms/a", auth: rw, body: `{}`, headers: []string{"If-Match", "W/1"}, status: 422, code: "invalid_request", field: "If-Match"},
		{name: "get invalid id", method: "GET", target: "/api/rooms/bad%21id", auth: rw, status: 422, code: "invalid_request", field: "id"},
		{name: "delete invalid id", method: "DELETE", target: "/api/rooms/bad%21id", auth: rw, status: 422, code: "invalid_request", field: "id"},
		{name: "changes invalid id", method: "GET", target: "/api/rooms/bad%21id/changes", auth: rw, status: 422, code: "invalid_request", field: "id"},

		{name: "put text", method: "PUT", target: "/api/rooms/a", auth: rw, body: validDoc, headers: []string{"Content-Type", "text/plain"}, status: 415, code: "unsupported_media_type"},
		{name: "put form", method: "PUT", target: "/api/rooms/a", auth: rw, body: validDoc, headers: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: 415, code: "unsupported_media_type"},
		{name: "patch json patch", method: "PATCH", target: "/api/rooms/a", auth: rw, body: `[]`, headers: []string{"Content-Type", "application/json-patch+json"}, status: 415, code: "unsupported_media_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.create("a", validDoc)
			e.create("p", passDoc)
			ids := []string{"a", "b", "p"}
			before := make([]roomState, len(ids))
			for i, id := range ids {
				before[i] = e.state(id)
			}
			rec := e.do(tt.method, tt.target, tt.auth, tt.body, tt.headers...)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			got := errorOf(t, rec)
			if got.Code != tt.code || got.Field != tt.field {
				t.Errorf("code %q field %q, want %q %q (message %q)", got.Code, got.Field, tt.code, tt.field, got.Message)
			}
			if got.Message == "" || !strings.Contains(got.Message, tt.message) {
				t.Errorf("message %q, want one with %q", got.Message, tt.message)
			}
			for _, n := range goNames {
				if tt.field != n && (strings.Contains(got.Message, n) || strings.Contains(got.Field, n)) {
					t.Errorf("message %q or field %q names %s as Go does", got.Message, got.Field, n)
				}
			}
			switch {
			case tt.stored != nil && (got.StoredVersion == nil || *got.StoredVersion != *tt.stored):
				t.Errorf("stored_version %v, want %d", got.StoredVersion, *tt.stored)
			case tt.stored == nil && got.StoredVersion != nil:
				t.Errorf("stored_version %d in a %d", *got.StoredVersion, rec.Code)
			}
			switch tt.status {
			case 401:
				if h := rec.Header().Get("WWW-Authenticate"); h != `Bearer realm="waitingroom"` {
					t.Errorf("WWW-Authenticate %q", h)
				}
			case 405:
				if rec.Header().Get("Allow") == "" {
					t.Error("no Allow header")
				}
			}
			for i, id := range ids {
				if after := e.state(id); after != before[i] {
					t.Errorf("room %s changed:\n%+v\n%+v", id, before[i], after)
				}
			}
		})
	}
}

// Every endpoint's answers when all is well.
func TestEndpoints(t *testing.T) {
	rw := bearer(rwSecret)
	mp := []string{"Content-Type", "application/merge-patch+json"}
	// trail checks the newest change of room id.
	trail := func(t *testing.T, e *env, id string, version int64, what string, prior bool) {
		t.Helper()
		ch, err := e.st.Changes(context.Background(), id)
		if err != nil || len(ch) == 0 {
			t.Fatalf("changes %v, %v", ch, err)
		}
		if c := ch[0]; c.Version != version || c.What != what || c.By != "ops" || (c.Prior != nil) != prior {
			t.Errorf("newest change %+v, want version %d, %s by ops", c, version, what)
		}
	}
	// settled checks the room answered, its ETag and the registry's room.
	settled := func(t *testing.T, e *env, rec *httptest.ResponseRecorder, id string, version int64, total int) {
		t.Helper()
		if tag := rec.Header().Get("ETag"); tag != fmt.Sprintf(`"%d"`, version) {
			t.Errorf("ETag %s, want %q", tag, fmt.Sprint(version))
		}
		got := decode[roomJSON](t, rec)
		if got.ID != id || got.Version != version || got.Stats == nil {
			t.Errorf("room %+v, want %s at %d with stats", got, id, version)
		}
		rm, ok := e.reg.Room(id)
		if !ok {
			t.Fatalf("room %s not in the registry", id)
		}
		if rm.Version() != version || rm.Config().TotalActiveUsers != total {
			t.Errorf("registry's room at %d with %d users, want %d with %d", rm.Version(), rm.Config().TotalActiveUsers, version, total)
		}
		cfg, err := waitingroom.DecodeConfig(got.Settings)
		if err != nil || cfg.TotalActiveUsers != total {
			t.Errorf("settings %s: %v", got.Settings, err)
		}
	}
	tests := []struct {
		name           string
		method, target string
		auth, body     string
		headers        []string
		status         int
		check          func(t *testing.T, e *env, rec *httptest.ResponseRecorder)
	}{
		{name: "list", method: "GET", target: "/api/rooms", status: 200, check: func(t *testing.T, e *env, rec *httptest.ResponseRecorder) {
			got := decode[struct{ Rooms []roomJSON }](t, rec)
			if len(got.Rooms) != 2 || got.Rooms[0].ID != "a" || got.Rooms[1].ID != "z" {
				t.Fatalf("rooms %+v, want a and z", got.Rooms)
			}
			for i, r := range got.Rooms {
				rm, _ := e.reg.Room(r.ID)
				want, _ := waitingroom.EncodeConfig(rm.Config())
				if r.Version != int64(i+1) || !jsonEqual(r.Settings, want) || r.StatsError != "" {
					t.Errorf("room %s at %d, settings %s, want version %d, settings %s", r.ID, r.Version, r.Settings, i+1, want)
				}
				if r.Stats == nil || r.Stats.At != "2026-03-01T09:00:00.000Z" || !r.Stats.Wait.Known {
					t.Errorf("stats %+v", r.Stats)
				}
			}
		}},
		{name: "list read-only", method: "GET", target: "/api/rooms", auth: bearer(roSecret), status: 200},
		{name: "list lowercase scheme", method: "GET", target: "/api/rooms", auth: "bearer " + rwSecret, status: 200},
		{name: "get", method: "GET", target: "/api/rooms/a", status: 200, check: func(t *testing.T, e *env, rec *httptest.ResponseRecorder) {
			settled(t, e, rec, "a", 1, 100)
		}},
		{name: "head", method: "HEAD", target: "/api/rooms/a", status: 200},
		{name: "put creates", method: "PUT", target: "/api/rooms/b", body: `{"total_active_users":10,"new_users_per_minute":5}`, status: 201, check: func(t *testing.T, e *env, rec *httptest.ResponseRecorder) {
			settled(t, e, rec, "b", 1, 10)
			trail(t, e, "b", 1, "create", false)
		}},
		{name: "put create only", method: "PUT", target: "/api/rooms/b", body: validDoc, headers: []string{"If-None-Match", "*"}, status: 201, check: func(t *testing.T, e *env, rec *httptest.ResponseRecorder) {
			settled(t, e, rec, "b", 1, 100)
			trail(t, e, "b", 1, "create", false)
		}},
		{name: "put replaces", method: "PUT", target: "/api/rooms/a", body: `{"total_active_users":200,"new_users_per_minute":50}`, headers: []string{"Content-Type", "application/json; charset=utf-8"}, status: 200,
			check: func(t *testing.T, e *env, rec *httptest.ResponseRecorder) {
				settled(t, e, rec, "a", 2, 200)
				trail(t, e, "a", 2, "replace", true)
			}},
		{name: "put if-match", method: "PUT", target: "/api/rooms/a", body: `{"total_active_users":200,"new_users_per_minute":50}`, headers: []string{"If-Match", `"1"`}, status: 200,
			check: func(t *testing.T, e *env, rec *httptest.ResponseRecorder) { settled(t, e, rec, "a", 2, 200) }},
		{name: "put if-match unquoted", method: "PUT", target: "/api/rooms/a", body: `{"total_active_users":200,"new_users_per_minute":50}`, headers: []string{"If-Match", `1`}, status: 200,
			check: func(t *testing.T, e *env, rec *httptest.ResponseRecorder) { settled(t, e, rec, "a", 2, 200) }},
		{name: "put if-match any", method: "PUT", target: "/api/rooms/a", body: `{"total_active_users":200,"new_users_per_minute":50}`, headers: []string{"If-Match", `*`}, status: 200,
			check: func(t *testing.T, e *env, rec *httptest.ResponseRecorder) {
				settled(t, e, rec, "a", 2, 200)
				trail(t, e, "a", 2, "replace", true)
			}},
		{name: "put if-match list", method: "PUT", target: "/api/rooms/a", body: `{"total_active_users":200,"new_users_per_minute":50}`, headers: []string{"If-Match", `W/"1", "5", "1"`}, status: 200,
			check: func(t *testing.T, e *env, rec *httptest.ResponseRecorder) { settled(t, e, rec, "a", 2, 200) }},
		{name: "patch", method: "PATCH", target: "/api/rooms/a", body: `{"total_active_users":300}`, headers: mp, status: 200, check: func(t *testing.T, e *env, rec *httptest.ResponseRecorder) {
			settled(t, e, rec, "a", 2, 300)
			trail(t, e, "a", 2, "patch", true)
			rm, _ := e.reg.Room("a")
			if rm.Config().NewUsersPerMinute != 50 {
				t.Errorf("the patch changed new_users_per_minute to %d", rm.Config().NewUsersPerMinute)
			}
		}},
		{name: "patch json if-match", method: "PATCH", target: "/api/rooms/a", body: `{"total_active_users":300,"queue_all":true}`, headers: []string{"Content-Type", "application/json", "If-Match", `"1"`}, status: 200,
			check: func(t *testing.T, e *env, rec *httptest.ResponseRecorder) {
				settled(t, e, rec, "a", 2, 300)
				if rm, _ := e.reg.Room("a"); !rm.Config().QueueAll {
					t.Error("queue_all not set")
				}
			}},
		{name: "patch nothing", method: "PATCH", target: "/api/rooms/a", body: `{}`, status: 200, check: func(t *testing.T, e *env, rec *httptest.ResponseRecorder) {
			settled(t, e, rec, "a", 2, 100)
		}},
		{name: "delete", method: "DELETE", target: "/api/rooms/a", status: 204, check: func(t *testing.T, e *env, rec *httptest.ResponseRecorder) {
			if rec.Body.Len() != 0 {
				t.Errorf("body %q", rec.Body)
			}
			if _, ok := e.reg.Room("a"); ok {
				t.Error("still in the registry")
			}
			if s := e.state("a"); s.version != 0 {
				t.Errorf("still stored: %+v", s)
			}
			trail(t, e, "a", 0, "delete", true)
		}},
		{name: "delete if-match", method: "DELETE", target: "/api/rooms/a", headers: []string{"If-Match", `"1"`}, status: 204},
		{name: "delete if-match any", method: "DELETE", target: "/api/rooms/a", headers: []string{"If-Match", `*`}, status: 204},
		{name: "changes", method: "GET", target: "/api/rooms/z/changes", status: 200, check: func(t *testing.T, e *env, rec *httptest.ResponseRecorder) {
			got := decode[struct {
				Changes []struct {
					Version, Previous int64
					At, By, What      string
					Prior             json.RawMessage
				}
			}](t, rec)
			if len(got.Changes) != 2 {
				t.Fatalf("changes %+v", got.Changes)
			}
			newest, first := got.Changes[0], got.Changes[1]
			if newest.Version != 2 || newest.Previous != 1 || newest.What != "patch" || newest.By != "ops" || newest.At != "2026-03-01T09:00:00.000Z" {
				t.Errorf("newest %+v", newest)
			}
			if cfg, err := waitingroom.DecodeConfig(newest.Prior); err != nil || cfg.TotalActiveUsers != 100 {
				t.Errorf("prior %s: %v", newest.Prior, err)
			}
			if first.Version != 1 || first.Previous != 0 || first.What != "create" || first.By != "setup" || string(first.Prior) != "null" {
				t.Errorf("first %+v", first)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.create("z", validDoc)
			e.create("a", validDoc)
			// z has a trail of two.
			if rec := e.do("PATCH", "/api/rooms/z", rw, `{"total_active_users":150}`); rec.Code != 200 {
				t.Fatalf("setup: %d %s", rec.Code, rec.Body)
			}
			auth := tt.auth
			if auth == "" {
				auth = rw
			}
			rec := e.do(tt.method, tt.target, auth, tt.body, tt.headers...)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tt.status, rec.Body)
			}
			if rec.Code != 204 {
				if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
					t.Errorf("Content-Type %q", ct)
				}
			}
			if tt.check != nil {
				tt.check(t, e, rec)
			}
		})
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ax, _ := json.Marshal(x)
	by, _ := json.Marshal(y)
	return bytes.Equal(ax, by)
}

// A room whose counters cannot be read is listed all the same, without the cause.
func TestStatsUnavailable(t *testing.T) {
	e := newEnv(t)
	e.create("a", validDoc)
	e.create("b", validDoc)
	e.st.failStats.Store(true)
	for _, target := range []string{"/api/rooms", "/api/rooms/a"} {
		rec := e.do("GET", target, bearer(rwSecret), "")
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", target, rec.Code, rec.Body)
		}
		if strings.Contains(rec.Body.String(), "refused") || strings.Contains(rec.Body.String(), "6379") {
			t.Errorf("%s shows the store's error: %s", target, rec.Body)
		}
		var rs []roomJSON
		if target == "/api/rooms" {
			rs = decode[struct{ Rooms []roomJSON }](t, rec).Rooms
		} else {
			rs = []roomJSON{decode[roomJSON](t, rec)}
		}
		for _, r := range rs {
			if r.Stats != nil || r.StatsError != "store unavailable" || r.Version != 1 || len(r.Settings) == 0 {
				t.Errorf("%s: %+v, want stats null and stats_error", target, r)
			}
		}
		if !strings.Contains(rec.Body.String(), `"stats":null`) {
			t.Errorf("%s: no \"stats\": null in %s", target, rec.Body)
		}
	}
	if !strings.Contains(e.logs.String(), "connection refused") {
		t.Errorf("the cause is not logged: %s", e.logs)
	}
}

// Counters are read once per max age, and again after a change.
func TestStatsMaxAge(t *testing.T) {
	tests := []struct {
		name   string
		maxAge time.Duration
		reads  int64 // for two listings
	}{
		{name: "cached", maxAge: time.Hour, reads: 1},
		{name: "every time", maxAge: 0, reads: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, admin.WithStatsMaxAge(tt.maxAge))
			e.create("a", validDoc)
			for range 2 {
				e.do("GET", "/api/rooms", bearer(rwSecret), "")
			}
			e.do("GET", "/api/rooms/a", bearer(rwSecret), "")
			if got := e.st.statsCalls.Load(); got != tt.reads*3/2 {
				t.Errorf("%d reads for three requests, want %d", got, tt.reads*3/2)
			}
			e.st.statsCalls.Store(0)
			e.do("PATCH", "/api/rooms/a", bearer(rwSecret), `{"queue_all":true}`)
			e.do("GET", "/api/rooms/a", bearer(rwSecret), "")
			if got := e.st.statsCalls.Load(); got != tt.reads {
				t.Errorf("%d reads after a patch and a read, want %d", got, tt.reads)
			}
		})
	}
}

// A listing reads at most 16 rooms' counters at once.
func TestStatsConcurrency(t *testing.T) {
	e := newEnv(t, admin.WithStatsMaxAge(0))
	for i := range 40 {
		e.create(fmt.Sprintf("r%02d", i), validDoc)
	}
	var inFlight, most atomic.Int64
	reached, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	e.st.statsGate = func(ctx context.Context) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if n == 16 {
			once.Do(func() { close(reached) })
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
	}
	done := make(chan *httptest.ResponseRecorder)
	go func() { done <- e.do("GET", "/api/rooms", bearer(rwSecret), "") }()
	select {
	case <-reached:
	case <-time.After(10 * time.Second):
		t.Fatal("16 reads never ran at once")
	}
	close(release)
	if rec := <-done; rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if m := most.Load(); m != 16 {
		t.Errorf("%d reads at once, want 16", m)
	}
}

// A store that fails a write is a 503 that shows nothing of the cause and changes nothing.
func TestStoreUnavailable(t *testing.T) {
	rw := bearer(rwSecret)
	tests := []struct {
		name           string
		method, target string
		body           string
		headers        []string
	}{
		{name: "put", method: "PUT", target: "/api/rooms/a", body: validDoc},
		{name: "put if-match", method: "PUT", target: "/api/rooms/a", body: validDoc, headers: []string{"If-Match", `"1"`}},
		{name: "create", method: "PUT", target: "/api/rooms/b", body: validDoc},
		{name: "patch", method: "PATCH", target: "/api/rooms/a", body: `{"total_active_users":300}`},
		{name: "delete", method: "DELETE", target: "/api/rooms/a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.create("a", validDoc)
			before := []roomState{e.state("a"), e.state("b")}
			e.st.failWrites.Store(true)
			rec := e.do(tt.method, tt.target, rw, tt.body, tt.headers...)
			if rec.Code != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503: %s", rec.Code, rec.Body)
			}
			if got := errorOf(t, rec); got.Code != "store_unavailable" || strings.Contains(got.Message, "refused") {
				t.Errorf("error %+v", got)
			}
			if !strings.Contains(e.logs.String(), "connection refused") {
				t.Errorf("the cause is not logged: %s", e.logs)
			}
			if after := []roomState{e.state("a"), e.state("b")}; !slices.Equal(after, before) {
				t.Errorf("changed: %+v, was %+v", after, before)
			}
		})
	}
}

// Two operators read version 1 and patch it at once: one wins, the other learns of it.
func TestRacingPatches(t *testing.T) {
	for i := range 50 {
		e := newEnv(t)
		e.create("a", validDoc)
		rec := e.do("GET", "/api/rooms/a", bearer(rwSecret), "")
		tag := rec.Header().Get("ETag")
		if tag != `"1"` {
			t.Fatalf("ETag %s", tag)
		}
		codes := make([]int, 2)
		var wg sync.WaitGroup
		for j := range 2 {
			wg.Go(func() {
				body := fmt.Sprintf(`{"total_active_users":%d}`, 200+j)
				codes[j] = e.do("PATCH", "/api/rooms/a", bearer(rwSecret), body, "If-Match", tag).Code
			})
		}
		wg.Wait()
		slices.Sort(codes)
		if codes[0] != 200 || codes[1] != 412 {
			t.Fatalf("round %d: statuses %v, want one 200 and one 412", i, codes)
		}
		if s := e.state("a"); s.version != 2 || s.changes != 2 || s.roomVersion != 2 {
			t.Fatalf("round %d: %+v, want version 2 after one change", i, s)
		}
	}
}

// Without If-Match, racing patches are applied one after the other, none lost.
func TestPatchesWithoutIfMatchAllApply(t *testing.T) {
	e := newEnv(t)
	e.create("a", validDoc)
	fields := []string{"queue_all", "suspended", "disable_session_renewal"}
	var wg sync.WaitGroup
	codes := make([]int, len(fields))
	for i, f := range fields {
		wg.Go(func() {
			codes[i] = e.do("PATCH", "/api/rooms/a", bearer(rwSecret), `{"`+f+`":true}`).Code
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("patch of %s: %d", fields[i], c)
		}
	}
	rm, _ := e.reg.Room("a")
	if c := rm.Config(); !c.QueueAll || !c.Suspended || !c.DisableSessionRenewal || rm.Version() != 4 {
		t.Errorf("version %d, settings %+v: a patch was lost", rm.Version(), c)
	}
}

// A successful PATCH is what the room runs by as soon as it is answered.
func TestPatchAppliesAtOnce(t *testing.T) {
	e := newEnv(t)
	e.create("a", validDoc)
	rm, _ := e.reg.Room("a")
	rec := e.do("PATCH", "/api/rooms/a", bearer(rwSecret), `{"total_active_users":250,"new_users_per_minute":120,"queueing_method":"random"}`,
		"Content-Type", "application/merge-patch+json")
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	c := rm.Config()
	if c.TotalActiveUsers != 250 || c.NewUsersPerMinute != 120 || c.QueueingMethod != waitingroom.Random || rm.Version() != 2 {
		t.Errorf("the room runs by version %d, %+v", rm.Version(), c)
	}
}

// An instance whose registry is behind the store still writes against the stored version.
func TestStaleInstance(t *testing.T) {
	a := newEnv(t)
	a.create("r", validDoc)
	b := newInstance(t, a.st)
	if err := b.reg.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rec := a.do("PATCH", "/api/rooms/r", bearer(rwSecret), `{"total_active_users":200}`); rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	// b's room is at version 1 still: its patch is applied to version 2, not over it.
	if rec := b.do("PATCH", "/api/rooms/r", bearer(rwSecret), `{"queue_all":true}`); rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if rec := a.do("PATCH", "/api/rooms/r", bearer(rwSecret), `{"new_users_per_minute":60}`); rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	// b's room is at version 3, the ETag a's operator read is version 4.
	if rec := b.do("PATCH", "/api/rooms/r", bearer(rwSecret), `{"suspended":true}`, "If-Match", `"4"`); rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if rec := b.do("PATCH", "/api/rooms/r", bearer(rwSecret), `{"suspended":false}`, "If-Match", `"4"`); rec.Code != 412 {
		t.Fatalf("%d %s, want 412", rec.Code, rec.Body)
	}
	st, _ := a.st.Settings(context.Background(), "r")
	cfg, _ := waitingroom.DecodeConfig(st.Doc)
	if st.Version != 5 || cfg.TotalActiveUsers != 200 || cfg.NewUsersPerMinute != 60 || !cfg.QueueAll || !cfg.Suspended {
		t.Errorf("stored version %d: %+v", st.Version, cfg)
	}
	// A room created on a shows on b at once.
	a.create("new", validDoc)
	if rec := b.do("GET", "/api/rooms/new", bearer(roSecret), ""); rec.Code != 200 {
		t.Errorf("b: %d %s", rec.Code, rec.Body)
	}
}

// No secret shows in the logs or in an answer, whatever the request.
func TestSecretsNeverShown(t *testing.T) {
	e := newEnv(t)
	e.create("a", validDoc)
	var bodies bytes.Buffer
	for _, req := range []struct{ method, target, auth, body string }{
		{"GET", "/api/rooms", bearer(rwSecret), ""},
		{"GET", "/api/rooms/a", bearer(roSecret), ""},
		{"PUT", "/api/rooms/b", bearer(rwSecret), validDoc},
		{"PATCH", "/api/rooms/a", bearer(rwSecret), `{"total_active_users":300}`},
		{"PATCH", "/api/rooms/a", bearer(rwSecret), `{"total_active_users":0}`},
		{"PUT", "/api/rooms/a", bearer(roSecret), validDoc},
		{"DELETE", "/api/rooms/b", bearer(rwSecret), ""},
		{"GET", "/api/rooms/a/changes", bearer(rwSecret), ""},
		{"GET", "/api/rooms", bearer(rwSecret + "-wrong"), ""},
		{"GET", "/api/rooms", "Basic " + roSecret, ""},
		{"GET", "/api/rooms", "Bearer " + roSecret[1:], ""},
		{"POST", "/api/rooms", bearer(rwSecret), ""},
		{"GET", "/api/nothing", bearer(rwSecret), ""},
	} {
		rec := e.do(req.method, req.target, req.auth, req.body)
		fmt.Fprintf(&bodies, "%v %s\n", rec.Header(), rec.Body)
	}
	e.st.failWrites.Store(true)
	rec := e.do("PUT", "/api/rooms/a", bearer(rwSecret), validDoc)
	fmt.Fprintf(&bodies, "%v %s\n", rec.Header(), rec.Body)
	// And the tokens themselves, logged and printed.
	log := slog.New(slog.NewJSONHandler(e.logs, nil))
	log.Info("tokens", "rw", rwToken, "ro", roToken, "all", []admin.Token{rwToken})
	slog.New(slog.NewTextHandler(e.logs, nil)).Info("tokens", "rw", rwToken)
	fmt.Fprintf(&bodies, "%v %+v %#v %s %q %d %x\n", rwToken, rwToken, rwToken, rwToken, rwToken, rwToken, rwToken)

	for _, s := range []string{rwSecret, roSecret, roSecret[1:], fmt.Sprintf("%x", rwSecret)} {
		if strings.Contains(e.logs.String(), s) {
			t.Errorf("a secret in the logs:\n%s", e.logs)
		}
		if strings.Contains(bodies.String(), s) {
			t.Errorf("a secret in an answer:\n%s", &bodies)
		}
	}
	for _, want := range []string{`"by":"ops"`, `"what":"patch"`, `"version":2`, `"room":"a"`, `"reason":"unknown token"`} {
		if !strings.Contains(e.logs.String(), want) {
			t.Errorf("logs have no %s:\n%s", want, e.logs)
		}
	}
	if s := rwToken.String(); s != `admin token "ops" (read-write)` {
		t.Errorf("String: %s", s)
	}
}

func TestNew(t *testing.T) {
	st := memory.New()
	reg, err := rooms.NewRegistry(st)
	if err != nil {
		t.Fatal(err)
	}
	secret := "s3cr3t-0123456789abcdef"
	tests := []struct {
		name string
		reg  *rooms.Registry
		ctl  store.Control
		opts []admin.Option
		ok   bool
	}{
		{name: "one token", reg: reg, ctl: st, opts: []admin.Option{admin.WithTokens(admin.Token{Name: "a", Secret: secret})}, ok: true},
		{name: "all options", reg: reg, ctl: st, opts: []admin.Option{admin.WithTokens(rwToken), admin.WithTokens(roToken),
			admin.WithLogger(slog.New(slog.DiscardHandler)), admin.WithStatsMaxAge(5 * time.Second)}, ok: true},
		{name: "no tokens", reg: reg, ctl: st},
		{name: "empty token list", reg: reg, ctl: st, opts: []admin.Option{admin.WithTokens()}},
		{name: "empty secret", reg: reg, ctl: st, opts: []admin.Option{admin.WithTokens(admin.Token{Name: "a"})}},
		{name: "short secret", reg: reg, ctl: st, opts: []admin.Option{admin.WithTokens(admin.Token{Name: "a", Secret: secret[:15]})}},
		{name: "no name", reg: reg, ctl: st, opts: []admin.Option{admin.WithTokens(admin.Token{Secret: secret})}},
		{name: "unknown scope", reg: reg, ctl: st, opts: []admin.Option{admin.WithTokens(admin.Token{Name: "a", Secret: secret, Scope: 7})}},
		{name: "duplicate names", reg: reg, ctl: st, opts: []admin.Option{admin.WithTokens(admin.Token{Name: "a", Secret: secret}, admin.Token{Name: "a", Secret: secret + "2"})}},
		{name: "duplicate secrets", reg: reg, ctl: st, opts: []admin.Option{admin.WithTokens(admin.Token{Name: "a", Secret: secret}), admin.WithTokens(admin.Token{Name: "b", Secret: secret})}},
		{name: "nil logger", reg: reg, ctl: st, opts: []admin.Option{admin.WithTokens(rwToken), admin.WithLogger(nil)}},
		{name: "negative max age", reg: reg, ctl: st, opts: []admin.Option{admin.WithTokens(rwToken), admin.WithStatsMaxAge(-time.Second)}},
		{name: "nil registry", ctl: st, opts: []admin.Option{admin.WithTokens(rwToken)}},
		{name: "nil store", reg: reg, opts: []admin.Option{admin.WithTokens(rwToken)}},
		{name: "nil memory store", reg: reg, ctl: (*memory.Store)(nil), opts: []admin.Option{admin.WithTokens(rwToken)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := admin.New(tt.reg, tt.ctl, tt.opts...)
			if (err == nil) != tt.ok || (h != nil) != tt.ok {
				t.Fatalf("New: %v, %v", h, err)
			}
			if err != nil && (strings.Contains(err.Error(), secret[:15]) || strings.Contains(err.Error(), rwSecret)) {
				t.Errorf("the error shows a secret: %v", err)
			}
		})
	}
}

// fuzzSeeds are settings documents and patches, valid and not.
var fuzzSeeds = []string{
	validDoc,
	`{"total_active_users":10,"new_users_per_minute":50,"allow_rate_above_capacity":true,"session_duration":2.5,"renew_interval_seconds":30}`,
	`{"total_active_users":100,"new_users_per_minute":50,"queueing_method":"random","refresh_interval_seconds":5,"queue_hold_seconds":60,"arrival_grace_seconds":10}`,
	`{"total_active_users":100,"new_users_per_minute":50,"events":[{"name":"sale","prequeue_start_time":"2026-03-02T08:30:00Z","event_start_time":"2026-03-02T09:00:00Z","event_end_time":"2026-03-02T10:00:00Z","shuffle_at_event_start":true,"total_active_users":500,"new_users_per_minute":300}]}`,
	passDoc[:len(passDoc)-1] + "," + passEvent + "}",
	`{"total_active_users":100,"new_users_per_minute":200}`,
	`{"total_active_users":0}`,
	`{"total_active_users":null}`,
	`{"bogus":1}`,
	`{"session_duration":1e400}`,
	`{"session_duration":-1}`,
	`{"max_session_duration":1}`,
	`{"queueing_status_code":418}`,
	`{"events":[{"name":""}]}`,
	`{"events":[1]}`,
	`{"events":{}}`,
	`{"total_active_users":1.5}`,
	`{"total_active_users":100,`,
	`{}`, `[]`, `null`, ``, `"x"`, `{"a":{"b":{}}}`,
}

// fuzzRequest sends method to room a (at version 1) with body and If-Match, and checks
// that the answer is never a 5xx and that a refusal changed nothing.
func fuzzRequest(t *testing.T, method string, body []byte, ifMatch string) {
	e := newEnv(t, admin.WithLogger(slog.New(slog.DiscardHandler)))
	e.create("a", validDoc)
	before := e.state("a")
	var headers []string
	if ifMatch != "" {
		headers = []string{"If-Match", ifMatch}
	}
	rec := e.do(method, "/api/rooms/a", bearer(rwSecret), string(body), headers...)
	if rec.Code >= 500 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("status %d, body not JSON: %q", rec.Code, rec.Body)
	}
	after := e.state("a")
	if rec.Code >= 300 {
		if after != before {
			t.Fatalf("status %d changed the room:\n%+v\n%+v", rec.Code, before, after)
		}
		errorOf(t, rec)
		return
	}
	if after.version != 2 || after.roomVersion != 2 || after.changes != 2 {
		t.Fatalf("status %d, room at %+v, want version 2", rec.Code, after)
	}
	if got := decode[roomJSON](t, rec); got.Version != 2 || !jsonEqual(got.Settings, []byte(after.roomDoc)) {
		t.Fatalf("answered %+v, the room runs by %s", got, after.roomDoc)
	}
}

func FuzzPutRoom(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), "")
	}
	f.Add([]byte(validDoc), `"1"`)
	f.Add([]byte(validDoc), `W/"1", "2"`)
	f.Add([]byte(validDoc), `*`)
	f.Fuzz(func(t *testing.T, body []byte, ifMatch string) { fuzzRequest(t, "PUT", body, ifMatch) })
}

func FuzzPatchRoom(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), "")
	}
	f.Add([]byte(`{"queue_all":true}`), `"1"`)
	f.Add([]byte(`{"queue_all":true}`), `"2"`)
	f.Add([]byte(`{"events":[]}`), `*`)
	f.Fuzz(func(t *testing.T, body []byte, ifMatch string) { fuzzRequest(t, "PATCH", body, ifMatch) })
}
