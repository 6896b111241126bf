package waitingroom

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/estimate"
	"github.com/waitingroom-go/waitingroom/token"
)

// Event is a scheduled event: a booking that opens at a fixed minute. Its times are read on
// the store's clock, so every instance switches at the same instant.
//
//   - From PrequeueStart (optional) to Start, every visitor gets a place and a status saying
//     the event has not started, with the time until it does; nobody is admitted.
//   - At Start the pre-queued visitors are admitted in ticket order or, with
//     ShuffleAtEventStart, in a uniformly random order (a keyed permutation of their ticket
//     numbers: one stored seed, no write per visitor). Later arrivals queue behind all of
//     them in arrival order. A pass issued before Start is not valid inside the event: whoever
//     had the site open before is queued like everyone else (exempt requests with the
//     middleware's bypass hook), and the store frees the slots of those sessions.
//   - From Start to End the event's settings apply; zero fields keep the room's own.
//   - At End the room returns to its own settings; sessions admitted in the event run out
//     normally. If End comes before a shuffled pre-queue is through, its order still holds.
//
// Events of a room must not overlap (a pre-queue counts as part of its event). A room may
// hold any number; add and remove them while it runs with Room.AddEvent and
// Room.RemoveEvent, or replace them all with SetConfig.
type Event struct {
	// Name identifies the event within the room: 1 to 64 bytes of UTF-8 text.
	Name string
	// PrequeueStart opens the pre-queue; zero means none. At most Start.
	PrequeueStart time.Time
	// Start and End bound the event; it lasts at least a minute. Required.
	Start, End time.Time
	// ShuffleAtEventStart admits the pre-queued visitors in a random order at Start.
	ShuffleAtEventStart bool

	// TotalActiveUsers and NewUsersPerMinute replace the room's, both or neither (0).
	TotalActiveUsers, NewUsersPerMinute int
	// SessionDuration replaces the room's when not zero.
	SessionDuration time.Duration
	// DisableSessionRenewal replaces the room's when not nil.
	DisableSessionRenewal *bool
	// QueueingMethod replaces the room's when not nil.
	QueueingMethod *Method
}

// ErrNoEvent is returned by RemoveEvent for a name the room has no event of.
var ErrNoEvent = errors.New("waitingroom: no such event")

// Events returns the room's events in order of start.
func (r *Room) Events() []Event { return slices.Clone(r.settings.Load().cfg.Events) }

// AddEvent validates e with the room's other events and schedules it from the next request
// on.
func (r *Room) AddEvent(e Event) error {
	return r.updateEvents(func(evs []Event) ([]Event, error) { return append(evs, e), nil })
}

