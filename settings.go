package waitingroom

import (
	"encoding/binary"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/estimate"
	"github.com/waitingroom-go/waitingroom/token"
)

// A room's settings in one place: Config and Event, what they default to, and the rules they
// must keep, checked once when the room takes them (New, SetConfig, AddEvent) and by
// Config.Validate for anyone who wants to ask first (the admin API, the planner's command).

// Config is a room's settings. The names follow the hosted waiting rooms' settings, so an
// operator moving over recognises them. Zero durations take the stated defaults.
type Config struct {
	// TotalActiveUsers is how many admitted visitors may be active at once. Required.
	TotalActiveUsers int
	// NewUsersPerMinute is how many visitors may be admitted in any 60-second window.
	// Required; at most TotalActiveUsers unless AllowRateAboveCapacity. Up to this many may
	// enter at one instant (say, when the room opens with free capacity); then nobody more
	// until the oldest of them leave the window.
	NewUsersPerMinute int
	// AllowRateAboveCapacity permits NewUsersPerMinute above TotalActiveUsers. Refused by
	// default as a likely typo, it makes sense when sessions end well within a minute: the
	// host releases each visitor after a short task such as submitting a booking. Capacity
	// stays strict either way.
	AllowRateAboveCapacity bool
	// SessionDuration is how long an admitted visitor stays active after the last renewal.
	// Each request renews it, but the store is told at most once per RenewInterval, so a
	// session ends between SessionDuration-RenewInterval and SessionDuration after the last
	// request. Default 5 minutes; 10 seconds to 24 hours.
	SessionDuration time.Duration
	// DisableSessionRenewal makes a session last exactly SessionDuration from admission.
	DisableSessionRenewal bool
	// RenewInterval is how often, at most, a session is renewed in the store.
	// Default min(1 minute, SessionDuration/5).
	RenewInterval time.Duration
	// MaxSessionDuration is the longest a session lasts from admission, however often it is
	// renewed (by requests, the middleware's keepalive or its post grace): renewals stop
	// once one would carry the session past it, so the session ends between
	// MaxSessionDuration-RenewInterval and MaxSessionDuration after admission. Default 0:
	// no limit; otherwise at least SessionDuration, and every event's.
	MaxSessionDuration time.Duration
	// QueueingMethod: FIFO (default), Random (each free slot to a random live waiter),
	// Passthrough or Reject.
	QueueingMethod Method
	// QueueAll stops admissions: everyone new queues, with the wait unknown. Admitted
	// visitors keep their sessions, unless QueueAllEndsSessions.
	QueueAll bool
	// QueueAllEndsSessions makes QueueAll fair to those who queue: while it is on, passes
	// are not valid either, and their holders queue like everyone else (exempt requests
	// with the middleware's bypass hook). Their slots free up as the sessions expire.
	QueueAllEndsSessions bool
	// Suspended turns the room off: traffic passes untouched, uncounted, without cookies.
	Suspended bool
	// RefreshInterval is how often a waiting page polls. Each answer says when to poll next
	// (Status.RefreshInterval): this interval, or sooner when the visitor's slot is due
	// sooner (FIFO), or spread over half to one and a half of it (Random). Polls that come
	// before that are answered from the ticket without a store operation. Default 20
	// seconds; 1 second to 5 minutes.
	RefreshInterval time.Duration
	// QueueingStatusCode is the HTTP status of a waiting answer: 200 (default), 202 or 429.
	QueueingStatusCode int
	// QueueHold is how long a waiter keeps the place without polling. Default 5 minutes;
	// at least twice RefreshInterval.
	QueueHold time.Duration
	// ArrivalGrace is how long a slot granted to a waiter is held for it to arrive; after
	// that the slot is given to the next waiter. Default twice RefreshInterval; from
	// RefreshInterval to QueueHold.
	ArrivalGrace time.Duration
	// TypicalSession is how long an admitted visitor usually stays (say, the time to fill
	// in the booking form). With it, the wait shown is estimated from the settings from the
	// first visitor on, and what the room observes takes over after a few sessions (see
	// estimate.Live); without it (the default), the wait is unknown until the first
	// admissions while people wait. Up to 24 hours.
	TypicalSession time.Duration
	// Events are the room's scheduled events (see Event), in any order; Config returns
	// them sorted by start.
	Events []Event

	// Messages is what the operator tells the room's visitors (Status.Message), by
	// language: a BCP 47 tag ("en", "ja", "zh-Hans") to plain text. Each visitor reads the
	// one in its language, else the English one, else the first by tag. At most
	// MaxMessageLanguages languages, each text 1 to MaxMessageBytes bytes of UTF-8 without
	// control characters; Config returns the tags in canonical form ("en-us" as "en-US").
	// Default: none. Like every setting it is stored, so a change reaches every instance's
	// visitors with their next answer.
	Messages map[string]string
	// CloseWhenSoldOut closes the room to newcomers once the host's count of slots left
	// (Room.SetSlots, TakeSlots) is 0: a visitor who would take a place is told that
	// nothing is left (Status.SoldOut; the closed page) instead of queueing for nothing.
	// The visitors already waiting keep their places, are told the count with their next
	// answer, and are admitted as ever, for a slot may come back (a cancellation). No
	// effect while the room counts no slots. Default false.
	CloseWhenSoldOut bool
}

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

