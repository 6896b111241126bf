package waitingroom

import (
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/waitingroom-go/waitingroom/store"
)

// What the operator's tools learn of a room: one hook of typed signals (WithHook) for what
// happens now and then (the room starts or stops queueing, its settings change, its store
// fails or comes back), and one read of counters (Room.Counters) for a metrics scrape. Both
// cost the request path no allocation: a signal is a value handed to the hook on the
// transition only, and the counters are atomic adds.

// SignalKind is what a Signal reports.
type SignalKind uint8

// Signals.
const (
	// Queueing: a store answer this instance had showed visitors waiting after one that
	// showed none (or the first answer it had). Each instance of a room reports it: a
	// notifier de-duplicates through the store.
	Queueing SignalKind = iota + 1
	// Drained: a store answer showed nobody waiting after one that showed some. A queue can
	// drain and fill again within seconds: tools debounce.
	Drained
	// SettingsChanged: this instance stored new settings (Room.Update, which the admin API
	// and the registry's Put use): Change says who and what, Before and After the settings
	// either side. Instances that learn the version from the store do not report it.
	SettingsChanged
	// StoreDown: a store call failed (not one the client abandoned) after one that
	// answered; Err is the store's error.
	StoreDown
	// StoreUp: a store call answered after one that failed.
	StoreUp
)

func (k SignalKind) String() string {
	switch k {
	case Queueing:
		return "queueing"
	case Drained:
		return "drained"
	case SettingsChanged:
		return "settings changed"
	case StoreDown:
		return "store down"
	case StoreUp:
		return "store up"
	}
	return "SignalKind(" + strconv.Itoa(int(k)) + ")"
}

// Signal is something that happened to a room (see SignalKind).
type Signal struct {
	Kind SignalKind
	Room string
	// At is the store's time of the answer that showed it (StoreDown: the app's clock,
	// corrected by the store's last answer).
	At time.Time
	// Waiting and Active are the store's counters in that answer (Queueing, Drained).
	Waiting, Active int64
	// SettingsChanged: the new version, who made the change and the settings before and
	// after it.
	Version       int64
	Change        store.Change
	Before, After Config
	// StoreDown: the store's error (it wraps ErrStore; it carries no secret).
	Err error
}

// WithHook has the room call hook with each Signal, on the goroutine that saw it (a
// request's): it must be quick and must not block, as a counter or a channel send that
// drops when full is. One hook may serve many rooms (Signal.Room names each). Default:
// none.
func WithHook(hook func(Signal)) Option {
	return func(r *Room) error {
		if hook == nil {
			return fmt.Errorf("%w: nil hook", ErrConfig)
		}
		r.hook = hook
		return nil
	}
}

// WithLogger sets where the room logs what operators want to read in its log: the store
// failing and answering again (once each way, not per request, with the store's error,
// which carries no secret) and the settings this instance stored (version, who, what).
// Default slog.Default(); a logger whose handler discards turns it off.
func WithLogger(l *slog.Logger) Option {
	return func(r *Room) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrConfig)
		}
		r.log = l
		return nil
	}
}

// StoreOp names a kind of store call, for Counters.Calls.
type StoreOp uint8

// Store operations.
const (
	OpJoin    StoreOp = iota // Store.Join
	OpPoll                   // Store.Poll
	OpRenew                  // Store.Renew and Store.Revive
	OpRelease                // Store.Release and the revocation that tells the others
	OpStats                  // Store.Stats
	OpControl                // settings, keys, revocations, presence and slots (store.Control, store.Presence, store.Slots)
	OpHistory                // history records and reads (store.History)
	NumStoreOps
)

func (o StoreOp) String() string {
	switch o {
	case OpJoin:
		return "join"
	case OpPoll:
		return "poll"
	case OpRenew:
		return "renew"
	case OpRelease:
		return "release"
	case OpStats:
		return "stats"
	case OpControl:
		return "control"
	case OpHistory:
		return "history"
	}
	return "StoreOp(" + strconv.Itoa(int(o)) + ")"
}

// CallBounds are the upper bounds of CallStats.Buckets: the latencies of a store on
// loopback (a fraction of a millisecond) to a room's default deadline (500 ms) and beyond.
var CallBounds = [...]time.Duration{
	250 * time.Microsecond, 500 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond,
	5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second,
}

// CallStats count one kind of store call since the Room was made.
type CallStats struct {
	Count  int64         // calls, failed ones included
	Errors int64         // calls that failed (the store's failures, not the client's)
	Total  time.Duration // their summed latency
	// Buckets counts the calls by latency: Buckets[i] those up to CallBounds[i] (not
	// cumulative), the last one those above every bound.
	Buckets [len(CallBounds) + 1]int64
}

