// Package admission holds the rules that decide who enters a waiting room and when: the
// reference engine, Room, and the pieces it is made of.
//
// The rules are pure: a Room moves only as a function of its state, the operation, the
// store's time and the room's Limits. Every store applies the same Room (store/memory
// holds one per room; store/redis's Lua script is a port of it, held to it by a
// differential test), so that N app instances on one Redis admit exactly as one process
// would, and the planner forecasts with the same rules the live room runs.
//
// The model, in brief:
//   - A visitor who joins takes the next ticket number. Tickets at or above the cursor wait.
//   - A waiter is live while its last counted poll falls within Hold (in 5-second buckets).
//   - Admission moves the cursor forward in ticket order. Dead tickets are skipped at no
//     cost; each live ticket passed is granted a slot (a pending session) if Allowance
//     permits. Under Random a free slot goes to the waiter whose poll finds it, marked
//     Taken; the cursor then passes it like an abandoned place.
//   - A granted slot is held for Grace; the holder's next poll claims it and the session
//     lasts Session from then on. An unclaimed grant expires and its slot comes back.
//   - The claim is the admission: the visitor's first admitted request. The rate window
//     counts admissions when they happen, plus pending grants, and allows a grant only
//     while fewer than PerMinute of them fall within the last RateWindow: so at most
//     PerMinute visitors enter in any 60 seconds, as the protected site sees them.
//   - Each waiter is told when to poll next: in FIFO order, the instant the rate window
//     frees its slot when that comes before its next regular poll, so that a crowd that
//     polls in step does not leave slots unused between polls.
//   - Tickets and sessions are named by (epoch, number). When a store loses a room (a Redis
//     restart), visitors who come back with valid tickets of an earlier epoch retake places
//     ahead of everyone the new epoch queued, in their old order; admitted visitors who come
//     back with valid passes are counted again. Admission pauses for Limits.Recovery while
//     that happens.
package admission

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Method is how a room picks who enters next.
type Method uint8

// Queueing methods. The names follow the hosted rooms' queueing_method values.
const (
	// FIFO admits live waiters in ticket order. It is the default (zero value).
	FIFO Method = iota
	// Random gives each free slot to a uniformly random live waiter (see Pick). Switching
	// back to FIFO goes on in ticket order with those still waiting.
	Random
	// Passthrough admits everyone at once; sessions are still counted.
	Passthrough
	// Reject admits nobody and shows a static closed page.
	Reject
)

// String returns the hosted rooms' name for m ("fifo", "random", "passthrough", "reject").
func (m Method) String() string {
	switch m {
	case FIFO:
		return "fifo"
	case Random:
		return "random"
	case Passthrough:
		return "passthrough"
	case Reject:
		return "reject"
	}
	return fmt.Sprintf("method(%d)", uint8(m))
}

// ParseMethod reads a method name as String writes it.
func ParseMethod(s string) (Method, error) {
	for m := FIFO; m <= Reject; m++ {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("admission: unknown queueing method %q (want fifo, random, passthrough or reject)", s)
}

// MarshalText implements encoding.TextMarshaler.
func (m Method) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *Method) UnmarshalText(b []byte) error {
	v, err := ParseMethod(string(b))
	if err == nil {
		*m = v
	}
	return err
}

