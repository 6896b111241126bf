// Package waitingroom puts visitors in a fair virtual waiting room when a backend is busy.
//
// A Room admits visitors to a protected site at most TotalActiveUsers at a time and at most
// NewUsersPerMinute in any 60 seconds, strictly and in arrival order, and queues the rest. It
// is transparent while the site is not busy: a visitor who finds capacity, rate and an empty
// queue goes straight through. State lives in a store.Store (store/memory for one process,
// store/redis for many instances), which is also the clock every decision is made on.
//
// Visitors carry their place as a signed ticket (a JWT) and, once admitted, a separate pass.
// Package middleware keeps them in cookies and answers for the room: built-in waiting,
// closed and outage pages in the visitor's language, and JSON in the hosted rooms' format for
// clients that ask for it. Each page can be replaced by the host's own http.Handler, which
// reads the visitor's Status from the request context (middleware.StatusFromContext).
// Room.Enter decides for one request without HTTP.
//
// Each waiting answer says when to poll next: a refresh interval away, or, in FIFO order,
// the moment the rate window frees the visitor's slot, so that a crowd polling in step is
// let in at the full configured rate.
//
// A booking that opens at a fixed minute is an Event: a pre-queue before it, a fair (or
// shuffled) order at its start, its own limits, and passes from before it that do not count
// inside it.
//
// Costs: a join or a poll is one store round trip; a poll earlier than the refresh interval
// allows is answered from the ticket with none; an admitted request verifies its pass and
// makes no store call, except a renewal at most once per RenewInterval.
package waitingroom

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/estimate"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/token"
)

// Method is how a room picks who enters next; see package admission.
type Method = admission.Method

// Queueing methods.
const (
	FIFO        = admission.FIFO
	Random      = admission.Random
	Passthrough = admission.Passthrough
	Reject      = admission.Reject
)

// Errors. Failures of the store wrap ErrStore, and the store's own error (for example
// context.DeadlineExceeded) stays visible to errors.Is.
var (
	ErrConfig = errors.New("waitingroom: invalid config")
	// ErrInvalidRoom is the stores' own: a room ID must be 1 to 64 of A-Z a-z 0-9 - _ .
	ErrInvalidRoom = store.ErrInvalidRoom
	ErrStore       = errors.New("waitingroom: store failed")
	// ErrCanceled is a call the request's own context ended (the client went away or
	// half-closed its connection) before the store answered. It is the client's failure, not
	// the store's: it does not wrap ErrStore, is no reason to fail open, and admits nobody.
	ErrCanceled = errors.New("waitingroom: request canceled")
)

// errStorePanic marks a store failure that was a panic in the store.
var errStorePanic = errors.New("store panicked")

// Room is one waiting room. It is safe for concurrent use; many rooms may share one store
// and one process.
type Room struct {
	id      string
	store   store.Store
	codec   *token.Codec
	timeout time.Duration
	clock   func() time.Time

	settings  atomic.Pointer[settings]
	offset    atomic.Int64 // store clock minus app clock, in ms, from the latest answer
	epoch     atomic.Int64 // the room's latest epoch in the store, to tell it when it lost the room
	epochSeen atomic.Int64 // store time (ms) it was last seen
	live      estimate.Live
	codecSet  bool // WithCodec was given: WithKeys does not replace its codec
	renewals  renewals
	polls     polls

	hist        recorder
	overwrite   bool        // WithOverwrite: the first settings replace the stored ones
	pushing     atomic.Bool // a store call carries this instance's change (see offer)
	undecodable atomic.Int64
	keysBad     atomic.Bool // CheckKeys found a mismatch: Enter refuses
	revoked     revocations
	strict      bool         // WithStrictRevocation
	fb          *fallback    // WithFallback
	hook        func(Signal) // WithHook
	countsSlots bool         // the store keeps a count of slots left (store.Slots)
	log         *slog.Logger // WithLogger (nil: slog.Default())
	counts      counts
	slotsSeen   atomic.Int64 // the slot count of the latest store answer; NotCounted before one
}

// Option configures a Room.
type Option func(*Room) error

// WithKeys sets the HMAC key ring that signs tickets and passes; the first key signs, all
// verify. Every instance serving a room needs the same keys. Default: one random key, which
// suits a single process only.
func WithKeys(keys ...token.HMACKey) Option {
	return func(r *Room) error {
		c, err := token.NewCodec(keys)
		if err != nil {
			return fmt.Errorf("%w: keys: %w", ErrConfig, err)
		}
		if !r.codecSet {
			r.codec = c
		}
		return nil
	}
}

// WithCodec sets the token codec, for asymmetric passes (see token.WithPassSigner).
// It overrides WithKeys, whichever comes first.
func WithCodec(c *token.Codec) Option {
	return func(r *Room) error {
		if c == nil {
			return fmt.Errorf("%w: nil codec", ErrConfig)
		}
		r.codec, r.codecSet = c, true
		return nil
	}
}