// RemoveEvent removes the event named name, even while it runs: from the next request on
// the room's own settings apply. The visitors it queued keep their places.
func (r *Room) RemoveEvent(name string) error {
	return r.updateEvents(func(evs []Event) ([]Event, error) {
		i := slices.IndexFunc(evs, func(e Event) bool { return e.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("%w: %q", ErrNoEvent, name)
		}
		return slices.Delete(evs, i, i+1), nil
	})
}

func (r *Room) updateEvents(change func([]Event) ([]Event, error)) error {
	for {
		cur := r.settings.Load()
		cfg := cur.cfg
		evs, err := change(slices.Clone(cfg.Events))
		if err != nil {
			return err
		}
		cfg.Events = evs
		s, err := r.newSettings(cfg)
		if err != nil {
			return err
		}
		if r.settings.CompareAndSwap(cur, s) {
			return nil
		}
	}
}

// eventSettings is a validated Event with what the room derives from it.
type eventSettings struct {
	cfg      Event
	adm      admission.Event
	prequeue time.Time // PrequeueStart, or Start when there is none
	scope    string    // what passes issued inside the event carry
	phase    phase
}

// phase is what the settings say at one instant: the room's own, or an event's.
type phase struct {
	ev         *eventSettings // the event pre-queueing or running; nil when none
	prequeue   bool
	method     Method
	capacity   int
	perMinute  int
	renewal    bool
	renewEvery time.Duration
	pace       estimate.Pace // what the settings say about the rate of admissions
}

// at is the phase at t (the store's time, or the app's corrected to it).
func (s *settings) at(t time.Time) phase {
	i, _ := slices.BinarySearchFunc(s.events, t, func(e *eventSettings, t time.Time) int {
		if e.cfg.End.After(t) {
			return 1
		}
		return -1
	})
	if i < len(s.events) {
		e := s.events[i]
		switch {
		case !t.Before(e.cfg.Start):
			return e.phase
		case !t.Before(e.prequeue):
			p := e.phase
			p.prequeue = true
			return p
		}
	}
	return s.base
}

// skewAllowance is how far the store's clock may be from an instance's corrected one: the
// events passed to the store cover that much on either side.
const skewAllowance = 10 * time.Minute

// eventsNear are the events the store may find in force at app time t.
func (s *settings) eventsNear(t time.Time) []admission.Event {
	lo := t.Add(-skewAllowance).UnixMilli()
	hi := t.Add(skewAllowance).UnixMilli()
	i, _ := slices.BinarySearchFunc(s.adm, lo, func(e admission.Event, lo int64) int {
		if e.End > lo {
			return 1
		}
		return -1
	})
	j := i
	for j < len(s.adm) && s.adm[j].Prequeue < hi {
		j++
	}
	return s.adm[i:j:j]
}

// scope is what a pass issued at t carries: "" for the room's own settings.
func (p phase) scope() string {
	if p.ev == nil || p.prequeue {
		return ""
	}
	return p.ev.scope
}

// validEvents checks the events of c (whose other settings are valid and defaulted) and
// derives their settings, sorted by start.
func validEvents(c *Config, base phase, renewSet bool, room string, codec *token.Codec) ([]*eventSettings, error) {
	evs := slices.Clone(c.Events)
	slices.SortStableFunc(evs, func(a, b Event) int { return a.Start.Compare(b.Start) })
	out := make([]*eventSettings, 0, len(evs))
	names := make(map[string]bool, len(evs))
	for i := range evs {
		e := &evs[i]
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%w: event %q: "+format, append([]any{ErrConfig, e.Name}, args...)...)
		}
		pre := e.PrequeueStart
		if pre.IsZero() {
			pre = e.Start
		}
		switch {
		case e.Name == "" || len(e.Name) > 64 || !utf8.ValidString(e.Name):
			return nil, fmt.Errorf("%w: event name must be 1 to 64 bytes of UTF-8, got %q", ErrConfig, e.Name)
		case names[e.Name]:
			return nil, bad("two events have this name")
		case e.Start.IsZero() || e.End.IsZero():
			return nil, bad("Start and End are required")
		case pre.After(e.Start):
			return nil, bad("PrequeueStart (%s) is after Start (%s)", pre.Format(time.RFC3339), e.Start.Format(time.RFC3339))
		case e.End.Sub(e.Start) < time.Minute:
			return nil, bad("End (%s) must be at least a minute after Start (%s)", e.End.Format(time.RFC3339), e.Start.Format(time.RFC3339))
		case i > 0 && pre.Before(evs[i-1].End):
			return nil, bad("overlaps event %q (which ends %s); a pre-queue counts as part of its event", evs[i-1].Name, evs[i-1].End.Format(time.RFC3339))
		case (e.TotalActiveUsers == 0) != (e.NewUsersPerMinute == 0):
			return nil, bad("set TotalActiveUsers and NewUsersPerMinute together, or neither")
		}
		names[e.Name] = true
		// The room keeps its own copies: a caller changing its values later changes nothing.
		if e.DisableSessionRenewal != nil {
			e.DisableSessionRenewal = ptrTo(*e.DisableSessionRenewal)
		}
		if e.QueueingMethod != nil {
			e.QueueingMethod = ptrTo(*e.QueueingMethod)
		}

		p, session := base, c.SessionDuration
		if e.TotalActiveUsers != 0 {
			p.capacity, p.perMinute = e.TotalActiveUsers, e.NewUsersPerMinute
		}
		if e.SessionDuration != 0 {
			session = e.SessionDuration
		}
		if e.DisableSessionRenewal != nil {
			p.renewal = !*e.DisableSessionRenewal
		}
		if e.QueueingMethod != nil {
			p.method = *e.QueueingMethod
		}
		if problem := limitsProblem(p.capacity, p.perMinute, session, p.method, c.AllowRateAboveCapacity); problem != "" {
			return nil, bad("%s", problem)
		}
		if session != c.SessionDuration {
			if !renewSet {
				p.renewEvery = defaultRenew(session)
			} else if c.RenewInterval > session {
				return nil, bad("RenewInterval (%v) exceeds the event's SessionDuration (%v)", c.RenewInterval, session)
			}
		}
		p.pace = paceOf(p.capacity, p.perMinute, c)
		es := &eventSettings{
			cfg:      *e,
			prequeue: pre,
			scope:    "event:" + e.Name + "@" + strconv.FormatInt(e.Start.UnixMilli(), 10),
			adm: admission.Event{
				Prequeue: pre.UnixMilli(), Start: e.Start.UnixMilli(), End: e.End.UnixMilli(),
				Shuffle:  e.ShuffleAtEventStart,
				Seed:     int64(binary.BigEndian.Uint64(codec.Secret("shuffle "+room+" "+strconv.FormatInt(e.Start.UnixMilli(), 10))) % admission.MaxSeed),
				Capacity: int64(p.capacity), PerMinute: int64(p.perMinute), Session: session,
				Renewal: p.renewal, Method: p.method,
			},
		}
		es.phase = p
		es.phase.ev = es
		out = append(out, es)
	}
	c.Events = evs
	return out, nil
}

func ptrTo[T any](v T) *T { return &v }
