// Package admin is the waiting room's admin JSON API: an http.Handler over a
// rooms.Registry that lists the rooms with their settings and live counters, creates,
// replaces, patches and deletes them, and shows each room's trail of changes. Mount it where
// the host wants, normally on a listener of its own that only operators reach:
//
//	h, err := admin.New(reg, st, admin.WithTokens(admin.Token{Name: "ops", Secret: secret, Scope: admin.ReadWrite}))
//	...
//	go http.ListenAndServe("127.0.0.1:8081", h)
//
// Endpoints (JSON in and out, snake_case, the settings in waitingroom.EncodeConfig's form):
//
//	GET    /api/rooms               200 {"rooms": [room...]}, sorted by id
//	GET    /api/rooms/{id}          200 room, ETag "<version>"; 404
//	PUT    /api/rooms/{id}          201 created or 200 replaced, room and ETag; 412; 415; 422
//	PATCH  /api/rooms/{id}          200 room and ETag (a JSON merge patch, RFC 7396); 404; 412; 415; 422
//	DELETE /api/rooms/{id}          204; 404; 412
//	GET    /api/rooms/{id}/changes  200 {"changes": [change...]}, newest first; 404
//	GET    /api/rooms/{id}/history  200 {"minutes": [minute...]}, oldest first (?minutes=N, default 60); 404; 422
//	PUT    /api/rooms/{id}/slots    200 {"remaining": N}: the room's count of slots left; 404; 415; 422
//
// A room is {"id", "version", "settings", "stats"} and, when its counters could not be
// read, "stats": null with "stats_error". Its stats carry "slots_remaining", the count of
// slots left (null while the room counts none). The room's message to its visitors is a
// setting ("messages", by language), set with PUT or PATCH like any other; the count of
// slots is not: PUT /slots with {"remaining": N} sets it (N from 0; null stops counting),
// for every instance's waiters at their next poll, and logs who. Every request needs "Authorization: Bearer
// <secret>" of a Token (401 otherwise); PUT, PATCH and DELETE need a ReadWrite one (403).
// Writes are optimistic: If-Match takes the ETag of a version ("*" for any), and PUT takes
// "If-None-Match: *" to create only; a change made against another version is 412. Errors
// are {"error": {"code", "message", "field", "stored_version"}}: 401 unauthorized, 403
// forbidden, 404 not_found, 405 method_not_allowed (with Allow), 412 version_mismatch,
// 415 unsupported_media_type, 422 invalid_request or invalid_settings, 501
// not_implemented (slots on a store that keeps no count), 503 store_unavailable. A refused
// request changes nothing.
//
// The API authenticates by bearer secrets and sets no cookies, so cross-site requests
// cannot borrow an operator's session; serve it over TLS or a private network all the same.
//
// The same handler serves the operator's dashboard at /dashboard/ (and redirects / there):
// an HTML view of every room, busiest first, and of each room with its last hour, its
// settings form with the planner's forecast of the queue, and confirmed buttons for
// queue-all, suspend and resume. An operator logs in with a token's secret, traded for a
// session cookie (HttpOnly, SameSite=Strict, Secure over TLS) that opens the pages and not
// the API; sessions live in the process, 12 idle hours at most. Its forms are guarded by
// http.CrossOriginProtection, its pages by a Content-Security-Policy that allows only its own
// stylesheet and script, and they work without JavaScript. See dashboard.go for its routes.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/rooms"
	"github.com/waitingroom-go/waitingroom/store"
)

// Scope is what a token may do.
type Scope int

const (
	// ReadOnly reads rooms, counters and trails. It is the zero Scope, so a token given
	// none can change nothing.
	ReadOnly Scope = iota
	// ReadWrite also creates, changes and deletes rooms.
	ReadWrite
)

func (s Scope) String() string {
	switch s {
	case ReadOnly:
		return "read-only"
	case ReadWrite:
		return "read-write"
	}
	return "Scope(" + strconv.Itoa(int(s)) + ")"
}

// MinSecretLen is the shortest Secret New accepts, in bytes. Use a random one: 32 bytes
// from crypto/rand, hex-encoded, say.
const MinSecretLen = 16

// Token is a credential of the API. Name is who the trail says made a change (store.Change.By)
// and what the logs name; Secret is what the client sends as "Authorization: Bearer
// <secret>". A Token prints, formats, logs and marshals to JSON as its name and scope, never
// its secret.
type Token struct {
	Name   string
	Secret string
	Scope  Scope
}

// String returns the token's name and scope.
func (t Token) String() string { return fmt.Sprintf("admin token %q (%s)", t.Name, t.Scope) }

// Format writes String for every verb, %#v and %d included, which would otherwise print
// the fields one by one.
func (t Token) Format(f fmt.State, verb rune) { _, _ = io.WriteString(f, t.String()) }

// LogValue keeps the secret out of slog's output.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", t.Name), slog.String("scope", t.Scope.String()))
}

// MarshalJSON writes the name and scope only: slog's JSONHandler marshals a token inside a
// slice or a struct without asking LogValue.
func (t Token) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name  string `json:"name"`
		Scope string `json:"scope"`
	}{t.Name, t.Scope.String()})
}

// Option configures a Handler.
type Option func(*Handler) error

