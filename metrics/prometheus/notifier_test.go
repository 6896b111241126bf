package wrprom_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/waitingroom-go/waitingroom"
	wrprom "github.com/waitingroom-go/waitingroom/metrics/prometheus"
	"github.com/waitingroom-go/waitingroom/notify"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/memory"
)

// A notifier whose queue overflowed says so in its metrics.
func TestNotifierCollector(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	var rm *waitingroom.Room
	n, err := notify.New("http://127.0.0.1:1/hook", st, func(string) (*waitingroom.Room, bool) { return rm, true },
		notify.WithQueue(1), notify.WithTick(0))
	if err != nil {
		t.Fatal(err)
	}
	rm, err = waitingroom.New("forms", st, waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1}, waitingroom.WithHook(n.Hook()))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // nobody delivers: one queued, two dropped
		c, v := rm.Settings()
		c.TotalActiveUsers = 2 + i
		if _, err := rm.Update(ctx, c, v, store.Change{By: "ops", What: "patch"}); err != nil {
			t.Fatal(err)
		}
	}
	n.Check(ctx)
	c, err := wrprom.NewNotifierCollector(n)
	if err != nil {
		t.Fatal(err)
	}
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	want := `
# HELP waitingroom_notifications_total Notifications by outcome: sent (a 2xx answer), failed (given up after the last try, or refused with a 4xx), dropped (the delivery queue was full).
# TYPE waitingroom_notifications_total counter
waitingroom_notifications_total{outcome="dropped"} 2
waitingroom_notifications_total{outcome="failed"} 0
waitingroom_notifications_total{outcome="sent"} 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "waitingroom_notifications_total"); err != nil {
		t.Fatal(err)
	}
	if _, err := wrprom.NewNotifierCollector(nil); err == nil {
		t.Fatal("a nil notifier was taken")
	}
}