// WithStoreTimeout bounds every store call. Default 500 ms.
func WithStoreTimeout(d time.Duration) Option {
	return func(r *Room) error {
		if d <= 0 {
			return fmt.Errorf("%w: store timeout must be positive", ErrConfig)
		}
		r.timeout = d
		return nil
	}
}

// WithClock sets the app's clock, which the room corrects by the store's answers before it
// checks a token's times. Default time.Now.
func WithClock(now func() time.Time) Option {
	return func(r *Room) error {
		if now == nil {
			return fmt.Errorf("%w: nil clock", ErrConfig)
		}
		r.clock = now
		return nil
	}
}

// New returns a room named id (1 to 64 of A-Z a-z 0-9 - _ .) kept in s.
func New(id string, s store.Store, cfg Config, opts ...Option) (*Room, error) {
	if !store.ValidRoom(id) {
		return nil, ErrInvalidRoom
	}
	if s == nil {
		return nil, fmt.Errorf("%w: nil store", ErrConfig)
	}
	if v := reflect.ValueOf(s); v.Kind() == reflect.Pointer && v.IsNil() {
		// A nil *redis.Store (its constructor's error dropped) would panic at the first request.
		return nil, fmt.Errorf("%w: the store is a nil %T", ErrConfig, s)
	}
	r := &Room{id: id, store: s, timeout: 500 * time.Millisecond, clock: time.Now}
	_, r.countsSlots = s.(store.Slots)
	r.slotsSeen.Store(admission.NotCounted)
	for _, o := range opts {
		if err := o(r); err != nil {
			return nil, err
		}
	}
	if r.fb != nil && r.fb.cfg.Logger == nil {
		r.fb.cfg.Logger = r.logger().With("room", r.id)
	}
	if r.codec == nil {
		k, err := token.GenerateKey("k1")
		if err != nil {
			return nil, err
		}
		if r.codec, err = token.NewCodec([]token.HMACKey{k}); err != nil {
			return nil, err
		}
	}
	if err := r.SetConfig(cfg); err != nil {
		return nil, err
	}
	return r, nil
}

// ID returns the room's ID.
func (r *Room) ID() string { return r.id }

// Codec returns the codec that signs the room's tickets and passes (its JWKSHandler serves
// the public keys of asymmetric passes).
func (r *Room) Codec() *token.Codec { return r.codec }

// Config returns the room's settings with defaults filled in.
func (r *Room) Config() Config { return r.settings.Load().cfg.clone() }

// SetConfig validates cfg and applies it from the next request on, here and, once the next
// store call has stored it as the room's next version, on every instance: it replaces what
// was stored (see WithOverwrite). The visitors already queued keep their places.
func (r *Room) SetConfig(cfg Config) error {
	for {
		cur := r.settings.Load()
		s, err := r.replaced(cur, cfg)
		if err != nil {
			return err
		}
		if r.settings.CompareAndSwap(cur, s) {
			return nil
		}
	}
}

// Outcome is what happens to a visitor's request.
type Outcome uint8

// Outcomes of Enter.
const (
	// Admitted: serve the request.
	Admitted Outcome = iota + 1
	// Waiting: show the waiting page.
	Waiting
	// Rejected: the room admits nobody (QueueingMethod Reject), or it is sold out and
	// takes no new place (Status.SoldOut); show the closed page.
	Rejected
	// Suspended: the room is off; serve the request without touching cookies.
	Suspended
	// Refused: a BeforeJoin check turned the request away (Visit.Refusal says why); the
	// caller answers it.
	Refused
	// Joining: Enter was called with AskBeforeJoin and would give the request a new place;
	// it took none. The caller runs its checks and joins with Enter(ctx, "").
	Joining
)

// EnterOption changes one call of Enter.
type EnterOption func(*enterOptions)

type enterOptions struct {
	beforeJoin func() error
	ask        bool   // AskBeforeJoin
	bind       string // BindTo's value ("": none)
}

// BeforeJoin has Enter call check just before it would give the request a new place in the
// queue: the request carries no valid ticket or pass, or its session is over. If check
// returns an error, Enter takes no place, makes no store call and returns Outcome Refused
// with the error as Visit.Refusal; the caller answers the request (a challenge, a 429).
// Holders of valid tokens, and rooms that take no places (suspended, rejecting), never reach
// it. It serves bot checks and per-client limits without a second look at the visitor's
// token.
func BeforeJoin(check func() error) EnterOption {
	return func(o *enterOptions) { o.beforeJoin = check }
}

