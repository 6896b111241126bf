package middleware

import (
	"net/http"
	"net/netip"
)

// LimitedClients returns how many clients the join limit of h (from Protect) remembers.
func LimitedClients(h http.Handler) int { return h.(*handler).limits.clients() }

// ClientKey is the join limit's default key.
func ClientKey(r *http.Request, trusted []netip.Prefix) string {
	return clientKey(clientAddr(r, trusted))
}
