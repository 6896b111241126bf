// Package store defines what a waiting room keeps outside the process: ticket numbers, the
// admission cursor, liveness counters, sessions and the rate window of every room.
//
// Each Store method is one atomic operation (one lock, one Lua call) and costs one round
// trip. A Store is the time authority: every answer carries the store's clock, and all
// admission decisions are made on it, so app instances with skewed clocks agree.
//
// Implementations: store/memory (one process) and store/redis (many instances). Every
// implementation must pass store/storetest.Run.
package store

import (
	"context"
	"errors"

	"github.com/waitingroom-go/waitingroom/admission"
)

// Store keeps the shared state of many rooms, each named by an ID. Each room moves as
// admission.Room says; Limits arrive with each call, so a change applies at once.
//
// A returned error is for system failures only (unreachable, timeout, context cancelled); an
// unknown ticket or session is an ordinary answer, never an error.
type Store interface {
	// Join gives a visitor the next ticket, then admits in ticket order what the limits
	// allow. The visitor is Admitted at once when nobody live waits ahead and there is room.
	Join(ctx context.Context, room string, l admission.Limits) (Result, error)

	// Poll counts a waiter's visit: it keeps the place live, admits what the limits allow and
	// claims the waiter's slot if it was granted. A ticket whose place is gone (abandoned,
	// unclaimed grant, released, unknown, or of a later epoch) is replaced by a new ticket at
	// the back: Result.Requeued is then true and Result.Ticket is the new number.
	//
	// The caller passes only tickets it has verified (signed by the room, not expired), so a
	// ticket of an earlier epoch proves that the store lost the room within the hold: its
	// holder retakes its place ahead of the new epoch's queue (see package admission), and
	// Result.Epoch is then the ticket's own.
	Poll(ctx context.Context, room string, t Ref, l admission.Limits) (Result, error)

	// Renew extends an active session to l.Session from now (when l.Renewal; never to less
	// than it had) and reports whether it is still active. A session that ended or is unknown is Active false, except
	// one of an earlier epoch: the caller verified its pass, so the store lost it, and it is
	// counted again.
	Renew(ctx context.Context, room string, s Ref, l admission.Limits) (Renewal, error)

	// Revive brings back session s if it has ended and the room has room for it, as
	// admission.Room.Revive says: for a visitor whose pass ran out just before a form was
	// sent. The caller passes only passes it has verified. A session still active is
	// renewed.
	Revive(ctx context.Context, room string, s Ref, l admission.Limits) (Renewal, error)

	// Release ends a session (or an unclaimed grant) at once; its slot is free for the next
	// admission. Releasing an unknown session is not an error.
	Release(ctx context.Context, room string, s Ref) error

	// Stats reads a room's counters. It admits nobody and creates no room; an unknown room
	// has zero counters.
	Stats(ctx context.Context, room string, l admission.Limits) (Stats, error)
}

// Ref names a ticket or a session (see admission.Ref).
type Ref = admission.Ref

// Result is the answer to Join and Poll (see admission.Result).
type Result = admission.Result

// Renewal is the answer to Renew.
type Renewal = admission.Renewal

// Stats are a room's counters at the store's Now.
type Stats = admission.Stats

// Errors shared by stores.
var (
	// ErrInvalidRoom is returned for an empty room ID or one with characters a key or a
	// cookie cannot carry. Valid: 1 to 64 of A-Z a-z 0-9 - _ .
	ErrInvalidRoom = errors.New("invalid room id: want 1 to 64 of A-Z a-z 0-9 - _ .")
)

// ValidRoom reports whether id is a usable room ID.
func ValidRoom(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
