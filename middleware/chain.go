package middleware

import (
	"net/http"

	"github.com/waitingroom-go/waitingroom"
)

// New returns the room's middleware in the shape routers and chains take,
// func(http.Handler) http.Handler: chi's Use, alice.New, or a call by hand. Each handler it
// wraps is served as Protect(room, next, opts...) serves next, except that all of them share
// one join limit (WithJoinLimit): a client's joins count against one bucket whichever of the
// wrapped handlers they reach. The options are the same as Protect's.
func New(room *waitingroom.Room, opts ...Option) func(http.Handler) http.Handler {
	shared := Protect(room, nil, opts...).(*handler)
	return func(next http.Handler) http.Handler {
		h := *shared
		h.next = next
		return &h
	}
}
