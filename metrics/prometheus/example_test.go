package wrprom_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/waitingroom-go/waitingroom"
	wrprom "github.com/waitingroom-go/waitingroom/metrics/prometheus"
	"github.com/waitingroom-go/waitingroom/rooms"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/memory"
)

// The rooms of a registry on /metrics of the admin listener, apart from the visitors'.
func Example() {
	reg, err := rooms.NewRegistry(memory.New()) // in production: the Redis store, and reg.Watch
	if err != nil {
		log.Fatal(err)
	}
	cfg := waitingroom.Config{TotalActiveUsers: 100, NewUsersPerMinute: 50}
	if _, _, err := reg.Put(context.Background(), "shop", cfg, 0, store.Change{By: "example"}); err != nil {
		log.Fatal(err)
	}

	c, err := wrprom.New(reg.Rooms) // the rooms the registry holds at each scrape
	if err != nil {
		log.Fatal(err)
	}
	prometheus.MustRegister(c)
	admin := http.NewServeMux()
	admin.Handle("GET /metrics", promhttp.Handler())
	// go http.ListenAndServe("127.0.0.1:9100", admin)

	// What a scrape sees of the room, in part.
	rec := httptest.NewRecorder()
	admin.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for line := range strings.Lines(rec.Body.String()) {
		if strings.HasPrefix(line, "waitingroom_capacity{") || strings.HasPrefix(line, "waitingroom_waiting{") {
			fmt.Print(line)
		}
	}
	// Output:
	// waitingroom_capacity{room="shop"} 100
	// waitingroom_waiting{room="shop"} 0
}
