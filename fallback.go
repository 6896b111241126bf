package waitingroom

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/waitingroom-go/waitingroom/estimate"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/token"
)

// Fallback is a third policy for a store outage, besides failing closed (503) and open (the
// middleware's WithFailOpen, which lets a stampede through): while the store is unreachable,
// each instance decides alone, within its share of the room.
//
//   - It admits waiting visitors (those holding tickets, in the order they come back) by
//     its own capacity counter and rate limiter (golang.org/x/time/rate), sized to its share:
//     the free slots and the rate left as of the store's last answer, divided among the
//     instances the store last knew (store.Presence; one when it cannot say).
//   - A waiting visitor it does not admit keeps its ticket, so its place, and is told the
//     room is reconnecting (Status.Reconnecting); a newcomer gets no place until the store
//     is back, and is told the same. Admitted visitors go on with their passes.
//   - A pass it issues is marked (token.Pass.Local) and names the holder's ticket: its first
//     renewal once the store is back has the store count it and take its place out of the
//     queue (admission.Limits.Recount).
//
// Overshoot: with N instances known, the room holds at most what it held at the last
// answer plus its free slots then, and admits at most the rate's remainder then and its
// rate from then on; an instance the store did not know of adds its own share. A place
// lapses after QueueHold without a poll that reaches the store: after an outage longer than
// that, those still waiting go to the back, in the order they come back.
type Fallback struct {
	// Retry is how long the room decides alone after a store call failed before it asks
	// the store again: one request then does, while the others go on deciding alone.
	// Default 1 s.
	Retry time.Duration
	// OnSwitch is told when the room starts deciding alone (local true, with the store's
	// error) and when the store answers again (false, nil). It must be quick: a metric, say.
	// Default none.
	OnSwitch func(local bool, err error)
	// Logger logs each switch (a warning when the room starts deciding alone, with the
	// store's error, which carries no secret; info when the store is back). Default
	// the room's (WithLogger), else slog.Default(); a logger whose handler discards turns
	// it off.
	Logger *slog.Logger
}

// WithFallback decides alone while the store is unreachable (see Fallback), instead of
// failing. A registry's watch keeps the number of instances (Room.Present); a room outside
// a registry needs its host to call Present every few seconds, or it counts itself alone.
// Default: none (Enter returns the store's error; the middleware fails closed or open).
func WithFallback(f Fallback) Option {
	return func(r *Room) error {
		if f.Retry < 0 {
			return fmt.Errorf("%w: Fallback.Retry must not be negative", ErrConfig)
		}
		if f.Retry == 0 {
			f.Retry = time.Second
		}
		if f.Logger != nil {
			f.Logger = f.Logger.With("room", r.id)
		} // else the room's (WithLogger's, whichever option comes first), set by New
		var id [8]byte
		rand.Read(id[:])
		r.fb = &fallback{cfg: f, instance: hex.EncodeToString(id[:])}
		r.fb.instances.Store(1)
		return nil
	}
}

// FallbackState is what a room with a fallback policy reports of it (Room.Fallback).
type FallbackState struct {
	Local     bool      // deciding alone now
	Since     time.Time // when it last switched either way (zero: never)
	Switches  int64     // switches to deciding alone since the room was made
	Admitted  int64     // visitors it admitted alone since the room was made
	Instances int       // the instances the store last knew, itself included
}

// Fallback reports the state of the room's fallback policy (zero without WithFallback).
func (r *Room) Fallback() FallbackState {
	if r.fb == nil {
		return FallbackState{}
	}
	f := r.fb
	f.mu.Lock()
	defer f.mu.Unlock()
	return FallbackState{Local: f.isLocal.Load(), Since: f.since, Switches: f.switches, Admitted: f.admitted,
		Instances: int(f.instances.Load())}
}

// presentEvery is how often Present tells the store, at most.
const presentEvery = 10 * time.Second

