package waitingroom_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/store/memory"
)

// The README's scheduled event: bookings open at 9:00 with a pre-queue from 8:30. A visitor
// who comes at 8:45 gets a place and is told the booking opens in 15 minutes.
func ExampleRoom_AddEvent() {
	// The store's clock decides when the event begins; for this example it reads 8:45.
	nine := time.Date(2026, time.November, 26, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return nine.Add(-15 * time.Minute) }
	room, err := waitingroom.New("booking", memory.New(memory.WithClock(clock)), waitingroom.Config{
		TotalActiveUsers: 200, NewUsersPerMinute: 100,
	}, waitingroom.WithClock(clock))
	if err != nil {
		log.Fatal(err)
	}

	err = room.AddEvent(waitingroom.Event{
		Name:                "vaccine bookings",
		PrequeueStart:       nine.Add(-30 * time.Minute), // optional: queue from 8:30
		Start:               nine,
		End:                 nine.Add(4 * time.Hour),
		ShuffleAtEventStart: true,                        // the pre-queue in a random order
		TotalActiveUsers:    500, NewUsersPerMinute: 300, // optional overrides, both or neither;
		// also SessionDuration, DisableSessionRenewal, QueueingMethod (nil/zero: the room's own)
	})
	if err != nil {
		log.Fatal(err) // overlapping events, an end before the start, ...
	}

	v, err := room.Enter(context.Background(), "") // a visitor without a ticket
	if err != nil {
		log.Fatal(err) // the store failed
	}
	fmt.Println(v.Outcome == waitingroom.Waiting, v.Status.EventPrequeueing, v.Status.TimeUntilEventStart)
	// Output: true true 15m0s
}
