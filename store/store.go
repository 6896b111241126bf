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
	"strconv"
	"strings"
	"time"

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

// Settings are a room's stored settings (see admission.Settle).
type Settings = admission.Settings

// Control is what a store keeps for the control plane: each room's settings as a versioned
// document, a bounded trail of their changes, and the list of rooms an operator created.
// Both stores implement it. Each method is one atomic operation on its room; a change of a
// room's settings applies to that room's next operation on every instance (the store runs
// by the stored version, see admission.Settle).
type Control interface {
	// Settings reads room's stored settings: nil when it has none.
	Settings(ctx context.Context, room string) (*Settings, error)
	// PutSettings stores s's limits and document as room's next version, if the stored
	// version is ifVersion (0: none stored; AnyVersion: whatever it is), records the
	// change and lists the room. It returns the new version, or a *VersionError.
	PutSettings(ctx context.Context, room string, s Settings, ifVersion int64, c Change) (int64, error)
	// DeleteSettings removes room's settings and unlists it, if the stored version is
	// ifVersion (AnyVersion: whatever it is); the trail keeps the deletion. The room's
	// visitors' state lapses as an idle room's does. Deleting a room without settings
	// returns a *VersionError with Stored 0.
	DeleteSettings(ctx context.Context, room string, ifVersion int64, c Change) error
	// Changes returns room's recent changes, newest first: at most MaxChanges.
	Changes(ctx context.Context, room string) ([]Change, error)
	// ListRooms lists the rooms created through PutSettings (not those only seeded by a Room's
	// code) with their versions, and the generation (see Generation).
	ListRooms(ctx context.Context) (gen int64, rooms map[string]int64, err error)
	// Generation is a number that changes whenever a listed room's settings change, is
	// created or deleted: one cheap read, for instances that watch once a second.
	Generation(ctx context.Context) (int64, error)
	// Touch restarts the expiry (SettingsTTL) of the settings, trail and listing of rooms,
	// and of the room list: what instances that hold rooms call now and then (hourly).
	Touch(ctx context.Context, rooms []string) error
	// RoomKeys stores k as the fingerprints of room's keys if the store has none (or
	// replace), and returns what it holds after: k, or another instance's.
	RoomKeys(ctx context.Context, room string, k Keys, replace bool) (Keys, error)
	// Revoke records that session s of room ended before its pass expires (until): every
	// instance learns of it from Revocations and refuses the pass at once. The log is
	// shared by the store's rooms and keeps the latest MaxRevocations.
	Revoke(ctx context.Context, room string, s Ref, until time.Time) error
	// Revocations returns what was revoked after cursor ("": the start of the log as it is
	// kept), oldest first, and the cursor to pass next time.
	Revocations(ctx context.Context, cursor string) ([]Revocation, string, error)
}

// Revocation is a session that ended before its pass expires.
type Revocation struct {
	Room    string
	Session Ref
	Until   time.Time // the pass's expiry: after it the pass is refused anyway
}

// MaxRevocations bounds the revocation log: the revocations of a few seconds of releases
// at the highest rates; an instance that falls further behind falls back to the renewal
// bound (a released pass is refused at its next renewal).
const MaxRevocations = 100_000

// Keys are the fingerprints of the keys a room's instances sign and verify with (see
// token.Prints): never the keys. Instances compare theirs with them before serving the
// room, so that one started with other keys says so instead of turning every visitor of
// the others away.
type Keys struct {
	Signer string            `json:"signer"` // the ID of the key tickets are signed with
	Prints map[string]string `json:"prints"` // key ID -> fingerprint
}

// Change is one entry of a room's settings trail.
type Change struct {
	Version  int64     // the version it made; 0 for a deletion
	Previous int64     // the version it replaced; 0 for a creation
	At       time.Time // the store's time (set by the store)
	By       string    // who: an admin token's name, "code" for a Room's own settings
	What     string    // "create", "replace", "patch", "delete", "seed", "overwrite"
	Prior    []byte    // the replaced version's document (nil for a creation)
}

// MaxChanges bounds a room's settings trail.
const MaxChanges = 50

// AnyVersion, as PutSettings's or DeleteSettings's ifVersion, applies the change whatever
// the stored version.
const AnyVersion int64 = -1

// SettingsTTL is how long a store keeps a room's settings, trail and the room list after
// the last change or Touch: every key expires.
const SettingsTTL = 30 * 24 * time.Hour

// VersionError is a change refused because the room's stored version is not the one the
// change was made against. It wraps ErrVersion.
type VersionError struct{ Stored int64 }

func (e *VersionError) Error() string {
	if e.Stored == 0 {
		return "store: the room has no stored settings"
	}
	return "store: the room's settings are at version " + strconv.FormatInt(e.Stored, 10)
}

// Unwrap returns ErrVersion.
func (e *VersionError) Unwrap() error { return ErrVersion }

// ErrVersion is a change made against another version of a room's settings.
var ErrVersion = errors.New("store: settings version mismatch")

