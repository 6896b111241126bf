package notify_test

import (
	"context"
	"log"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/notify"
	"github.com/waitingroom-go/waitingroom/rooms"
	"github.com/waitingroom-go/waitingroom/store/memory"
)

// The notifier of a registry's rooms: its hook goes to every room, and Run sends until the
// context ends.
func ExampleNew() {
	st := memory.New() // a redis.Store where instances share rooms
	var reg *rooms.Registry
	n, err := notify.New("https://hooks.slack.com/services/T000/B000/XXXX", st,
		func(id string) (*waitingroom.Room, bool) { return reg.Room(id) })
	if err != nil {
		log.Fatal(err)
	}
	reg, err = rooms.NewRegistry(st, rooms.WithRoomOptions(waitingroom.WithHook(n.Hook())))
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go n.Run(ctx)
	go reg.Watch(ctx, 0)
	// ... serve reg's rooms.
}