// WithTokens adds the tokens the API accepts; at least one is required. New refuses an
// empty name or secret, a secret shorter than MinSecretLen, an unknown scope, and two
// tokens with the same name or the same secret.
func WithTokens(tokens ...Token) Option {
	return func(h *Handler) error {
		for _, t := range tokens {
			switch {
			case t.Name == "":
				return errors.New("admin: a token has no name")
			case t.Secret == "":
				return fmt.Errorf("admin: %v has no secret", t)
			case len(t.Secret) < MinSecretLen:
				return fmt.Errorf("admin: the secret of %v is shorter than %d bytes", t, MinSecretLen)
			case t.Scope != ReadOnly && t.Scope != ReadWrite:
				return fmt.Errorf("admin: %v has an unknown scope", t)
			}
			h.tokens = append(h.tokens, credential{name: t.Name, scope: t.Scope, digest: sha256.Sum256([]byte(t.Secret))})
		}
		return nil
	}
}

// WithLogger sets where the handler logs each change (who, room, what, version) and each
// refused or failed request. Default: slog.Default(). Secrets are never logged.
func WithLogger(l *slog.Logger) Option {
	return func(h *Handler) error {
		if l == nil {
			return errors.New("admin: nil logger")
		}
		h.log = l
		return nil
	}
}

// WithStatsMaxAge sets how stale a room's counters may be: each room's are read (one store
// call) at most once per d and shared by the requests in between. Default 1 second; 0 reads
// them for every request.
func WithStatsMaxAge(d time.Duration) Option {
	return func(h *Handler) error {
		if d < 0 {
			return fmt.Errorf("admin: negative stats max age %v", d)
		}
		h.maxAge = d
		return nil
	}
}

// Handler serves the admin API. It is safe for concurrent use.
type Handler struct {
	reg    *rooms.Registry
	ctl    store.Control
	tokens []credential
	log    *slog.Logger
	maxAge time.Duration
	mux    *http.ServeMux

	mu    sync.Mutex
	stats map[string]*statsEntry // by room ID

	dash *dashboard
}

// New returns the admin API of the rooms of reg. ctl must be the registry's store (the one
// given to rooms.NewRegistry): the trails of changes are read from it.
func New(reg *rooms.Registry, ctl store.Control, opts ...Option) (*Handler, error) {
	if reg == nil {
		return nil, errors.New("admin: nil registry")
	}
	if ctl == nil || reflect.ValueOf(ctl).Kind() == reflect.Pointer && reflect.ValueOf(ctl).IsNil() {
		return nil, errors.New("admin: nil store")
	}
	h := &Handler{reg: reg, ctl: ctl, log: slog.Default(), maxAge: time.Second, stats: map[string]*statsEntry{}}
	for _, o := range opts {
		if err := o(h); err != nil {
			return nil, err
		}
	}
	if len(h.tokens) == 0 {
		return nil, errors.New("admin: no tokens (WithTokens)")
	}
	for i, a := range h.tokens {
		for _, b := range h.tokens[:i] {
			switch {
			case a.name == b.name:
				return nil, fmt.Errorf("admin: two tokens are named %q", a.name)
			case a.digest == b.digest:
				return nil, fmt.Errorf("admin: tokens %q and %q have the same secret", b.name, a.name)
			}
		}
	}
	h.mux = http.NewServeMux()
	h.mux.HandleFunc("GET /api/rooms", h.listRooms)
	h.mux.HandleFunc("GET /api/rooms/{id}", h.getRoom)
	h.mux.HandleFunc("PUT /api/rooms/{id}", h.putRoom)
	h.mux.HandleFunc("PATCH /api/rooms/{id}", h.patchRoom)
	h.mux.HandleFunc("DELETE /api/rooms/{id}", h.deleteRoom)
	h.mux.HandleFunc("GET /api/rooms/{id}/changes", h.roomChanges)
	h.mux.HandleFunc("GET /api/rooms/{id}/history", h.roomHistory)
	h.mux.HandleFunc("PUT /api/rooms/{id}/slots", h.putSlots)
	h.dash = newDashboard(h)
	return h, nil
}

// ServeHTTP serves the dashboard's paths (see dashboard.go), and authenticates every
// other request by its bearer token, checks the token's scope and routes it.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if dashboardPath(r.URL.Path) {
		h.dash.ServeHTTP(w, r)
		return
	}
	cred, reason := h.authenticate(r)
	if cred == nil {
		h.log.Warn("admin: unauthorized request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "reason", reason)
		w.Header().Set("WWW-Authenticate", `Bearer realm="waitingroom"`)
		writeJSON(w, http.StatusUnauthorized, errorBody{apiError{Code: "unauthorized",
			Message: "send Authorization: Bearer <secret> with a token of this API"}})
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodOptions && cred.scope != ReadWrite {
		h.fail(w, r, cred, http.StatusForbidden, apiError{Code: "forbidden",
			Message: fmt.Sprintf("token %q is read-only", cred.name)})
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), credKey{}, cred))
	if _, pattern := h.mux.Handler(r); pattern == "" {
		// The mux's own answer (404, or 405 with Allow): keep its status, make the body JSON.
		w = &muxErrorWriter{ResponseWriter: w}
	}
	h.mux.ServeHTTP(w, r)
}

// credential is a token as the handler keeps it: the secret only as its digest.
type credential struct {
	name   string
	scope  Scope
	digest [sha256.Size]byte
}

type credKey struct{}

func credOf(r *http.Request) *credential {
	c, _ := r.Context().Value(credKey{}).(*credential)
	return c
}

