package middleware

import (
	"context"
	"net/http"
	"net/netip"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/token"
)

// LimitedClients returns how many clients the join limit of h (from Protect) remembers.
func LimitedClients(h http.Handler) int { return h.(*handler).limits.clients() }

// ClientKey is the join limit's default key.
func ClientKey(r *http.Request, trusted []netip.Prefix) string {
	return clientKey(clientAddr(r, trusted))
}

// SetRevive replaces the revival of sessions of h (from Protect; Room.Revive by default),
// for the tests of the grace that need a revival to succeed or fail on cue.
func SetRevive(h http.Handler, f func(context.Context, token.Pass) (waitingroom.Visit, error)) {
	h.(*handler).revive = func(ctx context.Context, p token.Pass, _ ...waitingroom.EnterOption) (waitingroom.Visit, error) {
		return f(ctx, p)
	}
}
