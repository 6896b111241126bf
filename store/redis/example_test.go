package redis_test

import (
	"log"
	"net/http"
	"os"

	goredis "github.com/redis/go-redis/v9"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/middleware"
	redisstore "github.com/waitingroom-go/waitingroom/store/redis"
	"github.com/waitingroom-go/waitingroom/token"
)

// app is the site the room protects.
var app http.Handler = http.NotFoundHandler()

// The README's Redis set-up: one room shared by every instance of an app. The example needs
// a Redis server and WAITINGROOM_KEY, so go test compiles it but does not run it.
func ExampleNew() {
	client := goredis.NewClient(&goredis.Options{
		Addr:                  "127.0.0.1:6379",
		ContextTimeoutEnabled: true, // required: the room's store timeout must bound every call
	})
	st, err := redisstore.New(client) // or redisstore.New(client, redisstore.WithPrefix("myapp"))
	if err != nil {
		log.Fatal(err) // a client without ContextTimeoutEnabled, say
	}
	keys, err := token.ParseKeys(os.Getenv("WAITINGROOM_KEY")) // the same keys on every instance
	if err != nil {
		log.Fatal(err)
	}
	room, err := waitingroom.New("booking", st, waitingroom.Config{
		TotalActiveUsers: 200, NewUsersPerMinute: 100,
	}, waitingroom.WithKeys(keys...))
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", middleware.Protect(room, app)))
}