// authenticate returns the token r carries, or why none (for the log; never the secret).
func (h *Handler) authenticate(r *http.Request) (*credential, string) {
	vals := r.Header.Values("Authorization")
	switch len(vals) {
	case 0:
		return nil, "no Authorization header"
	case 1:
	default:
		return nil, "several Authorization headers"
	}
	scheme, secret, ok := strings.Cut(vals[0], " ")
	secret = strings.TrimLeft(secret, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return nil, "malformed Authorization header"
	}
	if cred := h.match(secret); cred != nil {
		return cred, ""
	}
	return nil, "unknown token"
}

// match returns the token whose secret is secret, or nil.
func (h *Handler) match(secret string) *credential {
	// Digests have one length whatever was sent, and every token is compared, so the time
	// taken says nothing about which bytes or which token came close.
	d := sha256.Sum256([]byte(secret))
	match, idx := 0, 0
	for i := range h.tokens {
		eq := subtle.ConstantTimeCompare(d[:], h.tokens[i].digest[:])
		idx = subtle.ConstantTimeSelect(eq, i, idx)
		match |= eq
	}
	if match == 0 {
		return nil
	}
	return &h.tokens[idx]
}

// The endpoints.

// listRooms answers GET /api/rooms.
func (h *Handler) listRooms(w http.ResponseWriter, r *http.Request) {
	h.refresh(r.Context())
	rs := h.reg.Rooms()
	snaps := h.snapshots(r.Context(), rs)
	out := make([]roomJSON, len(rs))
	for i, rm := range rs {
		var err error
		if out[i], _, err = h.roomView(rm, snaps[i]); err != nil {
			h.failed(w, r, err)
			return
		}
	}
	h.prune(rs)
	writeJSON(w, http.StatusOK, struct {
		Rooms []roomJSON `json:"rooms"`
	}{out})
}

// getRoom answers GET /api/rooms/{id}.
func (h *Handler) getRoom(w http.ResponseWriter, r *http.Request) {
	id, ok := h.roomID(w, r)
	if !ok {
		return
	}
	rm, ok := h.lookup(r.Context(), id)
	if !ok {
		h.notFound(w, r, id)
		return
	}
	h.writeRoom(w, r, http.StatusOK, rm)
}

// maxRetries is how often a write without a precondition is tried again after another
// change came in between its read and its write.
const maxRetries = 3

// putRoom answers PUT /api/rooms/{id}: create or replace.
func (h *Handler) putRoom(w http.ResponseWriter, r *http.Request) {
	ctx, cred := r.Context(), credOf(r)
	id, ok := h.roomID(w, r)
	if !ok || !h.mediaType(w, r, "application/json") {
		return
	}
	cond, ok := h.ifMatch(w, r)
	if !ok {
		return
	}
	createOnly := false
	switch inm := strings.TrimSpace(r.Header.Get("If-None-Match")); {
	case inm == "":
	case inm == "*" && !cond.set:
		createOnly = true
	case inm == "*":
		h.fail(w, r, cred, http.StatusUnprocessableEntity, apiError{Code: "invalid_request", Field: "If-None-Match",
			Message: "send If-Match or If-None-Match, not both"})
		return
	default:
		h.fail(w, r, cred, http.StatusUnprocessableEntity, apiError{Code: "invalid_request", Field: "If-None-Match",
			Message: `If-None-Match may only be "*" (create only)`})
		return
	}
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	cfg, err := waitingroom.DecodeConfig(body)
	if err != nil {
		h.invalid(w, r, err, false)
		return
	}
	if err := cfg.Validate(); err != nil { // before any store call: a bad document costs none
		h.failed(w, r, err)
		return
	}
	for attempt := 0; ; attempt++ {
		var ifVersion int64
		switch {
		case createOnly:
			ifVersion = 0
		case cond.single():
			ifVersion = cond.versions[0]
		default:
			// Put against the version read, so that the trail and the status say truly
			// whether this created the room.
			cur, err := h.storedVersion(ctx, id)
			if err != nil {
				h.failed(w, r, err)
				return
			}
			if cond.set && !cond.matches(cur) {
				h.mismatch(w, r, cur)
				return
			}
			ifVersion = cur
		}
		what := "replace"
		if ifVersion == 0 {
			what = "create"
		}
		rm, v, err := h.reg.Put(ctx, id, cfg, ifVersion, store.Change{By: cred.name, What: what})
		if ve, ok := errors.AsType[*store.VersionError](err); ok {
			if createOnly || cond.single() || attempt == maxRetries {
				h.mismatch(w, r, ve.Stored)
				return
			}
			continue
		}
		if err != nil {
			h.failed(w, r, err)
			return
		}
		h.changed(cred, id, what, v)
		status := http.StatusOK
		if what == "create" {
			status = http.StatusCreated
		}
		h.writeRoom(w, r, status, rm)
		return
	}
}

