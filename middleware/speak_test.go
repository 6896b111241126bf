package middleware_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/middleware"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/memory"
	redisstore "github.com/waitingroom-go/waitingroom/store/redis"
	"github.com/waitingroom-go/waitingroom/store/storetest"
	"github.com/waitingroom-go/waitingroom/token"
)

// Speaking to the queue across instances: an operator sets a message (Room.Update, as the
// admin API does) and the host a count of slots on instance A; a waiter whose page polls
// instance B reads both in its next JSON status, in its language, with the one store call
// that poll makes. Once on a shared memory store, once on a real Redis with two clients.
func TestSpeakToTheQueueAcrossInstances(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		clock := storetest.NewClock(t0)
		s := memory.New(memory.WithClock(clock.Now))
		speakAcrossInstances(t, clock, s, s)
	})
	t.Run("redis", func(t *testing.T) {
		addr := os.Getenv("WAITINGROOM_REDIS_ADDR")
		if addr == "" {
			t.Skip("set WAITINGROOM_REDIS_ADDR=127.0.0.1:6379 to run against a real Redis (keys use a prefix of their own)")
		}
		b := make([]byte, 6)
		rand.Read(b)
		prefix := "wrtest-" + hex.EncodeToString(b)
		clock := storetest.NewClock(t0)
		instance := func() store.Store {
			c := goredis.NewClient(&goredis.Options{Addr: addr, ContextTimeoutEnabled: true})
			t.Cleanup(func() { c.Close() })
			// The servers' clock cannot be set: the store passes the test's.
			s, err := redisstore.New(c, redisstore.WithPrefix(prefix), redisstore.WithClock(clock.Now))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		t.Cleanup(func() {
			c := goredis.NewClient(&goredis.Options{Addr: addr})
			defer c.Close()
			ctx := context.Background()
			iter := c.Scan(ctx, 0, prefix+":*", 1000).Iterator() // the test's own keys
			for iter.Next(ctx) {
				c.Del(ctx, iter.Val())
			}
		})
		speakAcrossInstances(t, clock, instance(), instance())
	})
}