// Counters are what this instance counted of a room since the Room was made, and the
// room's counters in the latest store answer it had. They are for metrics: read them when
// scraped (Room.Counters costs no store call).
type Counters struct {
	Joins      int64 // places taken through this instance, Requeues included
	Admissions int64 // visitors this instance admitted (a pass issued for a place or a join)
	Requeues   int64 // waiters whose place was gone, sent to the back of the queue
	Calls      [NumStoreOps]CallStats
	// Seen is the room's state in the latest store answer this instance had (zero
	// before the first): the store's time and its counters then.
	Seen struct {
		At              time.Time
		Waiting, Active int64
	}
}

// Counters returns what this instance counted of the room (see Counters).
func (r *Room) Counters() Counters {
	c := Counters{
		Joins:      r.counts.joins.Load(),
		Admissions: r.counts.admissions.Load(),
		Requeues:   r.counts.requeues.Load(),
	}
	for i := range c.Calls {
		k := r.counts.calls[i].Load()
		if k == nil {
			continue
		}
		c.Calls[i].Count = k.count.Load()
		c.Calls[i].Errors = k.errors.Load()
		c.Calls[i].Total = time.Duration(k.total.Load())
		for j := range k.buckets {
			c.Calls[i].Buckets[j] = k.buckets[j].Load()
		}
	}
	if at := r.counts.seenAt.Load(); at != 0 {
		c.Seen.At = time.UnixMilli(at)
		c.Seen.Waiting, c.Seen.Active = r.counts.waiting.Load(), r.counts.active.Load()
	}
	return c
}

// counts is a room's Counters as it keeps them.
type counts struct {
	joins, admissions, requeues atomic.Int64
	// Each kind's are made at its first call: an idle room (one of 10,000 a registry holds)
	// costs a few pointers and its settings reads, not a kilobyte.
	calls [NumStoreOps]atomic.Pointer[callCounts]
	// The latest store answer's time (ms) and counters; queueing is whether it showed
	// anyone waiting (for Queueing and Drained).
	seenAt, waiting, active atomic.Int64
	queueing                atomic.Bool
	down                    atomic.Bool // the latest store call failed (StoreDown, StoreUp)
}

type callCounts struct {
	count, errors, total atomic.Int64
	buckets              [len(CallBounds) + 1]atomic.Int64
}

// called counts a store call of op that took d and failed with err (nil: answered), and
// signals the store going down or coming back.
func (r *Room) called(op StoreOp, d time.Duration, err error) {
	k := r.counts.calls[op].Load()
	if k == nil {
		r.counts.calls[op].CompareAndSwap(nil, new(callCounts))
		k = r.counts.calls[op].Load()
	}
	k.count.Add(1)
	k.total.Add(int64(d))
	i := 0
	for i < len(CallBounds) && d > CallBounds[i] {
		i++
	}
	k.buckets[i].Add(1)
	if err != nil {
		k.errors.Add(1)
		if !r.counts.down.Swap(true) {
			r.logger().Warn("waitingroom: a store call failed", "room", r.id, "op", op.String(), "err", err)
			if r.hook != nil {
				r.hook(Signal{Kind: StoreDown, Room: r.id, At: r.now(), Err: err})
			}
		}
		return
	}
	if r.counts.down.Load() && r.counts.down.Swap(false) {
		r.logger().Info("waitingroom: the store answers again", "room", r.id)
		if r.hook != nil {
			r.hook(Signal{Kind: StoreUp, Room: r.id, At: r.now()})
		}
	}
}

// logger is the room's logger: WithLogger's, or slog.Default() as it is now.
func (r *Room) logger() *slog.Logger {
	if r.log != nil {
		return r.log
	}
	return slog.Default()
}

// seen keeps the counters of a store answer at store time now, and signals the room
// starting or stopping to queue.
func (r *Room) seen(now time.Time, waiting, active int64) {
	c := &r.counts
	ms := now.UnixMilli()
	for {
		prev := c.seenAt.Load()
		if ms < prev {
			return // an answer overtaken by a later one
		}
		if c.seenAt.CompareAndSwap(prev, ms) {
			break
		}
	}
	c.waiting.Store(waiting)
	c.active.Store(active)
	queueing := waiting > 0
	if c.queueing.Load() == queueing || c.queueing.Swap(queueing) == queueing || r.hook == nil {
		return
	}
	kind := Drained
	if queueing {
		kind = Queueing
	}
	r.hook(Signal{Kind: kind, Room: r.id, At: now, Waiting: waiting, Active: active})
}