// patchRoom answers PATCH /api/rooms/{id}: a JSON merge patch of the room's settings.
func (h *Handler) patchRoom(w http.ResponseWriter, r *http.Request) {
	ctx, cred := r.Context(), credOf(r)
	id, ok := h.roomID(w, r)
	if !ok || !h.mediaType(w, r, "application/merge-patch+json", "application/json") {
		return
	}
	cond, ok := h.ifMatch(w, r)
	if !ok {
		return
	}
	patch, ok := h.readBody(w, r)
	if !ok {
		return
	}
	strict := cond.set && !cond.any // the client named versions: a mismatch is theirs to resolve
	synced := false
	for attempt := 0; ; attempt++ {
		rm, ok := h.lookup(ctx, id)
		if !ok {
			h.notFound(w, r, id)
			return
		}
		v, base := view(rm)
		if strict && !cond.matches(v) {
			if !synced {
				// The room may be behind the store (a change made on another instance).
				if err := rm.Sync(ctx); err != nil {
					h.unavailable(w, r, err)
					return
				}
				synced = true
				continue
			}
			h.mismatch(w, r, v)
			return
		}
		cfg, err := waitingroom.PatchConfig(base, patch)
		if err != nil {
			h.invalid(w, r, err, false)
			return
		}
		// Against the version patched, never AnyVersion: a change made in between is not
		// silently overwritten.
		put, nv, err := h.reg.Put(ctx, id, cfg, v, store.Change{By: cred.name, What: "patch"})
		if ve, ok := errors.AsType[*store.VersionError](err); ok {
			switch {
			case ve.Stored == 0:
				h.notFound(w, r, id) // deleted meanwhile
				return
			case strict || attempt == maxRetries:
				h.mismatch(w, r, ve.Stored)
				return
			}
			if err := rm.Sync(ctx); err != nil {
				h.unavailable(w, r, err)
				return
			}
			continue
		}
		if err != nil {
			h.failed(w, r, err)
			return
		}
		h.changed(cred, id, "patch", nv)
		h.writeRoom(w, r, http.StatusOK, put)
		return
	}
}

// deleteRoom answers DELETE /api/rooms/{id}.
func (h *Handler) deleteRoom(w http.ResponseWriter, r *http.Request) {
	ctx, cred := r.Context(), credOf(r)
	id, ok := h.roomID(w, r)
	if !ok {
		return
	}
	cond, ok := h.ifMatch(w, r)
	if !ok {
		return
	}
	ifVersion := store.AnyVersion
	switch {
	case cond.single():
		ifVersion = cond.versions[0]
	case cond.set:
		cur, err := h.storedVersion(ctx, id)
		switch {
		case err != nil:
			h.failed(w, r, err)
			return
		case cur == 0:
			h.notFound(w, r, id)
			return
		case !cond.matches(cur):
			h.mismatch(w, r, cur)
			return
		}
		ifVersion = cur
	}
	err := h.reg.Delete(ctx, id, ifVersion, store.Change{By: cred.name, What: "delete"})
	if ve, ok := errors.AsType[*store.VersionError](err); ok {
		h.mismatch(w, r, ve.Stored)
		return
	}
	if errors.Is(err, rooms.ErrNoRoom) {
		h.notFound(w, r, id)
		return
	}
	if err != nil {
		h.failed(w, r, err)
		return
	}
	h.changed(cred, id, "delete", 0)
	w.WriteHeader(http.StatusNoContent)
}

// putSlots answers PUT /api/rooms/{id}/slots: {"remaining": N} sets the room's count of
// slots left (Room.SetSlots), {"remaining": null} stops counting.
func (h *Handler) putSlots(w http.ResponseWriter, r *http.Request) {
	cred := credOf(r)
	id, ok := h.roomID(w, r)
	if !ok || !h.mediaType(w, r, "application/json") {
		return
	}
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	n, problem := readSlots(body)
	if problem != "" {
		h.fail(w, r, cred, http.StatusUnprocessableEntity, apiError{Code: "invalid_request", Field: "remaining", Message: problem})
		return
	}
	rm, ok := h.lookup(r.Context(), id)
	if !ok {
		h.notFound(w, r, id)
		return
	}
	if err := h.setSlots(r.Context(), cred, rm, n); err != nil {
		if errors.Is(err, waitingroom.ErrConfig) {
			// The server's setup, not the client's mistake.
			h.fail(w, r, cred, http.StatusNotImplemented, apiError{Code: "not_implemented",
				Message: "the rooms' store keeps no count of slots"})
			return
		}
		h.unavailable(w, r, err)
		return
	}
	out := slotsJSON{}
	if n >= 0 {
		out.Remaining = &n
	}
	writeJSON(w, http.StatusOK, out)
}

// setSlots sets room rm's count of slots left to n (NotCounted: stop counting) for cred,
// as the API and the dashboard do: it drops the cached counters and logs who did it. The
// error wraps ErrConfig for a store that keeps no count.
func (h *Handler) setSlots(ctx context.Context, cred *credential, rm *waitingroom.Room, n int64) error {
	if err := rm.SetSlots(ctx, n); err != nil {
		return err
	}
	h.forget(rm.ID())
	logged := any("not counted")
	if n >= 0 {
		logged = n
	}
	h.log.Info("admin: slots set", "by", cred.name, "room", rm.ID(), "remaining", logged)
	return nil
}

// readSlots reads a slots document: the count to set (admission.NotCounted for null), or
// what is wrong with it.
func readSlots(body []byte) (int64, string) {
	const want = `send {"remaining": N}, N a whole number from 0 to %d, or {"remaining": null} to stop counting`
	var doc map[string]json.RawMessage
	if json.Unmarshal(body, &doc) != nil || doc == nil {
		return 0, fmt.Sprintf(want, admission.MaxSlots)
	}
	raw, ok := doc["remaining"]
	if !ok || len(doc) != 1 {
		return 0, fmt.Sprintf(want, admission.MaxSlots)
	}
	if string(raw) == "null" {
		return admission.NotCounted, ""
	}
	var n int64
	if json.Unmarshal(raw, &n) != nil || n < 0 || n > admission.MaxSlots {
		return 0, fmt.Sprintf(want, admission.MaxSlots)
	}
	return n, ""
}

