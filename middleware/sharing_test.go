package middleware_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/middleware"
	"github.com/waitingroom-go/waitingroom/store/memory"
	"github.com/waitingroom-go/waitingroom/token"
)

// sharedEnv is a room of capacity 1 behind the middleware with opts; get sends a request
// from client addr with the room's cookie value raw, and returns the status, the new
// cookie value ("" when none) and whether the site served it.
func sharedEnv(t *testing.T, opts ...middleware.Option) (room *waitingroom.Room, get func(addr, raw string) (int, string, bool)) {
	t.Helper()
	room, err := waitingroom.New("r", memory.New(), waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	h := middleware.Protect(room, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Served", "1")
	}), opts...)
	return room, func(addr, raw string) (int, string, bool) {
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = addr + ":1234"
		if raw != "" {
			req.AddCookie(&http.Cookie{Name: "wr_r", Value: raw})
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		mu.Lock()
		defer mu.Unlock()
		cookie := ""
		for _, c := range rec.Result().Cookies() {
			if c.Name == "wr_r" {
				cookie = c.Value
			}
		}
		return rec.Code, cookie, rec.Header().Get("X-Served") == "1"
	}
}

func byAddress(r *http.Request) string { return r.RemoteAddr[:len(r.RemoteAddr)-len(":1234")] }

// Issue 13, item 2: a pass handed to 1,000 clients admits its own client only when passes
// are bound; unbound, all 1,000 get in (the bearer-token behaviour the binding is for).
func TestPassBinding(t *testing.T) {
	for _, bound := range []bool{false, true} {
		t.Run(fmt.Sprintf("bound=%t", bound), func(t *testing.T) {
			var opts []middleware.Option
			if bound {
				opts = append(opts, middleware.WithPassBinding(byAddress))
			}
			room, get := sharedEnv(t, opts...)
			_, pass, served := get("10.0.0.1", "")
			if !served || pass == "" {
				t.Fatal("the first visitor was not admitted")
			}
			in := 0
			for i := range 1000 {
				if _, _, served := get(fmt.Sprintf("10.1.%d.%d", i/250, i%250), pass); served {
					in++
				}
			}
			if _, _, served := get("10.0.0.1", pass); !served {
				t.Errorf("the pass's own client was turned away")
			}
			st, err := room.Stats(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			want := 1000
			if bound {
				want = 0
			}
			if in != want || st.Active != 1 {
				t.Errorf("%d of 1,000 copies of the pass got in (store: %d active), want %d", in, st.Active, want)
			}
		})
	}
}

// A ticket bound to its client: another client's poll with it is a new join.
func TestTicketBinding(t *testing.T) {
	room, get := sharedEnv(t, middleware.WithPassBinding(byAddress))
	get("10.0.0.1", "") // fills the room
	_, ticket, served := get("10.0.0.2", "")
	if served || ticket == "" {
		t.Fatal("the second visitor should wait with a ticket")
	}
	_, other, _ := get("10.0.0.3", ticket)
	a, err1 := room.Codec().ParseTicket("r", ticket, time.Now())
	b, err2 := room.Codec().ParseTicket("r", other, time.Now())
	if err1 != nil || err2 != nil || a.Number == b.Number {
		t.Errorf("a copy of the ticket in another client's hands: tickets %d and %d (%v, %v), want a place of its own", a.Number, b.Number, err1, err2)
	}
}

// Sharing detection without binding: counted at the second client, refused past Limit.
func TestPassSharing(t *testing.T) {
	type report struct {
		clients int
		refused bool
	}
	var reports []report
	_, get := sharedEnv(t, middleware.WithPassSharing(middleware.PassSharing{
		Client: byAddress, Limit: 2,
		OnShared: func(_ *http.Request, _ token.Pass, clients int, refused bool) {
			reports = append(reports, report{clients, refused})
		},
	}))
	_, pass, _ := get("10.0.0.1", "")
	if _, _, served := get("10.0.0.2", pass); !served {
		t.Errorf("the second client (within the limit of 2) was turned away")
	}
	if _, _, served := get("10.0.0.3", pass); served {
		t.Errorf("the third client was let in past the limit of 2")
	}
	if _, _, served := get("10.0.0.1", pass); !served {
		t.Errorf("the first client was turned away")
	}
	if len(reports) != 2 || reports[0] != (report{2, false}) || reports[1] != (report{3, true}) {
		t.Errorf("reports %+v, want the second client counted and the third refused", reports)
	}
}