// Present tells the store this instance serves the room and learns how many do, for the
// fallback's shares; at most once every 10 s (sooner calls do nothing). It does nothing
// without WithFallback or with a store that cannot say (store.Presence). A registry's watch
// calls it; a room outside a registry needs its host to.
func (r *Room) Present(ctx context.Context) error {
	p, ok := r.store.(store.Presence)
	if r.fb == nil || !ok {
		return nil
	}
	now := r.clock().UnixMilli()
	last := r.fb.present.Load()
	if now-last < presentEvery.Milliseconds() || !r.fb.present.CompareAndSwap(last, now) {
		return nil
	}
	var n int
	err := r.call(ctx, OpControl, func(ctx context.Context) (err error) {
		n, err = p.Present(ctx, r.id, r.fb.instance)
		return err
	})
	if err != nil {
		return err
	}
	r.fb.instances.Store(int64(max(n, 1)))
	return nil
}

// fallback is a room's state under WithFallback.
type fallback struct {
	cfg      Fallback
	instance string

	instances  atomic.Int64 // as the store last said
	present    atomic.Int64 // app-clock ms of the last Present
	lastActive atomic.Int64 // Stats.Active of the store's last answer
	lastWindow atomic.Int64 // Stats.Window of the store's last answer
	lastAt     atomic.Int64 // its store time, Unix ms
	isLocal    atomic.Bool  // deciding alone; read without the lock on every request, set under mu

	switching sync.Mutex // held across a switch and its OnSwitch call, so that they come in order
	mu        sync.Mutex
	since     time.Time
	retryAt   time.Time // when a request may ask the store again
	switches  int64
	admitted  int64
	lim       *rate.Limiter      // this instance's share of the rate, for this outage
	slots     int64              // its share of the free slots, for this outage
	ends      []time.Time        // when the sessions it admitted alone end, in order
	passes    map[renewKey]Visit // issued alone in this outage, by ticket
}

// observe keeps what the store's answer says of the room, and ends an outage.
func (f *fallback) observe(st store.Stats) {
	// (Only what changed: every join and poll comes here.)
	if f.lastActive.Load() != st.Active {
		f.lastActive.Store(st.Active)
	}
	if f.lastWindow.Load() != st.Window {
		f.lastWindow.Store(st.Window)
	}
	f.lastAt.Store(st.Now.UnixMilli())
	f.answered(st.Now)
}

// answered ends an outage: the store answered at now.
func (f *fallback) answered(now time.Time) {
	if !f.isLocal.Load() {
		return
	}
	f.switching.Lock()
	defer f.switching.Unlock()
	f.mu.Lock()
	local := f.isLocal.Load()
	if local {
		f.since = now
		f.isLocal.Store(false)
	}
	f.mu.Unlock()
	if !local {
		return
	}
	f.cfg.Logger.Info("waitingroom: the store answers again; the room no longer decides alone")
	if f.cfg.OnSwitch != nil {
		f.cfg.OnSwitch(false, nil)
	}
}

// outage reports whether err, from a store call at now, starts or continues an outage the
// room rides out alone. A client that went away is no outage (ErrCanceled).
func (r *Room) outage(now time.Time, s *settings, err error) bool {
	if r.fb == nil {
		return false
	}
	if errors.Is(err, ErrStore) {
		r.fb.failed(now, s, err)
		return true
	}
	return false
}