// roomHistory answers GET /api/rooms/{id}/history?minutes=N (default 60, at most 48
// hours' worth): the room's minutes, oldest first; minutes nobody recorded are left out.
func (h *Handler) roomHistory(w http.ResponseWriter, r *http.Request) {
	id, ok := h.roomID(w, r)
	if !ok {
		return
	}
	minutes, most := 60, int(store.HistoryTTL/time.Minute)-60 // kept 49 h: ask for 48 at most
	if q := r.URL.Query().Get("minutes"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 || n > most {
			h.fail(w, r, credOf(r), http.StatusUnprocessableEntity, apiError{Code: "invalid_request", Field: "minutes",
				Message: fmt.Sprintf("minutes must be a whole number from 1 to %d", most)})
			return
		}
		minutes = n
	}
	rm, ok := h.lookup(r.Context(), id)
	if !ok {
		h.notFound(w, r, id)
		return
	}
	ms, err := rm.History(r.Context(), minutes)
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	out := make([]minuteJSON, len(ms))
	for i, m := range ms {
		out[i] = minuteJSON{
			Start: m.Start.UTC().Format(time.RFC3339), Joins: m.Joins, Admissions: m.Admissions,
			Abandonments: m.Abandonments, PeakWaiting: m.PeakWaiting, PeakActive: m.PeakActive,
			Waiting: m.Waiting, LongestWaitSeconds: m.LongestWait.Seconds(), P50WaitSeconds: m.P50Wait.Seconds(),
		}
	}
	writeJSON(w, http.StatusOK, struct {
		Minutes []minuteJSON `json:"minutes"`
	}{out})
}

// roomChanges answers GET /api/rooms/{id}/changes. A deleted room's trail is still
// served: it says who deleted it.
func (h *Handler) roomChanges(w http.ResponseWriter, r *http.Request) {
	id, ok := h.roomID(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), storeTimeout)
	defer cancel()
	changes, err := h.ctl.Changes(ctx, id)
	if err != nil {
		h.unavailable(w, r, err)
		return
	}
	if len(changes) == 0 {
		if _, ok := h.lookup(r.Context(), id); !ok {
			h.notFound(w, r, id)
			return
		}
	}
	out := make([]changeJSON, len(changes))
	for i, c := range changes {
		out[i] = changeJSON{
			Version:  c.Version,
			Previous: c.Previous,
			At:       c.At.UTC().Format(rfc3339Milli),
			By:       c.By,
			What:     c.What,
			Prior:    json.RawMessage("null"),
		}
		if c.Prior != nil && json.Valid(c.Prior) {
			out[i].Prior = c.Prior
		}
	}
	writeJSON(w, http.StatusOK, struct {
		Changes []changeJSON `json:"changes"`
	}{out})
}

// The JSON forms.

// roomJSON is a room as the API shows it.
type roomJSON struct {
	ID         string          `json:"id"`
	Version    int64           `json:"version"`
	Settings   json.RawMessage `json:"settings"`
	Stats      *statsJSON      `json:"stats"`
	StatsError string          `json:"stats_error,omitempty"`
}

// statsJSON is a room's live state (waitingroom.Snapshot).
type statsJSON struct {
	At         string `json:"at"` // the store's clock
	Active     int64  `json:"active"`
	Waiting    int64  `json:"waiting"`
	Admissions int64  `json:"admissions"` // since the room's epoch began
	Granted    int64  `json:"granted"`
	// AdmissionsLastMinute is what the rate limit counts: admissions in the last 60 s and
	// slots granted and not yet claimed.
	AdmissionsLastMinute int64 `json:"admissions_last_minute"`
	// LongestWaitSeconds is how long the earliest waiter has waited so far
	// (waitingroom.Snapshot.LongestWait); 0 when nobody waits.
	LongestWaitSeconds float64  `json:"longest_wait_seconds"`
	Wait               waitJSON `json:"wait"` // of a visitor arriving now
	// SlotsRemaining is the room's count of slots left (Room.SetSlots); null while it
	// counts none.
	SlotsRemaining *int64 `json:"slots_remaining"`
}

// slotsJSON is the body of PUT /api/rooms/{id}/slots, and its answer.
type slotsJSON struct {
	Remaining *int64 `json:"remaining"`
}

// waitJSON is the wait a visitor arriving now would be told.
type waitJSON struct {
	Known      bool     `json:"known"`
	Reason     string   `json:"reason,omitempty"`
	P25Seconds *float64 `json:"p25_seconds,omitempty"`
	P50Seconds *float64 `json:"p50_seconds,omitempty"`
	P75Seconds *float64 `json:"p75_seconds,omitempty"`
}

// minuteJSON is one minute of a room's history (waitingroom.HistoryMinute).
type minuteJSON struct {
	Start              string  `json:"start"`
	Joins              int64   `json:"joins"`
	Admissions         int64   `json:"admissions"`
	Abandonments       int64   `json:"abandonments"`
	PeakWaiting        int64   `json:"peak_waiting"`
	PeakActive         int64   `json:"peak_active"`
	Waiting            int64   `json:"waiting"`
	LongestWaitSeconds float64 `json:"longest_wait_seconds"`
	P50WaitSeconds     float64 `json:"p50_wait_seconds"`
}