// AskBeforeJoin has Enter answer Outcome Joining, with no store call and no place taken,
// where it would give the request a new place, in the cases BeforeJoin's check would run.
// It does what BeforeJoin does without a closure per request: the option is one value, so
// a caller that checks every request (a middleware's join guards) allocates nothing for the
// requests that hold a valid ticket or pass. The caller then runs its checks and joins
// with Enter(ctx, "", ...), which goes straight to the join.
func AskBeforeJoin() EnterOption { return askBeforeJoin }

var askBeforeJoin EnterOption = func(o *enterOptions) { o.ask = true }

// BindTo ties the visitor's new ticket and pass to the client value v, a value the host
// chooses that stays the same for one client and differs between clients: a client
// address or its prefix, a device cookie, a user ID. A ticket or pass bound to another
// value is not valid here: its holder queues as anyone new does, so that a pass shared by
// many clients admits one. Tokens carry a MAC of v (token.Codec.Bind), not v. The cost:
// a client whose value changes (a phone that moves between networks, when bound to its
// address) loses its place or session. Default: none, tokens are bearer tokens.
func BindTo(v string) EnterOption {
	return func(o *enterOptions) { o.bind = v }
}

// Visit is the answer to Enter.
type Visit struct {
	Outcome Outcome
	// Token is the visitor's new ticket or pass, to store (in a cookie) for MaxAge;
	// empty when the visitor's token stays as it was.
	Token  string
	MaxAge time.Duration
	// Pass is the visitor's pass when Admitted.
	Pass token.Pass
	// Status is what the waiting or closed page shows.
	Status Status
	// Degraded is a store failure that did not change the outcome: a renewal that failed
	// while the pass was still valid. It will be tried again on the next request.
	Degraded error
	// Final, when Admitted, says that the room will not renew this pass: renewal is off (by
	// Config or the event in force) or a renewal would carry the session past
	// MaxSessionDuration. Its Expires is the session's end.
	Final bool
	// Refusal is why a BeforeJoin check refused the request, when Outcome is Refused.
	Refusal error
}

// Enter decides what happens to a request that carries raw, the visitor's ticket or pass
// ("" or anything invalid counts as none: a new place at the back). The error is non-nil
// only when the store failed and nothing could be decided; it wraps ErrStore.
func (r *Room) Enter(ctx context.Context, raw string, opts ...EnterOption) (Visit, error) {
	if r.keysBad.Load() {
		// Not ErrStore: no reason to fail open.
		return Visit{}, fmt.Errorf("%w: room %q (see CheckKeys)", ErrKeyMismatch, r.id)
	}
	s := r.settings.Load()
	if s.cfg.Suspended {
		return Visit{Outcome: Suspended}, nil
	}
	var o enterOptions
	for _, opt := range opts {
		opt(&o)
	}
	now := r.now()
	if raw != "" {
		// The header says which kind to verify it as (a ticket is parsed once, not first
		// as a pass); only verification decides.
		if !token.LooksLikeTicket(raw) {
			if p, err := r.codec.ParsePass(r.id, raw, now); err == nil && r.bound(p.Binding, &o) {
				return r.renew(ctx, s, p, now, &o)
			}
		}
		if t, err := r.codec.ParseTicket(r.id, raw, now); err == nil && r.bound(t.Binding, &o) {
			return r.poll(ctx, s, t, now)
		}
	}
	return r.join(ctx, s, &o, now)
}

// bound reports whether a token bound to binding may be used by the request of o: unbound
// tokens by any, bound ones by the client they are bound to.
func (r *Room) bound(binding string, o *enterOptions) bool {
	return binding == "" || binding == r.codec.Bind(o.bind)
}

// Revive brings back the session of pass p, which has run out, if the room has room for
// it: for a visitor whose booking form arrives just after its session ended. It does not
// count as an admission and takes no slot granted to anyone else (see
// admission.Room.Revive). The caller decides which passes may come back: p must have been
// verified (token.ErrExpired is the only error its parse may have had), and the middleware
// revives only passes that ran out less than WithPostGrace ago, on requests that send data.
// The visit is Admitted with a new pass when the session came back; its Outcome is zero
// otherwise, as it is for a pass bound to another client than BindTo says.
func (r *Room) Revive(ctx context.Context, p token.Pass, opts ...EnterOption) (Visit, error) {
	var o enterOptions
	for _, opt := range opts {
		opt(&o)
	}
	if !r.bound(p.Binding, &o) {
		return Visit{}, nil
	}
	s := r.settings.Load()
	now := r.now()
	ph := s.at(now)
	if p.Room != r.id || s.cfg.Suspended || p.Scope != ph.scope() || s.cfg.QueueAll && s.cfg.QueueAllEndsSessions ||
		s.beyondMax(p, ph, now) {
		return Visit{}, nil
	}
	var ren store.Renewal
	l, pushed := r.offer(s)
	err := r.call(ctx, OpRenew, func(ctx context.Context) (err error) {
		ren, err = r.store.Revive(ctx, r.id, store.Ref{Number: p.Session, Epoch: p.Epoch}, l)
		return err
	})
	s, _ = r.learn(ren.Settings, pushed)
	if err != nil {
		return Visit{}, err
	}
	r.observeClock(ren.Now)
	if !ren.Active {
		return Visit{}, nil
	}
	r.renewals.forget(renewKey{p.Epoch, p.Session})
	return r.admit(s, p.Session, p.Epoch, admittedAt(p), ren.Now, ren.Expires, p.Scope, p.Binding)
}

