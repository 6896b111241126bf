package middleware_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/middleware"
	"github.com/waitingroom-go/waitingroom/store/memory"
	"github.com/waitingroom-go/waitingroom/token"
)

// discard is a reusable ResponseWriter, so the benchmarks measure the middleware, not the
// recorder.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

var benchKey = token.HMACKey{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")}

func benchRoom(b *testing.B, capacity int) *waitingroom.Room {
	room, err := waitingroom.New("bench", memory.New(), waitingroom.Config{
		TotalActiveUsers: capacity, NewUsersPerMinute: capacity, SessionDuration: time.Hour,
		RenewInterval: 30 * time.Minute,
	}, waitingroom.WithKeys(benchKey))
	if err != nil {
		b.Fatal(err)
	}
	return room
}

func benchRequest(cookie string) *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "http://example.test/", nil)
	if cookie != "" {
		r.AddCookie(&http.Cookie{Name: "wr_bench", Value: cookie})
	}
	return r
}

// benchJSON measures h answering a request with cookie that asks for JSON.
func benchJSON(b *testing.B, h http.Handler, cookie string) {
	r := benchRequest(cookie)
	r.Header.Set("Accept", "application/json")
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})

// BenchmarkAdmittedRequest is the hot path: a visitor with a pass. Compare it with
// BenchmarkPassVerifyJWT, the cost of verifying the same pass with golang-jwt alone.
func BenchmarkAdmittedRequest(b *testing.B) { benchAdmitted(b) }

// benchAdmitted measures a request with a pass through the middleware built with opts.
func benchAdmitted(b *testing.B, opts ...middleware.Option) {
	room := benchRoom(b, 1)
	v, err := room.Enter(context.Background(), "")
	if err != nil || v.Outcome != waitingroom.Admitted {
		b.Fatal(v.Outcome, err)
	}
	h := middleware.Protect(room, ok, opts...)
	r := benchRequest(v.Token)
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
	if len(w.h) != 0 {
		b.Fatalf("admitted request set headers: %v", w.h)
	}
}

// BenchmarkPassVerifyJWT verifies the same pass with golang-jwt directly: the baseline.
func BenchmarkPassVerifyJWT(b *testing.B) {
	room := benchRoom(b, 1)
	v, err := room.Enter(context.Background(), "")
	if err != nil {
		b.Fatal(err)
	}
	key := passKey(benchKey.Secret)
	p := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithAudience("bench"), jwt.WithExpirationRequired())
	keyFunc := func(*jwt.Token) (any, error) { return key, nil }
	b.ReportAllocs()
	for b.Loop() {
		var c jwt.RegisteredClaims
		if _, err := p.ParseWithClaims(v.Token, &c, keyFunc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWaitingPoll is a waiting visitor's poll that reaches the store (one round trip)
// and gets a fresh ticket and the JSON status.
func BenchmarkWaitingPoll(b *testing.B) {
	room := benchRoom(b, 1)
	room.Enter(context.Background(), "")
	v, err := room.Enter(context.Background(), "")
	if err != nil || v.Outcome != waitingroom.Waiting {
		b.Fatal(v.Outcome, err)
	}
	cfg := room.Config()
	cfg.RefreshInterval, cfg.QueueHold, cfg.ArrivalGrace = time.Second, time.Hour, time.Second
	room.SetConfig(cfg)
	// Each poll counts: the ticket says it was last updated long ago.
	tk, _ := room.Codec().ParseTicket("bench", v.Token, time.Now())
	tk.LastUpdated = tk.LastUpdated.Add(-time.Minute)
	raw, _ := room.Codec().SignTicket(tk)
	h := middleware.Protect(room, ok)
	benchJSON(b, h, raw)
}

// BenchmarkEarlyPoll is a poll sooner than the refresh interval: answered from the ticket.
func BenchmarkEarlyPoll(b *testing.B) {
	room := benchRoom(b, 1)
	room.Enter(context.Background(), "")
	v, _ := room.Enter(context.Background(), "")
	h := middleware.Protect(room, ok)
	benchJSON(b, h, v.Token)
}

// BenchmarkJoin is a new visitor taking a place in a full room.
func BenchmarkJoin(b *testing.B) {
	room := benchRoom(b, 1)
	room.Enter(context.Background(), "")
	h := middleware.Protect(room, ok)
	benchJSON(b, h, "")
}

// passKey derives the pass key as package token does (HMAC-SHA256 of the label).
func passKey(secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("waitingroom pass v1"))
	return m.Sum(nil)
}