func speakAcrossInstances(t *testing.T, clock *storetest.Clock, storeA, storeB store.Store) {
	key, err := token.GenerateKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	countB := &countingStore{Store: storeB, calls: calls{}}
	mk := func(s store.Store) *waitingroom.Room {
		r, err := waitingroom.New("vaccines", s, oneAtATime(), waitingroom.WithClock(clock.Now), waitingroom.WithKeys(key),
			waitingroom.WithStoreTimeout(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	a, b := mk(storeA), mk(countB)
	ctx := context.Background()
	ha, hb := middleware.Protect(a, &app{}), middleware.Protect(b, &app{})
	var first, waiter visitor
	if resp := first.get(ha, "/"); resp.body != "app" {
		t.Fatalf("the first visitor: %d %q", resp.StatusCode, resp.body)
	}
	ja := func(r *http.Request) { r.Header.Set("Accept-Language", "ja") }
	resp := waiter.get(hb, "/", accept("application/json"), ja)
	st := decodeStatus(t, resp.body)
	if st["inWaitingRoom"] != true || st["message"] != nil || st["slotsRemaining"] != nil {
		t.Fatalf("the waiter on B before anything is said: %s", resp.body)
	}

	cfg := a.Config()
	cfg.Messages = map[string]string{"en": "Today's slots are nearly gone.", "ja": "本日の予約枠は残りわずかです。"}
	if _, err := a.Update(ctx, cfg, a.Version(), store.Change{By: "ops", What: "patch"}); err != nil {
		t.Fatal(err)
	}
	if err := a.SetSlots(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if left, err := a.TakeSlots(ctx, 2); err != nil || left != 5 {
		t.Fatalf("TakeSlots(2) = %d, %v; want 5", left, err)
	}

	clock.Advance(20 * time.Second) // the waiter's next poll, a refresh later
	countB.take()
	resp = waiter.get(hb, "/", accept("application/json"), ja)
	if got := countB.take(); !maps.Equal(got, calls{"Poll": 1}) {
		t.Errorf("B's answer made store calls %v, want the poll alone", got)
	}
	st = decodeStatus(t, resp.body)
	if st["message"] != "本日の予約枠は残りわずかです。" || st["slotsRemaining"] != 5.0 || st["slotsLeft"] != 5.0 || st["inWaitingRoom"] != true {
		t.Errorf("the waiter's next poll on B: %s; want the Japanese message and 5 slots", resp.body)
	}
	if b.Version() != a.Version() {
		t.Errorf("B runs by version %d, A stored %d", b.Version(), a.Version())
	}
}

// A room that closes when sold out, with no slot left: a newcomer gets an honest closed
// page in its language (503, Retry-After, no cookie, no place); the waiters' next poll
// says 0 left, with the room's message and a note that they may not get one.
func TestSoldOut(t *testing.T) {
	e := newEnv(t)
	cfg := oneAtATime()
	cfg.CloseWhenSoldOut = true
	cfg.Messages = map[string]string{"en": "All appointments for this week are booked.", "ja": "今週の予約はすべて埋まりました。"}
	room := e.room("r", cfg)
	h := e.protect(room, &app{}, middleware.WithPages(middleware.Pages{Location: time.UTC}))
	var first, waiter visitor
	first.get(h, "/")
	waiter.get(h, "/")
	if err := room.SetSlots(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	e.calls.take()

	for _, tt := range []struct {
		lang, title, text, message string
	}{
		{"en", "Fully booked", "Every place has been taken, so nobody new can join the queue", "All appointments for this week are booked."},
		{"ja", "予約枠はすべて埋まりました", "新たに順番待ちに加わることはできません", "今週の予約はすべて埋まりました。"},
		{"zh-CN", "名额已满", "无法再加入排队", "All appointments for this week are booked."}, // no Chinese message: English
	} {
		t.Run("newcomer/"+tt.lang, func(t *testing.T) {
			var v visitor
			resp := v.get(h, "/", func(r *http.Request) { r.Header.Set("Accept-Language", tt.lang) })
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
				t.Errorf("status %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
			for _, want := range []string{"<h1 id=\"wr-heading\">" + tt.title + "</h1>", tt.text, tt.message} {
				if !strings.Contains(resp.body, want) {
					t.Errorf("the page lacks %q", want)
				}
			}
			if tt.lang == "zh-CN" && !strings.Contains(resp.body, `<span id="wr-message" lang="en">`) {
				t.Errorf("an English message on a Chinese page does not say its language")
			}
			if c := lastCookie(resp, "wr_r"); c != nil {
				t.Errorf("a cookie %q for a visitor given no place", c.Raw)
			}
			if strings.Contains(resp.body, `"refresh":`) && !strings.Contains(resp.body, `"refresh":0`) {
				t.Errorf("the sold-out page polls")
			}
			e.wantCalls(calls{"Join": 1})
		})
	}
	var v visitor
	resp := v.get(h, "/", accept("application/json"))
	st := decodeStatus(t, resp.body)
	if resp.StatusCode != http.StatusServiceUnavailable || st["soldOut"] != true || st["refreshIntervalSeconds"] != 0.0 ||
		st["slotsRemaining"] != 0.0 || st["slotsLeft"] != 0.0 || st["message"] != "All appointments for this week are booked." || lastCookie(resp, "wr_r") != nil {
		t.Errorf("a newcomer's JSON: %d %s", resp.StatusCode, resp.body)
	}
	if snap, err := room.Stats(context.Background()); err != nil || snap.Waiting != 1 || snap.Active != 1 {
		t.Errorf("after the newcomers: %d waiting, %d active, %v; want the room as it was (1, 1)", snap.Waiting, snap.Active, err)
	}
	e.calls.take()

	// The waiter's page polls with the texts: told, place kept.
	e.clock.Advance(20 * time.Second)
	resp = waiter.get(h, "/", accept("application/json"), func(r *http.Request) {
		r.Header.Set(middleware.PageHeader, "texts")
		r.Header.Set("Accept-Language", "ja")
	})
	var doc struct {
		Room map[string]any `json:"cfWaitingRoom"`
		Page map[string]any `json:"waitingRoomPage"`
	}
	if err := json.Unmarshal([]byte(resp.body), &doc); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || doc.Room["soldOut"] != nil || doc.Room["slotsRemaining"] != 0.0 || doc.Room["usersAhead"] != 0.0 ||
		doc.Room["message"] != "今週の予約はすべて埋まりました。" || doc.Room["refreshIntervalSeconds"] != 20.0 {
		t.Errorf("the waiter's poll: %d %s", resp.StatusCode, resp.body)
	}
	if doc.Page["slots"] != "残り0枠" || !strings.HasPrefix(doc.Page["note"].(string), "予約枠はすべて埋まりました。") ||
		!strings.Contains(doc.Page["announce"].(string), "残り0枠") || doc.Page["announceMessage"] != "サイトからのお知らせ: 今週の予約はすべて埋まりました。" {
		t.Errorf("the waiter's page texts: %v", doc.Page)
	}
	e.wantCalls(calls{"Poll": 1})
}

// The host's Announce comes first, part by part; the room's message and count fill in
// what it leaves out.
func TestAnnouncePrecedence(t *testing.T) {
	for _, tt := range []struct {
		name        string
		announce    middleware.Announcement
		message     any
		slots       any
		messageLang any
	}{
		{"the host says nothing", middleware.Announcement{}, "Bring your card.", 9.0, nil},
		{"the host's message", middleware.Announcement{Message: "Host"}, "Host", 9.0, nil},
		{"the host's count", middleware.Announcement{SlotsLeft: 3, ShowSlots: true}, "Bring your card.", 3.0, nil},
		{"both the host's", middleware.Announcement{Message: "Host", SlotsLeft: 0, ShowSlots: true}, "Host", 0.0, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := oneAtATime()
			cfg.Messages = map[string]string{"en-GB": "Bring your card."}
			room := e.room("r", cfg)
			if err := room.SetSlots(context.Background(), 9); err != nil {
				t.Fatal(err)
			}
			h, v := fullRoom(t, e, cfg, middleware.WithPages(middleware.Pages{
				Announce: func(*http.Request) middleware.Announcement { return tt.announce },
			}))
			e.clock.Advance(20 * time.Second)
			resp := v.get(h, "/", accept("application/json"), func(r *http.Request) { r.Header.Set(middleware.PageHeader, "texts") })
			var doc struct {
				Room map[string]any `json:"cfWaitingRoom"`
				Page map[string]any `json:"waitingRoomPage"`
			}
			if err := json.Unmarshal([]byte(resp.body), &doc); err != nil {
				t.Fatal(err)
			}
			if doc.Room["message"] != tt.message || doc.Room["slotsLeft"] != tt.slots || doc.Room["slotsRemaining"] != tt.slots {
				t.Errorf("JSON %s; want message %v, slots %v", resp.body, tt.message, tt.slots)
			}
			if doc.Page["messageLang"] != tt.messageLang {
				t.Errorf("messageLang %v, want %v (en-GB on an English page is English enough)", doc.Page["messageLang"], tt.messageLang)
			}
		})
	}
}

// The test stores pass slot counts on (store.Slots), counted.

func (s *countingStore) SetSlots(ctx context.Context, room string, n int64) error {
	s.add("SetSlots")
	return s.Store.(store.Slots).SetSlots(ctx, room, n)
}

func (s *countingStore) TakeSlots(ctx context.Context, room string, n int64) (int64, error) {
	s.add("TakeSlots")
	return s.Store.(store.Slots).TakeSlots(ctx, room, n)
}

func (s *failingStore) SetSlots(ctx context.Context, room string, n int64) error {
	if err := s.fail(ctx); err != nil {
		return err
	}
	return s.Store.(store.Slots).SetSlots(ctx, room, n)
}

func (s *failingStore) TakeSlots(ctx context.Context, room string, n int64) (int64, error) {
	if err := s.fail(ctx); err != nil {
		return 0, err
	}
	return s.Store.(store.Slots).TakeSlots(ctx, room, n)
}
