package waitingroom

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/estimate"
)

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
		s, err := r.replaced(cur, cfg)
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
	session    time.Duration
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