// Limits are the settings the rules read. A store receives them with every call, so a
// configuration change takes effect on the next operation.
type Limits struct {
	Capacity  int64         // active sessions at most (TotalActiveUsers)
	PerMinute int64         // admissions in any 60-second window at most (NewUsersPerMinute)
	Session   time.Duration // a session's length after admission or renewal
	Renewal   bool          // whether Renew extends a session
	Hold      time.Duration // a waiter who has not polled for this long loses the place
	Grace     time.Duration // a granted slot waits this long for its holder to claim it
	Refresh   time.Duration // how often a waiter polls when nothing is due sooner
	Method    Method
	QueueAll  bool // nobody is admitted; everyone queues
	// CloseWhenSoldOut stops the room from taking new places while its host counts no slot
	// left (see SoldOut): a join, or a poll whose place is gone, is answered SoldOut.
	CloseWhenSoldOut bool

	// Recovery is how long a room the store had lost admits nobody once the loss shows, so
	// that admitted visitors are counted again and queued ones retake their places first.
	Recovery time.Duration
	// LastEpoch is the room's epoch the caller saw within the last Hold (0: none). A store
	// that must create the room although the caller saw it so recently has lost it, and
	// starts it in recovery.
	LastEpoch int64
	// Admitted, for Renew, is when the renewed pass's session began (store time, Unix
	// milliseconds; 0: unknown). A pass of an epoch the store lost brings its admission back
	// (see Room.Renew).
	Admitted int64
	// Recount, for Renew, says the pass was issued while the store was unreachable, by an
	// instance deciding alone: the store counts its session if it does not hold it, and its
	// ticket's place goes (see Room.Renew).
	Recount bool

	// Events are the scheduled events near now, sorted, not overlapping; a store applies
	// the one in force on its own clock (see At). A caller passes a few, not the whole
	// schedule: those that end after its clock less any skew it allows for.
	Events []Event

	// Offer says which stored settings these limits come from (see Settle). The zero Offer
	// (no stored version, no document) runs by these limits wherever nothing is stored.
	Offer Offer

	// Slots is the count of slots left that the store keeps for the room (see SetSlots and
	// TakeSlots), NotCounted when it keeps none. The store puts its own count here for each
	// operation, after Settle; what a caller passes is not used. Results report it
	// (Stats.Slots), and SoldOut reads it.
	Slots int64
}

// Shared constants of the model. The Redis script uses the same values (a test checks).
const (
	// RateWindow is the span the rate limit counts admissions over: one that happened at t
	// counts until t+RateWindow.
	RateWindow = 60 * time.Second
	// LiveBucket is the granularity of liveness: a waiter's last poll is kept as a bucket
	// index, so a place is held between Hold and Hold+LiveBucket after the last poll.
	LiveBucket = 5 * time.Second
	// MaxScan bounds the tickets one operation moves the cursor over one by one, so that
	// one request never pays for a long run of abandoned places; the next operation goes on.
	MaxScan = 1024
	// Block is how many tickets share a top (Queue.Top): the newest live word written in
	// them. A block whose top has lapsed holds no live place, so admission, reaching its
	// start, passes it in one step instead of a ticket at a time.
	Block = 256
	// MaxSkip bounds the blocks one operation passes whole: with MaxScan, what bounds an
	// operation's work whatever the number of places abandoned. 4096 blocks are a million
	// tickets, so a free slot reaches the first live waiter behind a million abandoned
	// places at that waiter's next poll.
	MaxSkip = 4096
)

// Errors returned by Validate.
var (
	ErrCapacity = errors.New("admission: capacity must be at least 1")
	ErrRate     = errors.New("admission: admissions per minute must be at least 1")
	ErrDuration = errors.New("admission: session, hold and grace must be positive, refresh and recovery not negative")
	ErrMethod   = errors.New("admission: queueing method not supported")
)

// PollingProblem says what is wrong with a room's polling settings, as the room and the
// planner both check them, or "" if nothing: the refresh interval from 1 s to 5 minutes,
// a hold of at least two refreshes (one late poll does not lose a place), and an arrival
// grace from one refresh (a granted visitor's next poll) to the hold.
func PollingProblem(refresh, hold, grace time.Duration) string {
	switch {
	case refresh < time.Second || refresh > 5*time.Minute:
		return fmt.Sprintf("RefreshInterval must be from 1s to 5m, got %v", refresh)
	case hold < 2*refresh:
		return fmt.Sprintf("QueueHold (%v) must be at least twice RefreshInterval (%v)", hold, refresh)
	case grace < refresh || grace > hold:
		return fmt.Sprintf("ArrivalGrace (%v) must be from RefreshInterval (%v) to QueueHold (%v)", grace, refresh, hold)
	}
	return ""
}

// Validate reports whether l makes sense. It does not fill defaults.
func (l Limits) Validate() error {
	switch {
	case l.Capacity < 1:
		return ErrCapacity
	case l.PerMinute < 1:
		return ErrRate
	case l.Session <= 0 || l.Hold <= 0 || l.Grace <= 0 || l.Recovery < 0 || l.Refresh < 0:
		return ErrDuration
	case l.Method > Reject:
		return fmt.Errorf("%w: %v", ErrMethod, l.Method)
	}
	return validEvents(l.Events)
}