// admittedAt is when p's session began (passes of earlier versions: its Issued).
func admittedAt(p token.Pass) time.Time {
	if p.Admitted.IsZero() {
		return p.Issued
	}
	return p.Admitted
}

// beyondMax reports whether renewing p's session at now would carry it past the room's
// MaxSessionDuration.
func (s *settings) beyondMax(p token.Pass, ph phase, now time.Time) bool {
	return s.cfg.MaxSessionDuration > 0 && now.Add(ph.session).After(admittedAt(p).Add(s.cfg.MaxSessionDuration))
}

// Release ends the session of pass p at once, freeing its slot.
func (r *Room) Release(ctx context.Context, p token.Pass) error {
	// Forgotten before and after: a renewal that ran in between must not stand either.
	k := renewKey{p.Epoch, p.Session}
	r.renewals.forget(k)
	defer r.renewals.forget(k)
	// A release is the host's, after its own work: it runs to the room's deadline whatever
	// became of the client.
	ctx = context.WithoutCancel(ctx)
	ref := store.Ref{Number: p.Session, Epoch: p.Epoch}
	if err := r.call(ctx, OpRelease, func(ctx context.Context) error { return r.store.Release(ctx, r.id, ref) }); err != nil {
		return err
	}
	r.revoked.add(k, p.Expires, r.now()) // refused here at once
	ctl, ok := r.store.(store.Control)
	if !ok {
		return nil
	}
	// Every other instance within a second. Released all the same if this fails: the
	// others refuse the pass at its next renewal, as they did before.
	return r.call(ctx, OpRelease, func(ctx context.Context) error {
		if err := ctl.Revoke(ctx, r.id, ref, p.Expires); err != nil {
			return fmt.Errorf("released, but not every instance was told: %w", err)
		}
		return nil
	})
}

// Stats reads the room's counters from the store. A caller's context that ends first is
// ErrCanceled, not a store failure: a scrape or an admin request that gives up signals no
// StoreDown.
func (r *Room) Stats(ctx context.Context) (store.Stats, error) {
	l, pushed := r.offer(r.settings.Load())
	var st store.Stats
	err := r.call(ctx, OpStats, func(ctx context.Context) (err error) {
		st, err = r.store.Stats(ctx, r.id, l)
		return err
	})
	r.learn(st.Settings, pushed)
	if err != nil {
		return st, err
	}
	r.seen(st.Now, st.Waiting, st.Active)
	r.sawSlots(st.Slots)
	return st, nil
}

// Status is what a waiting visitor is told. The host's waiting page reads it from the request
// context (middleware.StatusFromContext); the JSON answer carries it in the hosted rooms'
// field names.
type Status struct {
	Room        string
	Method      Method
	QueueAll    bool
	UsersAhead  int64 // under Random, the others waiting: any of them may go first
	Wait        estimate.Wait
	LastUpdated time.Time // the store's time of the visitor's last counted poll
	// RefreshInterval is how long from this answer to poll again: the room's
	// RefreshInterval, or less when the visitor's slot is due sooner (see
	// Config.RefreshInterval); 0 when the room rejects.
	RefreshInterval time.Duration
	QueueIsFull     bool // the estimated wait exceeds a day
	// Reconnecting says the store is unreachable and the room decides alone (WithFallback):
	// the visitor keeps its place (UsersAhead is as it last was) and is let in when the
	// room's share allows, or once the store is back.
	Reconnecting bool

	// For a progress bar: when the visitor took its place (zero for a visitor without one),
	// and UsersAhead when it first had a place in line (0 while none: under Random, or in
	// a pre-queue that will be shuffled); never below UsersAhead.
	Joined       time.Time
	AheadAtEntry int64

	// Scheduled events (zero while a room has none).
	EventActive         bool
	EventPrequeueing    bool
	ShuffleAtEventStart bool
	TimeUntilEventStart time.Duration
	TimeUntilEventEnd   time.Duration

	// What the site tells the queue. Message is the operator's message (Config.Messages;
	// Message.In picks the visitor's language), as the room's settings say at LastUpdated.
	Message Message
	// SlotsCounted says the host counts the slots left (Room.SetSlots, TakeSlots); Slots
	// is then the count of the store's answer to this visitor (or, for an answer the store
	// was not asked for, of this instance's latest).
	SlotsCounted bool
	Slots        int64
	// SoldOut says the visitor got no place: the room closes when sold out
	// (Config.CloseWhenSoldOut) and no slot is left. The Outcome is Rejected, with no
	// RefreshInterval; a visitor who already waits is never SoldOut, it keeps its place.
	SoldOut bool
}