// changeJSON is one entry of a room's trail (store.Change).
type changeJSON struct {
	Version  int64           `json:"version"`
	Previous int64           `json:"previous"`
	At       string          `json:"at"`
	By       string          `json:"by"`
	What     string          `json:"what"`
	Prior    json.RawMessage `json:"prior"`
}

// apiError is the body of every error answer, under "error".
type apiError struct {
	Code          string `json:"code"`
	Message       string `json:"message"`
	Field         string `json:"field,omitempty"`
	StoredVersion *int64 `json:"stored_version,omitempty"`
}

type errorBody struct {
	Error apiError `json:"error"`
}

const rfc3339Milli = "2006-01-02T15:04:05.000Z07:00"

// storeTimeout bounds the handler's own store calls (a Room's carry the room's timeout).
const storeTimeout = 2 * time.Second

// The rooms and their counters.

// view reads a room's version and settings as one pair: two loads could straddle a change.
func view(rm *waitingroom.Room) (int64, waitingroom.Config) {
	cfg, v := rm.Settings()
	return v, cfg
}

// roomView is room rm as the API shows it, with its counters st, and its version.
func (h *Handler) roomView(rm *waitingroom.Room, st statsResult) (roomJSON, int64, error) {
	v, cfg := view(rm)
	doc, err := waitingroom.EncodeConfig(cfg)
	if err != nil {
		return roomJSON{}, 0, err
	}
	out := roomJSON{ID: rm.ID(), Version: v, Settings: doc}
	if st.err != nil {
		out.StatsError = "store unavailable" // the cause is logged, not shown
		return out, v, nil
	}
	s := st.snap
	out.Stats = &statsJSON{
		At:     s.Now.UTC().Format(rfc3339Milli),
		Active: s.Active, Waiting: s.Waiting, Admissions: s.Admissions, Granted: s.Granted,
		AdmissionsLastMinute: s.Window, LongestWaitSeconds: s.LongestWait.Seconds(),
		Wait: waitJSON{Known: s.Wait.Known, Reason: s.Wait.Reason},
	}
	if s.Slots >= 0 {
		n := s.Slots
		out.Stats.SlotsRemaining = &n
	}
	if s.Wait.Known {
		secs := func(d time.Duration) *float64 { f := d.Seconds(); return &f }
		out.Stats.Wait.P25Seconds, out.Stats.Wait.P50Seconds, out.Stats.Wait.P75Seconds = secs(s.Wait.P25), secs(s.Wait.P50), secs(s.Wait.P75)
	}
	return out, v, nil
}

// writeRoom answers with room rm and its version as the ETag.
func (h *Handler) writeRoom(w http.ResponseWriter, r *http.Request, status int, rm *waitingroom.Room) {
	st := h.snapshots(r.Context(), []*waitingroom.Room{rm})[0]
	out, v, err := h.roomView(rm, st)
	if err != nil {
		h.failed(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(v))
	writeJSON(w, status, out)
}

func etag(v int64) string { return `"` + strconv.FormatInt(v, 10) + `"` }

// lookup returns room id, bringing the registry up to date first if it does not hold it:
// the room may have been created on another instance since the last refresh.
func (h *Handler) lookup(ctx context.Context, id string) (*waitingroom.Room, bool) {
	if rm, ok := h.reg.Room(id); ok {
		return rm, true
	}
	h.refresh(ctx)
	return h.reg.Room(id)
}

// refresh brings the registry up to date; it answers from what it holds if that fails.
func (h *Handler) refresh(ctx context.Context) {
	if err := h.reg.Refresh(ctx); err != nil {
		h.log.Warn("admin: rooms refresh failed", "err", err)
	}
}

// storedVersion is room id's stored settings version; 0 when it has none.
func (h *Handler) storedVersion(ctx context.Context, id string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	st, err := h.ctl.Settings(ctx, id)
	if err != nil || st == nil {
		return 0, err
	}
	return st.Version, nil
}

// maxStatsReads bounds the store calls one listing makes at once.
const maxStatsReads = 16

type statsResult struct {
	snap waitingroom.Snapshot
	err  error
}

// statsEntry caches one room's counters; mu is held while they are read, so requests that
// come meanwhile wait for that read instead of making their own.
type statsEntry struct {
	mu   sync.Mutex
	room *waitingroom.Room
	read time.Time // zero: never read
	statsResult
}

// snapshots returns the counters of rs, read at most maxStatsReads at a time.
func (h *Handler) snapshots(ctx context.Context, rs []*waitingroom.Room) []statsResult {
	out := make([]statsResult, len(rs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(len(rs), maxStatsReads) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(rs); i = int(next.Add(1) - 1) {
				out[i] = h.snapshot(ctx, rs[i])
			}
		})
	}
	wg.Wait()
	return out
}

