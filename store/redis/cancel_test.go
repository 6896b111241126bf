package redis_test

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/middleware"
	"github.com/waitingroom-go/waitingroom/store/redis"
)

// TestCanceledRequestsOnRedis puts the middleware, failing open, in front of a full room on a
// real Redis and sends 200 requests at once, each cancelled at a random moment, as clients
// that half-close their connections do. Nobody may be admitted (the room is full), so none
// may reach the app, whatever the moment; and a client's cancellation is no store failure,
// so none is reported. (Before ErrCanceled, 123 to 141 of 200 got through.)
func TestCanceledRequestsOnRedis(t *testing.T) {
	client := realClient(t)
	prefix := "wrcancel-" + randomHex(6)
	t.Cleanup(func() { deletePrefix(t, client, prefix) })
	st, err := redis.New(client, redis.WithPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	room, err := waitingroom.New("r", st, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1, SessionDuration: time.Hour},
		waitingroom.WithKeys(testKey))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := room.Enter(context.Background(), ""); err != nil || v.Outcome != waitingroom.Admitted {
		t.Fatalf("the one seat: %v, %v", v.Outcome, err)
	}
	var served, reported atomic.Int32
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		io.WriteString(w, "app")
	})
	h := middleware.Protect(room, app, middleware.WithFailOpen(true),
		middleware.WithErrorHandler(func(_ *http.Request, err error) {
			reported.Add(1)
			t.Errorf("reported as a store failure: %v", err)
		}))
	rng := rand.New(rand.NewPCG(1, 2))
	var wg sync.WaitGroup
	for range 200 {
		// Cancelled at once, or within about a round trip: before, during or after the call.
		d := time.Duration(rng.Int64N(int64(400 * time.Microsecond)))
		wg.Go(func() {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			time.AfterFunc(d, cancel)
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
		})
	}
	wg.Wait()
	if n := served.Load(); n != 0 {
		t.Errorf("%d of 200 cancelled requests reached the app of a full room", n)
	}
	if n := reported.Load(); n != 0 {
		t.Errorf("%d cancellations reported as store failures", n)
	}
}