func (r *Room) renew(ctx context.Context, s *settings, p token.Pass, now time.Time, o *enterOptions) (Visit, error) {
	if r.revoked.has(renewKey{p.Epoch, p.Session}) {
		// Released: the visitor comes in as anyone new would.
		return r.join(ctx, s, o, now)
	}
	ph := s.at(now)
	if p.Scope != ph.scope() && ph.ev != nil && !ph.prequeue || s.cfg.QueueAll && s.cfg.QueueAllEndsSessions {
		// Issued before this event (or before queue-all): not valid now. The holder queues
		// like everyone else.
		return r.join(ctx, s, o, now)
	}
	if (!ph.renewal || s.beyondMax(p, ph, now)) && !p.Local {
		// (A pass issued alone goes to the store once, to be counted.)
		return Visit{Outcome: Admitted, Pass: p, Final: true}, nil
	}
	if now.Before(p.RenewAt) && !r.strict || r.fb != nil && r.fb.alone(now) {
		return Visit{Outcome: Admitted, Pass: p}, nil
	}
	c, lead := r.renewals.start(renewKey{p.Epoch, p.Session}, now)
	if !lead {
		select {
		case <-c.done:
		case <-ctx.Done():
			// The client left while another request renewed: its pass is valid; no store
			// failure to report.
			return Visit{Outcome: Admitted, Pass: p}, nil
		}
	} else {
		c.v.visit, c.v.active = r.renewOnce(ctx, s, p)
		until := now
		switch {
		case c.v.visit.Degraded != nil:
			// Never later than a renewal would be due anyway: a store that lost the room
			// counts passes again for a recovery pause of RenewInterval+RefreshInterval, and
			// one retried later would be counted only after it, over the capacity.
			until = now.Add(min(renewRetry, s.at(now).renewEvery))
		case c.v.active && !r.strict:
			until = c.v.visit.Pass.RenewAt // on the clock now is read from
		}
		r.renewals.finish(c, until)
	}
	if !c.v.active {
		// Released, expired or forgotten: the visitor comes in as anyone new would.
		return r.join(ctx, s, o, r.now())
	}
	v := c.v.visit
	if !lead {
		if v.Degraded != nil {
			// Another request's renewal failed and reported it; this one made no store call.
			return Visit{Outcome: Admitted, Pass: p}, nil
		}
		v.MaxAge = v.Pass.Expires.Sub(now) // the cookie lasts as long as the pass, from now
	}
	return v, nil
}

// renewOnce asks the store to renew p's session: the visit with the new pass, or with the
// old one and Degraded set when the store failed; active false when the session is over.
func (r *Room) renewOnce(ctx context.Context, s *settings, p token.Pass) (Visit, bool) {
	var ren store.Renewal
	l, pushed := r.offer(s)
	if !p.Admitted.IsZero() {
		l.Admitted = p.Admitted.UnixMilli() // a store that lost the room counts it again
	}
	l.Recount = p.Local // one this instance admitted alone: counted now
	// A renewal serves every request of the session, so the one that runs it does not end it
	// by going away: it runs to the room's deadline (a store failure is then the store's).
	err := r.call(context.WithoutCancel(ctx), OpRenew, func(ctx context.Context) (err error) {
		ren, err = r.store.Renew(ctx, r.id, store.Ref{Number: p.Session, Epoch: p.Epoch}, l)
		return err
	})
	s, _ = r.learn(ren.Settings, pushed)
	if err != nil {
		r.outage(r.now(), s, err)
		return Visit{Outcome: Admitted, Pass: p, Degraded: err}, true
	}
	if r.fb != nil {
		r.fb.answered(ren.Now)
	}
	r.observeClock(ren.Now)
	if !ren.Active {
		return Visit{}, false
	}
	v, err := r.admit(s, p.Session, p.Epoch, admittedAt(p), ren.Now, ren.Expires, p.Scope, p.Binding)
	if err != nil {
		return Visit{Outcome: Admitted, Pass: p, Degraded: err}, true
	}
	return v, true
}