// snapshot returns room rm's counters, read within the max age.
func (h *Handler) snapshot(ctx context.Context, rm *waitingroom.Room) statsResult {
	h.mu.Lock()
	e := h.stats[rm.ID()]
	if e == nil || e.room != rm {
		e = &statsEntry{room: rm}
		h.stats[rm.ID()] = e
	}
	h.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.read.IsZero() && time.Since(e.read) < h.maxAge {
		return e.statsResult
	}
	// Not the request's cancellation: the answer is shared, and the room bounds the call.
	e.snap, e.err = rm.Snapshot(context.WithoutCancel(ctx))
	e.read = time.Now()
	if e.err != nil {
		h.log.Warn("admin: reading a room's counters failed", "room", rm.ID(), "err", e.err)
	}
	return e.statsResult
}

// forget drops room id's cached counters: its settings changed, so may its wait.
func (h *Handler) forget(id string) {
	h.mu.Lock()
	delete(h.stats, id)
	h.mu.Unlock()
}

// prune drops the cached counters of rooms no longer listed.
func (h *Handler) prune(rs []*waitingroom.Room) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id := range h.stats {
		if !slices.ContainsFunc(rs, func(rm *waitingroom.Room) bool { return rm.ID() == id }) {
			delete(h.stats, id)
		}
	}
}

// changed logs a change and drops what it made stale.
func (h *Handler) changed(cred *credential, id, what string, version int64) {
	h.forget(id)
	h.log.Info("admin: room changed", "by", cred.name, "room", id, "what", what, "version", version)
}

// Requests.

// roomID returns the request's room ID, or answers 422.
func (h *Handler) roomID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !store.ValidRoom(id) {
		h.fail(w, r, credOf(r), http.StatusUnprocessableEntity, apiError{Code: "invalid_request", Field: "id",
			Message: "a room id is 1 to 64 of A-Z a-z 0-9 - _ ."})
		return "", false
	}
	return id, true
}

// mediaType checks the body's Content-Type (none is taken as JSON), or answers 415.
func (h *Handler) mediaType(w http.ResponseWriter, r *http.Request, accepted ...string) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return true
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil && slices.Contains(accepted, mt) {
		return true
	}
	h.fail(w, r, credOf(r), http.StatusUnsupportedMediaType, apiError{Code: "unsupported_media_type",
		Message: "send the body as " + strings.Join(accepted, " or ")})
	return false
}

// readBody reads the request's body, at most waitingroom.MaxConfigJSON bytes, or answers 422.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, waitingroom.MaxConfigJSON))
	if err == nil {
		return body, true
	}
	msg := "the request body could not be read"
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		msg = fmt.Sprintf("the request body is over %d bytes (64 KiB), the most a settings document or patch may be", waitingroom.MaxConfigJSON)
	}
	h.fail(w, r, credOf(r), http.StatusUnprocessableEntity, apiError{Code: "invalid_request", Message: msg})
	return nil, false
}

// precondition is a request's If-Match.
type precondition struct {
	set      bool    // If-Match was sent
	any      bool    // "*": any version of a room that exists
	versions []int64 // the versions its strong tags name; other tags match none
}

// single reports whether the precondition is exactly one version, which the store can
// check in the write itself.
func (p precondition) single() bool { return !p.any && len(p.versions) == 1 }

// matches reports whether a room at stored version v (0: none) meets the precondition.
func (p precondition) matches(v int64) bool {
	return v > 0 && (p.any || slices.Contains(p.versions, v))
}

// ifMatch parses the request's If-Match, or answers 422 for one it cannot read.
func (h *Handler) ifMatch(w http.ResponseWriter, r *http.Request) (precondition, bool) {
	p, err := parseIfMatch(r.Header.Values("If-Match"))
	if err != nil {
		h.fail(w, r, credOf(r), http.StatusUnprocessableEntity, apiError{Code: "invalid_request", Field: "If-Match",
			Message: `If-Match must be "*" or entity tags such as "3" (the ETag of a version)`})
		return precondition{}, false
	}
	return p, true
}

// parseIfMatch reads If-Match header values: "*" or a list of entity tags. A bare number
// (3) is taken as "3"; a weak tag (W/"3") never matches, as If-Match compares strongly.
func parseIfMatch(vals []string) (precondition, error) {
	if len(vals) == 0 {
		return precondition{}, nil
	}
	p := precondition{set: true}
	s := strings.Join(vals, ",")
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return p, nil
		}
		if s[0] == '*' {
			p.any, s = true, s[1:]
			continue
		}
		weak := strings.HasPrefix(s, "W/")
		if weak {
			s = s[2:]
		}
		var tag string
		if strings.HasPrefix(s, `"`) {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return precondition{}, errors.New("unterminated entity tag")
			}
			tag, s = s[1:1+end], s[2+end:]
		} else {
			end := strings.IndexAny(s, " \t,")
			if end < 0 {
				end = len(s)
			}
			tag, s = s[:end], s[end:]
			if weak || !digits(tag) {
				return precondition{}, errors.New("malformed entity tag")
			}
		}
		if s != "" && !strings.ContainsRune(" \t,", rune(s[0])) {
			return precondition{}, errors.New("malformed entity tag list")
		}
		if n, err := strconv.ParseInt(tag, 10, 64); !weak && err == nil && n > 0 && digits(tag) {
			p.versions = append(p.versions, n)
		}
	}
}

func digits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// Answers.

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"the answer could not be written"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// fail logs and answers a refused request.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, cred *credential, status int, e apiError) {
	by := ""
	if cred != nil {
		by = cred.name
	}
	level := slog.LevelInfo
	if status == http.StatusForbidden {
		level = slog.LevelWarn
	}
	h.log.Log(r.Context(), level, "admin: request refused", "by", by, "method", r.Method, "path", r.URL.Path,
		"status", status, "code", e.Code, "field", e.Field)
	writeJSON(w, status, errorBody{e})
}