// ConfigError says what is wrong with a Config: the field, as Config names it (an event's
// as Events["name"].Field), and the rule it breaks, in a sentence that names the field too.
// It wraps ErrConfig.
type ConfigError struct {
	Field   string
	Problem string
}

func (e *ConfigError) Error() string { return "waitingroom: invalid config: " + e.Problem }

// Unwrap returns ErrConfig.
func (e *ConfigError) Unwrap() error { return ErrConfig }

// configError makes a ConfigError for field, the problem written as fmt would.
func configError(field, format string, args ...any) *ConfigError {
	return &ConfigError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// Validate reports whether c is a room's valid settings, defaults filled in, as New and
// SetConfig check them: nil, or a *ConfigError naming the field. It changes nothing.
func (c Config) Validate() error {
	_, err := newSettings(c, "validate", nil)
	return err
}

// paceOf is what limits of capacity and perMinute, with c's typical session and refresh
// interval, say about the rate of admissions.
func paceOf(capacity, perMinute int, c *Config) estimate.Pace {
	p := estimate.Pace{
		Prior:   estimate.Throughput(capacity, perMinute, c.TypicalSession, c.RefreshInterval),
		Ceiling: float64(perMinute),
	}
	if c.TypicalSession > 0 {
		p.Period = c.TypicalSession + c.RefreshInterval
	}
	return p
}

// settings is a validated Config with what is derived from it.
type settings struct {
	cfg     Config
	limits  admission.Limits
	minPoll time.Duration // polls sooner than this after the last are answered from the ticket
	base    phase         // the room's own settings, outside events
	events  []*eventSettings
	adm     []admission.Event // the events as the store applies them, in the same order
	msg     Message           // Messages, ready to pick from

	// The settings as the store keeps them (see control.go): EncodeConfig of cfg, the
	// stored version they are (0: not yet stored), and whether they are this instance's
	// change, to be stored as the next version.
	doc     []byte
	version int64
	push    bool
}

// limitsProblem says what is wrong with the limits a room or an event admits by, or nil;
// prefix goes before the field's name (an event's).
func limitsProblem(prefix string, total, perMinute int, session time.Duration, m Method, allowRateAboveCapacity bool) *ConfigError {
	switch {
	case total < 1:
		return configError(prefix+"TotalActiveUsers", "TotalActiveUsers must be at least 1, got %d", total)
	case perMinute < 1:
		return configError(prefix+"NewUsersPerMinute", "NewUsersPerMinute must be at least 1, got %d", perMinute)
	case perMinute > total && !allowRateAboveCapacity:
		return configError(prefix+"NewUsersPerMinute", "NewUsersPerMinute (%d) exceeds TotalActiveUsers (%d); set AllowRateAboveCapacity if sessions end within a minute", perMinute, total)
	case session < 10*time.Second || session > 24*time.Hour:
		return configError(prefix+"SessionDuration", "SessionDuration must be from 10s to 24h, got %v", session)
	case m > Reject:
		return configError(prefix+"QueueingMethod", "unknown QueueingMethod %v", m)
	}
	return nil
}

// defaultRenew is RenewInterval's default for a session length.
func defaultRenew(session time.Duration) time.Duration { return min(time.Minute, session/5) }

// newSettings checks c, fills in its defaults and derives what the room runs by. room and
// codec key the shuffles of events (codec nil: the check alone, as Validate makes it).
func newSettings(c Config, room string, codec *token.Codec) (*settings, error) {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.SessionDuration, 5*time.Minute)
	// A RenewInterval equal to its default is the default: Config returns it filled in, and
	// those settings, given back (through the admin API, or stored and read by another
	// instance), must mean the same, events with shorter sessions included.
	renewSet := c.RenewInterval != 0 && c.RenewInterval != defaultRenew(c.SessionDuration)
	def(&c.RefreshInterval, 20*time.Second)
	def(&c.QueueHold, 5*time.Minute)
	def(&c.ArrivalGrace, 2*c.RefreshInterval)
	def(&c.RenewInterval, defaultRenew(c.SessionDuration))
	if c.QueueingStatusCode == 0 {
		c.QueueingStatusCode = http.StatusOK
	}
	if p := limitsProblem("", c.TotalActiveUsers, c.NewUsersPerMinute, c.SessionDuration, c.QueueingMethod, c.AllowRateAboveCapacity); p != nil {
		return nil, p
	}
	switch p := admission.PollingProblem(c.RefreshInterval, c.QueueHold, c.ArrivalGrace); {
	case c.RenewInterval <= 0 || c.RenewInterval > c.SessionDuration:
		return nil, configError("RenewInterval", "RenewInterval must be positive and at most SessionDuration, got %v", c.RenewInterval)
	case p != "":
		field, _, _ := strings.Cut(p, " ") // the problem's first word names the field
		return nil, configError(field, "%s", p)
	case c.QueueingStatusCode != http.StatusOK && c.QueueingStatusCode != http.StatusAccepted && c.QueueingStatusCode != http.StatusTooManyRequests:
		return nil, configError("QueueingStatusCode", "QueueingStatusCode must be 200, 202 or 429, got %d", c.QueueingStatusCode)
	case c.TypicalSession < 0 || c.TypicalSession > 24*time.Hour:
		return nil, configError("TypicalSession", "TypicalSession must be from 0 (unknown) to 24h, got %v", c.TypicalSession)
	case c.MaxSessionDuration != 0 && c.MaxSessionDuration < c.SessionDuration:
		return nil, configError("MaxSessionDuration", "MaxSessionDuration must be 0 (no limit) or at least SessionDuration (%v), got %v", c.SessionDuration, c.MaxSessionDuration)
	}
	texts, msg, err := newMessage(c.Messages)
	if err != nil {
		return nil, err
	}
	c.Messages = texts // the room's own copy, in canonical tags
	l := admission.Limits{
		Capacity:  int64(c.TotalActiveUsers),
		PerMinute: int64(c.NewUsersPerMinute),
		Session:   c.SessionDuration,
		Renewal:   !c.DisableSessionRenewal,
		Hold:      c.QueueHold,
		Grace:     c.ArrivalGrace,
		Refresh:   c.RefreshInterval,
		Method:    c.QueueingMethod,
		QueueAll:  c.QueueAll,

		CloseWhenSoldOut: c.CloseWhenSoldOut,
		// A store keeping a count puts its own here; one that keeps none (a store of the
		// host's own, around the engine) leaves this: no count, so never sold out.
		Slots: admission.NotCounted,
		// After a store loss, admitted visitors renew within RenewInterval and waiters
		// poll within RefreshInterval: by then everyone still there is counted again.
		Recovery: c.RenewInterval + c.RefreshInterval,
	}
	base := phase{
		method:     c.QueueingMethod,
		capacity:   c.TotalActiveUsers,
		perMinute:  c.NewUsersPerMinute,
		renewal:    !c.DisableSessionRenewal,
		renewEvery: c.RenewInterval,
		session:    c.SessionDuration,
		pace:       paceOf(c.TotalActiveUsers, c.NewUsersPerMinute, &c),
	}
	events, err := validEvents(&c, base, renewSet, room, codec)
	if err != nil {
		return nil, err
	}
	adm := make([]admission.Event, len(events))
	for i, e := range events {
		adm[i] = e.adm
		l.Recovery = max(l.Recovery, e.phase.renewEvery+c.RefreshInterval)
	}
	check := l
	check.Events = adm
	if err := check.Validate(); err != nil {
		// validEvents checks everything this does; a failure here is a gap between the two.
		return nil, configError("Events", "%v", err)
	}
	return &settings{
		cfg:     c,
		limits:  l,
		minPoll: c.RefreshInterval * 9 / 10,
		base:    base,
		events:  events,
		adm:     adm,
		msg:     msg,
	}, nil
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
		prefix := fmt.Sprintf("Events[%q].", e.Name)
		bad := func(field, format string, args ...any) error {
			return configError(prefix+field, "event %q: "+format, append([]any{e.Name}, args...)...)
		}
		pre := e.PrequeueStart
		if pre.IsZero() {
			pre = e.Start
		}
		switch {
		case e.Name == "" || len(e.Name) > 64 || !utf8.ValidString(e.Name):
			return nil, configError(fmt.Sprintf("Events[%d].Name", i), "event name must be 1 to 64 bytes of UTF-8, got %q", e.Name)
		case names[e.Name]:
			return nil, bad("Name", "two events have this name")
		case e.Start.IsZero() || e.End.IsZero():
			return nil, bad("Start", "Start and End are required")
		case pre.After(e.Start):
			return nil, bad("PrequeueStart", "PrequeueStart (%s) is after Start (%s)", pre.Format(time.RFC3339), e.Start.Format(time.RFC3339))
		case e.End.Sub(e.Start) < time.Minute:
			return nil, bad("End", "End (%s) must be at least a minute after Start (%s)", e.End.Format(time.RFC3339), e.Start.Format(time.RFC3339))
		case i > 0 && pre.Before(evs[i-1].End):
			return nil, bad("PrequeueStart", "overlaps event %q (which ends %s); a pre-queue counts as part of its event", evs[i-1].Name, evs[i-1].End.Format(time.RFC3339))
		case (e.TotalActiveUsers == 0) != (e.NewUsersPerMinute == 0):
			return nil, bad("TotalActiveUsers", "set TotalActiveUsers and NewUsersPerMinute together, or neither")
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
		if e.QueueingMethod != nil && p.method == Passthrough && c.QueueingMethod == Passthrough {
			// Nothing would ever queue: most likely the event was meant to limit the room.
			return nil, bad("QueueingMethod", "a passthrough event in a passthrough room admits everyone; give the event (or the room) another QueueingMethod")
		}
		if problem := limitsProblem(prefix, p.capacity, p.perMinute, session, p.method, c.AllowRateAboveCapacity); problem != nil {
			problem.Problem = fmt.Sprintf("event %q: %s", e.Name, problem.Problem)
			return nil, problem
		}
		p.session = session
		if c.MaxSessionDuration != 0 && session > c.MaxSessionDuration {
			return nil, bad("SessionDuration", "the event's SessionDuration (%v) exceeds MaxSessionDuration (%v)", session, c.MaxSessionDuration)
		}
		if session != c.SessionDuration {
			if !renewSet {
				p.renewEvery = defaultRenew(session)
			} else if c.RenewInterval > session {
				return nil, bad("SessionDuration", "RenewInterval (%v) exceeds the event's SessionDuration (%v)", c.RenewInterval, session)
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
				Seed:     shuffleSeed(codec, room, e.Start),
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

// shuffleSeed keys an event's shuffle with a secret of the room's keys (0 without a codec:
// a check that runs nothing).
func shuffleSeed(codec *token.Codec, room string, start time.Time) int64 {
	if codec == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(codec.Secret("shuffle "+room+" "+strconv.FormatInt(start.UnixMilli(), 10))) % admission.MaxSeed)
}