func (r *Room) poll(ctx context.Context, s *settings, t token.Ticket, now time.Time) (Visit, error) {
	ph := s.at(now)
	if ph.method == Reject && !ph.prequeue {
		return r.rejected(s, ph, now), nil
	}
	if now.Before(s.due(ph, t.LastUpdated, t.NextPoll)) {
		// Too soon: the last answer stands and the store is not asked.
		st := r.status(s, ph, t.UsersAhead, now)
		st.LastUpdated = t.LastUpdated
		if !t.NextPoll.IsZero() {
			st.RefreshInterval = max(t.NextPoll.Sub(now), pollTolerance)
		}
		st.Joined, st.AheadAtEntry = t.Joined, t.AheadAtEntry
		if st.Wait.Reason == "" {
			st.Wait = estimate.Wait{Known: t.WaitKnown, P25: t.Wait25, P50: t.Wait50, P75: t.Wait75}
			st.QueueIsFull = queueIsFull(st.Wait)
		}
		return Visit{Outcome: Waiting, Status: st}, nil
	}
	if r.fb != nil && r.fb.alone(now) {
		return r.pollAlone(s, t, now)
	}
	a, lead := r.polls.start(renewKey{t.Epoch, t.Number}, now)
	if !lead {
		select {
		case <-a.done:
		case <-ctx.Done():
			return Visit{}, fmt.Errorf("%w: %w", ErrCanceled, context.Cause(ctx))
		}
		v := a.v.visit
		if a.v.err == nil && v.Outcome == Waiting {
			// The same ticket's answer, given to another client of it: when to poll is
			// counted from now.
			if next := v.Status.LastUpdated.Add(v.Status.RefreshInterval); next.After(now) {
				v.Status.RefreshInterval = max(next.Sub(now), pollTolerance)
			}
		}
		return v, a.v.err
	}
	v, err := r.pollStore(ctx, s, t)
	until := now // shared with those already waiting only
	if err == nil && v.Outcome == Waiting {
		// As long as the new ticket would be answered from itself.
		until = s.due(s.at(v.Status.LastUpdated), v.Status.LastUpdated, v.Status.LastUpdated.Add(v.Status.RefreshInterval))
	}
	a.v = polled{v, err}
	r.polls.finish(a, until)
	return v, err
}

// pollStore asks the store about ticket t.
func (r *Room) pollStore(ctx context.Context, s *settings, t token.Ticket) (Visit, error) {
	var res store.Result
	l, pushed := r.offer(s)
	err := r.call(ctx, OpPoll, func(ctx context.Context) (err error) {
		res, err = r.store.Poll(ctx, r.id, store.Ref{Number: t.Number, Epoch: t.Epoch}, l)
		return err
	})
	s, _ = r.learn(res.Settings, pushed)
	if err != nil {
		if r.outage(r.now(), s, err) {
			v, verr := r.pollAlone(s, t, r.now())
			v.Degraded = err // reported, as a failed renewal is
			return v, verr
		}
		return Visit{}, err
	}
	if res.Requeued {
		return r.answer(s, res, nil, t.Binding) // a new place: what it was told before no longer holds
	}
	res.Joined = t.Joined
	return r.answer(s, res, &t, t.Binding)
}

// join gives the visitor a place, now being the room's time (read once per Enter).
func (r *Room) join(ctx context.Context, s *settings, o *enterOptions, now time.Time) (Visit, error) {
	if ph := s.at(now); ph.method == Reject && !ph.prequeue {
		return r.rejected(s, ph, now), nil
	}
	if o.ask {
		if r.fb != nil && r.fb.holding(now) {
			return r.reconnecting(s, nil, now, nil), nil // no place to take: no guard to run
		}
		return Visit{Outcome: Joining}, nil
	}
	if r.fb != nil && r.fb.alone(now) {
		return r.reconnecting(s, nil, now, nil), nil // no place to take: no guard to run
	}
	if o.beforeJoin != nil {
		if err := o.beforeJoin(); err != nil {
			return Visit{Outcome: Refused, Refusal: err}, nil
		}
	}
	var res store.Result
	l, pushed := r.offer(s)
	err := r.call(ctx, OpJoin, func(ctx context.Context) (err error) {
		res, err = r.store.Join(ctx, r.id, l)
		return err
	})
	s, _ = r.learn(res.Settings, pushed)
	if err != nil {
		if r.outage(r.now(), s, err) {
			return r.reconnecting(s, nil, r.now(), err), nil
		}
		return Visit{}, err
	}
	return r.answer(s, res, nil, r.codec.Bind(o.bind))
}