// State is what a store counts for a room at the instant it decides.
type State struct {
	Active     int64 // unexpired sessions, claimed and pending
	Window     int64 // admissions in the last RateWindow plus pending grants
	Recovering bool  // the room is in recovery after the store lost it (see Limits.Recovery)
}

// Allowance is how many waiters may be granted a slot now. It is the whole admission rule:
// never more active sessions than Capacity, never more than PerMinute grants in the window.
func Allowance(s State, l Limits) int64 {
	switch {
	case l.QueueAll || l.Method == Reject:
		return 0
	case l.Method == Passthrough:
		return math.MaxInt64
	case s.Recovering:
		return 0
	}
	return max(0, min(l.Capacity-s.Active, l.PerMinute-s.Window))
}

// Bucket is the liveness bucket of the store time ms (Unix milliseconds).
func Bucket(ms int64) int64 { return ms / LiveBucket.Milliseconds() }

// HoldBuckets is how many buckets back a last poll still counts as live.
func HoldBuckets(l Limits) int64 {
	return (l.Hold + LiveBucket - 1).Milliseconds() / LiveBucket.Milliseconds()
}

// Taken marks a place that admission has passed: granted (out of order, by Random) or, for
// places recovered from a lost epoch, passed for good. Stores keep it with the bucket of
// the moment, in the place's liveness slot; a taken place is never live.
const Taken = 1 << 31

// Live reports whether a waiter whose last counted poll fell in bucket seen still holds a
// place in bucket now.
func Live(seen, now int64, l Limits) bool {
	return seen > 0 && seen < Taken && now-seen <= HoldBuckets(l)
}

// Pick hashes (a, b, c) to [0, span): Random's spread of poll times (see Room.Poll). It
// runs rounds of cubing modulo a prime below 2^26 (a bijection there, and far from linear,
// so neighbouring inputs give independent values, which a congruential step does not): the
// same numbers in Go and in a Redis script, whose Lua has no bit operations (every product
// stays below 2^53). Two lanes make a 52-bit value, so the modulo bias is below span/2^52.
// Of c only c mod 67108859 counts.
func Pick(a, b, c, span int64) int64 {
	return (pickLane(a, b, c, 0)*pickP + pickLane(a, b, c, 1)) % span
}

// RandomPoll is when a waiter of a Random room polls next: uniform over [R/2, 3R/2) after
// now for refresh R, by Pick of the room's epoch, the waiter's ticket and now.
// Exchangeable poll times make the first poller after a slot frees a uniformly random
// waiter. A store may leave it to its client (store/redis does: it is pure arithmetic).
func RandomPoll(epoch, ticket, now int64, refresh time.Duration) int64 {
	span := max(refresh.Milliseconds(), 1)
	return now + span/2 + Pick(epoch, ticket, now, span)
}

// pickP is a prime below 2^26 with pickP % 3 == 2, so that cubing permutes [0, pickP).
const pickP = 67108859

func pickLane(epoch, admissions, try, lane int64) int64 {
	cube := func(x int64) int64 { return x * x % pickP * x % pickP }
	h := cube((epoch%pickP + lane + 1) % pickP)
	for _, v := range [...]int64{epoch / pickP, admissions % pickP, admissions / pickP, try} {
		h = cube((h + v%pickP + 1) % pickP)
	}
	for range 3 {
		h = cube((h + lane + 1) % pickP)
	}
	return h
}

// UsersAhead estimates the live waiters ahead of ticket n, given the cursor, the next ticket
// number and the live waiters in all. It is exact when nobody has abandoned; otherwise the
// gaps of abandoned places are taken as spread evenly through the queue (the store keeps
// counters, not a record per waiter).
func UsersAhead(n, cursor, next, live int64) int64 {
	span := next - cursor - 1 // tickets other than n
	if n <= cursor || span <= 0 || live <= 1 {
		return 0
	}
	others := min(live-1, span)
	ahead := (n-cursor)*others + span/2
	return min(ahead/span, others)
}
