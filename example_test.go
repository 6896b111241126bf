package waitingroom_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"golang.org/x/text/language"

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

// The README's vaccination slots: the room tells its queue what is left, and once nothing
// is, a newcomer is told so instead of queueing for nothing.
func ExampleRoom_TakeSlots() {
	ctx := context.Background()
	room, err := waitingroom.New("booking", memory.New(), waitingroom.Config{
		TotalActiveUsers: 200, NewUsersPerMinute: 100,
		CloseWhenSoldOut: true, // no place for newcomers once no slot is left
		Messages:         map[string]string{"en": "Second doses from 1 December.", "ja": "2回目の接種は12月1日からです。"},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := room.SetSlots(ctx, 2); err != nil { // bookings open: two appointments
		log.Fatal(err)
	}
	left, err := room.TakeSlots(ctx, 2) // both booked (never below 0; -1 gives one back)
	if err != nil {
		log.Fatal(err)
	}

	v, err := room.Enter(ctx, "") // a newcomer
	if err != nil {
		log.Fatal(err)
	}
	msg, _ := v.Status.Message.In(language.Japanese)
	fmt.Println(left, v.Outcome == waitingroom.Rejected, v.Status.SoldOut, v.Token == "", msg)
	// Output: 0 true true true 2回目の接種は12月1日からです。
}