// Minute is one minute of a room's history: what every instance saw of it, merged.
type Minute struct {
	Start       time.Time // the minute's start (store time, a whole minute)
	Joins       int64     // places taken
	Admissions  int64     // visitors admitted
	PeakWaiting int64     // the most live waiters an answer reported
	PeakActive  int64     // the most active sessions an answer reported
	Waiting     int64     // the live waiters at the minute's latest answer (WaitingAt)
	WaitingAt   time.Time
	LongestWait time.Duration
	// Waits counts the admissions by their wait, in the buckets WaitBounds bound.
	Waits [len(WaitBounds) + 1]int64
}

// WaitBounds are the upper bounds of Minute.Waits's buckets; the last bucket has none.
var WaitBounds = [...]time.Duration{
	5 * time.Second, 10 * time.Second, 20 * time.Second, 30 * time.Second, time.Minute,
	2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 4 * time.Hour,
}

// HistoryTTL is how long a store keeps a minute of history: at least 48 hours.
const HistoryTTL = 49 * time.Hour

// History is what a store keeps of rooms' pasts: a merged record per room and minute.
// Both stores implement it.
type History interface {
	// Record merges m into room's minute m.Start: counts add up, peaks and the longest
	// wait take the larger, Waiting the one of the latest WaitingAt (of two at one instant, the
	// larger). One atomic operation.
	Record(ctx context.Context, room string, m Minute) error
	// Minutes returns room's recorded minutes from from to to (inclusive), oldest first;
	// minutes nobody recorded are left out.
	Minutes(ctx context.Context, room string, from, to time.Time) ([]Minute, error)
}

// Slots is what a store keeps of what a room's site has left to give (appointments,
// tickets): a count the host sets and takes from, which every Join, Poll and Stats answer
// carries (Stats.Slots, read in the same atomic operation), so that waiters on every
// instance learn it from their next answer with no call of its own. A store that does not
// implement Slots answers Stats.Slots admission.NotCounted. Under
// admission.Limits.CloseWhenSoldOut a count of 0 closes the room to new places (see
// admission.SoldOut). Both stores implement it.
//
// The count belongs to the room's settings, not to its visitors' state: it outlives an
// idle room, goes with DeleteSettings, and expires as the settings do, SettingsTTL after
// its last change or Touch.
type Slots interface {
	// SetSlots sets room's count to n (admission.SetSlots: n < 0 stops counting). One
	// atomic operation.
	SetSlots(ctx context.Context, room string, n int64) error
	// TakeSlots takes n from room's count (n < 0 gives -n back), never below 0
	// (admission.TakeSlots), and returns what is left; admission.NotCounted, changing
	// nothing, when the room has no count. One atomic operation.
	TakeSlots(ctx context.Context, room string, n int64) (int64, error)
}

// Presence is what a store knows of the app instances serving a room: how many there are,
// for a fallback policy that shares a room's capacity and rate among them while the store is
// unreachable (waitingroom.WithFallback). Both stores implement it.
type Presence interface {
	// Present records instance as serving room at the store's time and returns how many
	// instances did within the last PresenceWindow, itself included. One atomic operation;
	// what it keeps expires by itself.
	Present(ctx context.Context, room, instance string) (int, error)
}

// PresenceWindow is how long an instance counts as serving a room after it said so.
const PresenceWindow = 30 * time.Second

// Once is what a store keeps so that something happens once across a room's instances: a
// notification is sent by the instance that claims it first. Both stores implement it.
type Once interface {
	// Claim records key for room at the store's time unless it is recorded already, for
	// ttl (1 ms to MaxOnceTTL). One atomic operation.
	Claim(ctx context.Context, room, key string, ttl time.Duration) (Claim, error)
	// Unclaim removes room's record of key if it was recorded at at: a later claim stays.
	Unclaim(ctx context.Context, room, key string, at time.Time) error
}

// Claim is the answer to Once.Claim.
type Claim struct {
	First bool      // this call recorded the key
	At    time.Time // when the key was recorded (by this call or an earlier one)
	Now   time.Time // the store's time
}

// MaxOnceTTL bounds how long a store keeps a claim.
const MaxOnceTTL = 7 * 24 * time.Hour

// ErrInvalidKey is a Once key that is empty, longer than 128 bytes, or holds a byte other
// than A-Z a-z 0-9 and - _ . : = < >.
var ErrInvalidKey = errors.New("store: invalid key: want 1 to 128 of A-Z a-z 0-9 - _ . : = < >")

// ValidOnce reports whether key and ttl are usable with Once: ErrInvalidKey, or an error
// naming the ttl.
func ValidOnce(key string, ttl time.Duration) error {
	if len(key) == 0 || len(key) > 128 {
		return ErrInvalidKey
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.:=<>", c) >= 0) {
			return ErrInvalidKey
		}
	}
	if ttl < time.Millisecond || ttl > MaxOnceTTL {
		return errors.New("store: a claim's ttl must be from 1 ms to 7 days")
	}
	return nil
}