// alone reports whether a request at now is decided without the store: the room is in an
// outage, and one request per Retry asks the store (this one, when it is time).
func (f *fallback) alone(now time.Time) bool {
	if !f.isLocal.Load() {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.isLocal.Load() {
		return false
	}
	if now.Before(f.retryAt) {
		return true
	}
	f.retryAt = now.Add(f.cfg.Retry) // this request asks; the rest go on alone meanwhile
	return false
}

// holding reports whether the room decides alone at now and no request is due to ask the
// store, as alone does, without taking the turn to ask: for a call that asks before it
// joins (AskBeforeJoin), whose join then takes it.
func (f *fallback) holding(now time.Time) bool {
	if !f.isLocal.Load() {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.isLocal.Load() && now.Before(f.retryAt)
}

// failed starts an outage, or goes on with one, after a store call failed at now.
func (f *fallback) failed(now time.Time, s *settings, err error) {
	f.switching.Lock()
	defer f.switching.Unlock()
	f.mu.Lock()
	started := !f.isLocal.Load()
	f.retryAt = now.Add(f.cfg.Retry)
	if started {
		n := max(f.instances.Load(), 1)
		ph := s.at(now)
		f.since = now
		f.isLocal.Store(true)
		f.switches++
		// The sessions admitted alone in an earlier outage that are still on count against
		// this one's share (the store may not have counted them yet), and the limiter goes on
		// from where it was: a store that comes and goes hands out no fresh share.
		f.slots = max(int64(ph.capacity)-f.lastActive.Load(), 0) / n
		perMin := float64(ph.perMinute) / float64(n)
		if burst := int(max(perMin, 1)); f.lim == nil {
			// The window's admissions as of the last answer, shared, refilled since.
			f.lim = rate.NewLimiter(rate.Limit(perMin/60), burst)
			f.lim.AllowN(time.UnixMilli(f.lastAt.Load()), min(int(f.lastWindow.Load()/n), burst))
		} else {
			f.lim.SetLimitAt(now, rate.Limit(perMin/60))
			f.lim.SetBurstAt(now, burst)
		}
		clear(f.passes)
	}
	f.mu.Unlock()
	if !started {
		return
	}
	f.cfg.Logger.Warn("waitingroom: the store is unreachable; the room decides alone (WithFallback)", "err", err)
	if f.cfg.OnSwitch != nil {
		f.cfg.OnSwitch(true, err)
	}
}

// issued returns the pass issued alone to ticket k in this outage, if any.
func (f *fallback) issued(k renewKey) (Visit, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.passes[k]
	return v, ok
}

// keep remembers the pass issued alone to ticket k, for the rest of this outage.
func (f *fallback) keep(k renewKey, v Visit) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.passes == nil {
		f.passes = make(map[renewKey]Visit)
	}
	f.passes[k] = v
}

// take reports whether the instance may admit one more visitor alone at now, for a session
// that ends at end, and counts it.
func (f *fallback) take(now, end time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Sessions end in the order they began (one length per outage): the ended are in front.
	i := 0
	for i < len(f.ends) && !f.ends[i].After(now) {
		i++
	}
	f.ends = f.ends[i:]
	if int64(len(f.ends)) >= f.slots || !f.lim.AllowN(now, 1) {
		return false
	}
	f.ends = append(f.ends, end)
	f.admitted++
	return true
}

// reconnecting is what a visitor the room cannot place or admit during an outage is told:
// it keeps the ticket it has (ahead as that ticket said), and asks again in Retry. err is
// the store's failure when this request found it (Visit.Degraded).
func (r *Room) reconnecting(s *settings, t *token.Ticket, now time.Time, err error) Visit {
	ph := s.at(now)
	st := r.status(s, ph, 0, now)
	if t != nil {
		st.UsersAhead, st.Joined, st.AheadAtEntry = t.UsersAhead, t.Joined, t.AheadAtEntry
		st.LastUpdated = t.LastUpdated
	}
	st.Reconnecting = true
	st.Wait = estimate.Unknown("the room is reconnecting")
	st.RefreshInterval = max(r.fb.cfg.Retry, 2*time.Second)
	return Visit{Outcome: Waiting, Status: st, Degraded: err}
}

// pollAlone decides a poll of ticket t without the store: a visitor the instance's share lets
// in is admitted with a local pass; anyone else keeps the place and waits.
func (r *Room) pollAlone(s *settings, t token.Ticket, now time.Time) (Visit, error) {
	ph := s.at(now)
	end := now.Add(ph.session)
	k := renewKey{t.Epoch, t.Number}
	if v, ok := r.fb.issued(k); ok {
		return v, nil // the same ticket again (another tab, a replay): the same pass
	}
	if ph.method == Reject || s.cfg.QueueAll || ph.prequeue || !r.fb.take(now, end) {
		return r.reconnecting(s, &t, now, nil), nil
	}
	v, err := r.sign(token.Pass{
		Session: t.Number, Epoch: t.Epoch, Issued: now, Admitted: now, Expires: end,
		RenewAt: now, // the store counts it at its first request once it is back
		Scope:   ph.scope(), Binding: t.Binding, Local: true,
	})
	if err == nil {
		r.fb.keep(k, v)
		r.counts.admissions.Add(1)
	}
	return v, err
}