// answer turns a store's Join or Poll result into a Visit with a fresh ticket or pass;
// prev is the ticket polled with (nil on a join), whose wait the new one follows on from.
// binding is the ticket's (a join: the client's), which the new ticket or pass keeps.
func (r *Room) answer(s *settings, res store.Result, prev *token.Ticket, binding string) (Visit, error) {
	ph := s.at(res.Now) // the store's time: the phase the store applied
	r.observeClock(res.Now)
	if r.fb != nil {
		r.fb.observe(res.Stats)
	}
	r.observeEpoch(res.Epoch, res.Now)
	r.seen(res.Now, res.Waiting, res.Active)
	r.sawSlots(res.Slots)
	if res.SoldOut {
		// No place taken: a closed room's answer, nothing to count.
		return r.soldOut(s, ph, res.Now), nil
	}
	if prev == nil { // a join, or a poll whose place was gone: a new place either way
		r.counts.joins.Add(1)
		if res.Requeued {
			r.counts.requeues.Add(1)
		}
	}
	if res.Admitted {
		r.counts.admissions.Add(1)
	}
	// A pre-queue's pause says nothing about how fast the room lets people in.
	waiting := res.Waiting
	if ph.prequeue {
		waiting = 0
	}
	r.live.Observe(res.Now, res.Granted, waiting, ph.pace)
	var waited time.Duration
	if res.Admitted && prev != nil {
		waited = res.Now.Sub(prev.Joined)
	}
	joined := res.Joined // of a waiter: its place's, for Snapshot's longest wait
	if prev != nil {
		joined = prev.Joined
	}
	if res.Admitted {
		joined = time.Time{}
	}
	if r.hist.note(res.Now, prev == nil, res.Admitted, waited, res.Waiting, res.Active, joined, 2*s.cfg.RefreshInterval) {
		r.recordLater(res.Now)
	}
	if res.Admitted {
		return r.admit(s, res.Ticket, res.Epoch, res.Now, res.Now, res.Expires, ph.scope(), binding)
	}
	st := r.status(s, ph, res.UsersAhead, res.Now)
	st.RefreshInterval = res.NextPoll.Sub(res.Now)
	random := ph.method == Random
	if random || ph.prequeue && ph.ev.cfg.ShuffleAtEventStart {
		// No order, or none drawn yet: everyone else waiting may go first.
		st.UsersAhead = max(res.Waiting-1, 0)
	}
	switch {
	case st.Wait.Reason != "":
	case random:
		st.Wait = r.live.EstimateRandom(res.Waiting, ph.pace)
	default:
		st.Wait = r.live.Estimate(res.UsersAhead, ph.pace)
	}
	if prev != nil && st.Wait.Known {
		was := estimate.Wait{Known: prev.WaitKnown, P25: prev.Wait25, P50: prev.Wait50, P75: prev.Wait75}
		st.Wait = estimate.Steady(was, st.Wait, res.Now.Sub(prev.LastUpdated))
	}
	st.QueueIsFull = queueIsFull(st.Wait)
	st.Joined = res.Joined
	if !random && !(ph.prequeue && ph.ev.cfg.ShuffleAtEventStart) {
		// A place in line: the first one is where the progress bar starts.
		st.AheadAtEntry = st.UsersAhead
		if prev != nil && prev.AheadAtEntry > st.UsersAhead {
			st.AheadAtEntry = prev.AheadAtEntry
		}
	}
	t := token.Ticket{
		Room:        r.id,
		Number:      res.Ticket,
		Epoch:       res.Epoch,
		Joined:      res.Joined,
		LastUpdated: res.Now,
		Expires:     res.Now.Add(s.cfg.QueueHold),
		UsersAhead:  st.UsersAhead,
		WaitKnown:   st.Wait.Known,
		Wait25:      st.Wait.P25,
		Wait50:      st.Wait.P50,
		Wait75:      st.Wait.P75,
		NextPoll:    res.NextPoll,
		Binding:     binding,
	}
	t.AheadAtEntry = st.AheadAtEntry
	raw, err := r.codec.SignTicket(t)
	if err != nil {
		return Visit{}, err
	}
	return Visit{Outcome: Waiting, Token: raw, MaxAge: s.cfg.QueueHold, Status: st}, nil
}

// admit issues a pass for session, which began at admitted, scoped to what it was admitted
// for.
func (r *Room) admit(s *settings, session, epoch int64, admitted, now, expires time.Time, scope, binding string) (Visit, error) {
	p := token.Pass{
		Session:  session,
		Epoch:    epoch,
		Issued:   now,
		Admitted: admitted,
		Expires:  expires,
		RenewAt:  now.Add(s.at(now).renewEvery),
		Scope:    scope,
		Binding:  binding,
	}
	if p.RenewAt.After(expires) {
		p.RenewAt = expires
	}
	return r.sign(p)
}

// sign issues pass p of this room.
func (r *Room) sign(p token.Pass) (Visit, error) {
	p.Room = r.id
	raw, err := r.codec.SignPass(p)
	if err != nil {
		return Visit{}, err
	}
	return Visit{Outcome: Admitted, Token: raw, MaxAge: p.Expires.Sub(p.Issued), Pass: p}, nil
}

// soldOut is what a visitor the store gave no place, the room being sold out, is told.
func (r *Room) soldOut(s *settings, ph phase, now time.Time) Visit {
	st := r.status(s, ph, 0, now)
	st.SoldOut, st.SlotsCounted, st.Slots = true, true, 0
	st.Wait = estimate.Unknown("no slots left")
	st.RefreshInterval = 0
	return Visit{Outcome: Rejected, Status: st}
}