func (h *Handler) notFound(w http.ResponseWriter, r *http.Request, id string) {
	h.fail(w, r, credOf(r), http.StatusNotFound, apiError{Code: "not_found", Message: fmt.Sprintf("no room %q", id)})
}

func (h *Handler) mismatch(w http.ResponseWriter, r *http.Request, stored int64) {
	msg := fmt.Sprintf("the room's settings are at version %d; read them again and retry", stored)
	if stored == 0 {
		msg = "the room does not exist"
	}
	h.fail(w, r, credOf(r), http.StatusPreconditionFailed, apiError{Code: "version_mismatch", Message: msg, StoredVersion: &stored})
}

// failed answers err of a settings or store call: the user's mistakes as 4xx, the rest as
// a generic 503, its cause only in the log.
func (h *Handler) failed(w http.ResponseWriter, r *http.Request, err error) {
	cred := credOf(r)
	if _, ok := errors.AsType[*waitingroom.ConfigError](err); ok {
		h.invalid(w, r, err, true)
		return
	}
	switch {
	case errors.Is(err, waitingroom.ErrInvalidRoom):
		h.fail(w, r, cred, http.StatusUnprocessableEntity, apiError{Code: "invalid_request", Field: "id",
			Message: "a room id is 1 to 64 of A-Z a-z 0-9 - _ ."})
		return
	case errors.Is(err, rooms.ErrNoRoom):
		h.notFound(w, r, r.PathValue("id"))
		return
	}
	h.unavailable(w, r, err)
}

// unavailable answers 503 for a failed store call: its cause is logged, never shown.
func (h *Handler) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	by := ""
	if cred := credOf(r); cred != nil {
		by = cred.name
	}
	h.log.Error("admin: store failed", "by", by, "method", r.Method, "path", r.URL.Path, "err", err)
	writeJSON(w, http.StatusServiceUnavailable, errorBody{apiError{Code: "store_unavailable",
		Message: "the settings store could not be reached; nothing was changed, try again"}})
}

// invalid answers 422 for err, a *waitingroom.ConfigError (else 503) of DecodeConfig or
// PatchConfig, which name fields as JSON does, or of Validate (goNames), which names them
// as Go does.
func (h *Handler) invalid(w http.ResponseWriter, r *http.Request, err error, goNames bool) {
	ce, ok := errors.AsType[*waitingroom.ConfigError](err)
	if !ok {
		h.failed(w, r, err)
		return
	}
	e := apiError{Code: "invalid_settings", Field: ce.Field, Message: ce.Problem}
	if goNames {
		e.Field, e.Message = waitingroom.ConfigJSONField(ce.Field), jsonProblem(ce.Problem)
	}
	if ce.Field == "" {
		e.Code = "invalid_request" // the document as a whole: not JSON, not an object, too long
	}
	h.fail(w, r, credOf(r), http.StatusUnprocessableEntity, e)
}

// goToJSON maps the Go names of Config's and Event's fields to their JSON names, for
// Validate's problems, which name fields as Go does.
var goToJSON = func() map[string]string {
	m := map[string]string{}
	ct := reflect.TypeFor[waitingroom.Config]()
	for i := range ct.NumField() {
		m[ct.Field(i).Name] = waitingroom.ConfigJSONField(ct.Field(i).Name)
	}
	et := reflect.TypeFor[waitingroom.Event]()
	for i := range et.NumField() {
		name := et.Field(i).Name
		if _, ok := m[name]; !ok {
			m[name] = strings.TrimPrefix(waitingroom.ConfigJSONField("Events[0]."+name), "events[0].")
		}
	}
	return m
}()

// jsonProblem rewrites the Go field names in a problem as their JSON names, whole words
// only and outside quoted text (an event's name stays as it is).
func jsonProblem(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == '"':
			q, err := strconv.QuotedPrefix(s[i:])
			if err != nil {
				q = s[i : i+1]
			}
			b.WriteString(q)
			i += len(q)
		case wordByte(c):
			j := i
			for j < len(s) && wordByte(s[j]) {
				j++
			}
			if name, ok := goToJSON[s[i:j]]; ok {
				b.WriteString(name)
			} else {
				b.WriteString(s[i:j])
			}
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

func wordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_'
}

// muxErrorWriter gives the mux's own 404 and 405 answers a JSON body; their status and
// headers (Allow) stay the mux's.
type muxErrorWriter struct {
	http.ResponseWriter
	replaced bool
}

func (m *muxErrorWriter) WriteHeader(status int) {
	var e apiError
	switch status {
	case http.StatusNotFound:
		e = apiError{Code: "not_found", Message: "no such endpoint"}
	case http.StatusMethodNotAllowed:
		e = apiError{Code: "method_not_allowed", Message: "allowed here: " + m.Header().Get("Allow")}
	default:
		m.ResponseWriter.WriteHeader(status)
		return
	}
	m.replaced = true
	writeJSON(m.ResponseWriter, status, errorBody{e})
}

func (m *muxErrorWriter) Write(b []byte) (int, error) {
	if m.replaced {
		return len(b), nil // the mux's text body
	}
	return m.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the writer underneath.
func (m *muxErrorWriter) Unwrap() http.ResponseWriter { return m.ResponseWriter }