func (r *Room) rejected(s *settings, ph phase, now time.Time) Visit {
	st := r.status(s, ph, 0, now)
	st.Wait = estimate.Unknown("the room admits nobody")
	st.RefreshInterval = 0
	return Visit{Outcome: Rejected, Status: st}
}

// status is what a visitor waiting at t is told, before the wait is estimated; Wait has a
// Reason when there is nothing to estimate.
func (r *Room) status(s *settings, ph phase, ahead int64, t time.Time) Status {
	st := Status{
		Room:            r.id,
		Method:          ph.method,
		QueueAll:        s.cfg.QueueAll,
		UsersAhead:      ahead,
		LastUpdated:     t,
		RefreshInterval: s.cfg.RefreshInterval,
		Message:         s.msg,
	}
	if n := r.slotsSeen.Load(); n >= 0 {
		st.SlotsCounted, st.Slots = true, n
	}
	if e := ph.ev; e != nil {
		st.ShuffleAtEventStart = e.cfg.ShuffleAtEventStart
		if ph.prequeue {
			st.EventPrequeueing = true
			st.TimeUntilEventStart = e.cfg.Start.Sub(t)
			st.Wait = estimate.Unknown("the event has not started")
		} else {
			st.EventActive = true
			st.TimeUntilEventEnd = e.cfg.End.Sub(t)
		}
	}
	if s.cfg.QueueAll {
		st.Wait = estimate.Unknown("queue all")
	}
	return st
}

// due is when a ticket last answered at lastUpdated, told to poll at nextPoll, is asked
// about in the store again: from nextPoll on (a moment early: the corrected app clock may
// run behind the store's), or from nine tenths of a refresh interval if that is sooner:
// polling early gains nothing in ticket order. Under Random it would buy extra draws, so
// there nextPoll holds.
func (s *settings) due(ph phase, lastUpdated, nextPoll time.Time) time.Time {
	due := lastUpdated.Add(s.minPoll)
	if np := nextPoll.Add(-pollTolerance); !nextPoll.IsZero() && (np.Before(due) || ph.method == Random) {
		due = np
	}
	return due
}

// pollTolerance is how early before its NextPoll a poll still reaches the store: the app's
// clock, corrected by the store's answers, may run a little behind the store's.
const pollTolerance = 50 * time.Millisecond

// queueIsFull is the hosted rooms' queueIsFull: the estimated wait exceeds a day.
func queueIsFull(w estimate.Wait) bool { return w.Known && w.P50 > 24*time.Hour }

// call runs one store operation of kind op under the room's deadline.
func (r *Room) call(ctx context.Context, op StoreOp, fn func(context.Context) error) (err error) {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrCanceled, err) // no store call for a client already gone
	}
	start := time.Now()
	defer func() {
		// A store that panics fails this call like any other failure: a renewal in flight
		// still finishes (others wait on it), and the caller reports it.
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %w: %v", ErrStore, errStorePanic, p)
		}
		switch {
		case errors.Is(err, ErrCanceled): // the client's, not the store's
		case errors.Is(err, store.ErrVersion):
			r.called(op, time.Since(start), nil) // an answer: another change came first
		default:
			r.called(op, time.Since(start), err)
		}
	}()
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	if err := fn(ctx); err != nil {
		if parent.Err() != nil {
			// The request's own context ended, not the room's deadline: whatever the store
			// said, the client is gone.
			return fmt.Errorf("%w: %w", ErrCanceled, context.Cause(parent))
		}
		if errors.Is(err, store.ErrVersion) {
			return err // the store answered: the caller's to read, not ErrStore
		}
		return fmt.Errorf("%w: %w", ErrStore, err)
	}
	return nil
}

// now is the app's clock corrected to the store's, which every token time is written in.
func (r *Room) now() time.Time {
	return r.clock().Add(time.Duration(r.offset.Load()) * time.Millisecond)
}

func (r *Room) observeClock(storeNow time.Time) {
	r.offset.Store(storeNow.Sub(r.clock()).Milliseconds())
}

// limits are the settings' limits for one store call, with the epoch this instance saw
// within the hold, so that a store which lost the room can tell.
func (r *Room) limits(s *settings) admission.Limits {
	l := s.limits
	now := r.now()
	if seen := r.epochSeen.Load(); seen != 0 && now.UnixMilli()-seen < l.Hold.Milliseconds() {
		l.LastEpoch = r.epoch.Load()
	}
	if len(s.adm) > 0 {
		l.Events = s.eventsNear(now)
	}
	return l
}

// observeEpoch keeps the room's latest epoch; tickets of earlier ones (recovered after a
// loss) carry smaller epochs, which do not count.
func (r *Room) observeEpoch(epoch int64, at time.Time) {
	for {
		cur := r.epoch.Load()
		if epoch < cur || r.epoch.CompareAndSwap(cur, epoch) {
			break
		}
	}
	r.epochSeen.Store(at.UnixMilli())
}
