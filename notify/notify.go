// Package notify tells operators, through a webhook, what their waiting rooms are doing:
// when a room starts queueing and when it stops, how it goes every few minutes meanwhile,
// when the queue or the wait passes a threshold, and who changed its settings. Each
// notification is sent once across all the instances that serve a room: the instance that
// claims it in the store (store.Once) sends it.
//
// The body is Slack-compatible, {"text": ...}, with structured fields beside it for other
// receivers, and can be signed (WithSecret). Delivery runs in the background from a
// bounded queue, each notification tried again until it is 30 minutes old (WithRetry): a
// visitor's request only hands the room's signal to a channel, never waits, and a receiver
// that is down loses only what overflows the queue, which the log and Stats say.
//
//	var reg *rooms.Registry
//	n, err := notify.New(url, st, func(id string) (*waitingroom.Room, bool) { return reg.Room(id) })
//	reg, err = rooms.NewRegistry(st, rooms.WithRoomOptions(waitingroom.WithHook(n.Hook())))
//	go n.Run(ctx)
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/estimate"
	"github.com/waitingroom-go/waitingroom/store"
)

// Notifier turns rooms' signals into notifications. Make one per process with New, give
// its Hook to the rooms (waitingroom.WithHook) and run Run. It is safe for concurrent use.
type Notifier struct {
	url    string
	once   store.Once
	lookup func(id string) (*waitingroom.Room, bool)
	o      options

	signals chan waitingroom.Signal
	wake    chan struct{} // Run checks: a signal came
	out     chan Message

	mu      sync.Mutex // one Check at a time
	rooms   map[string]*episode
	changes []waitingroom.Signal // settings changes whose claim failed, to try again
	down    map[string]time.Time // rooms whose store failed: not asked again before then

	pmu     sync.Mutex // pending and idle
	pending int
	idle    chan struct{} // closed while nothing is queued or in flight

	sent, failed, dropped, retried, lost atomic.Int64
}

// Option configures a Notifier.
type Option func(*options) error

type options struct {
	secret          []byte
	every, during   time.Duration
	waiting         int64
	wait            time.Duration
	stopAfter       time.Duration
	refresh         time.Duration
	queue           int
	backoff, maxAge time.Duration
	client          *http.Client
	log             *slog.Logger
	clock           func() time.Time
	tick            time.Duration
	timeout         time.Duration
	signalsCapacity int
}

// WithSecret signs each body: the header Waitingroom-Signature is "t=<unix seconds>,
// v1=<hex HMAC-SHA256 of t, a dot and the body>", for receivers other than Slack to check
// (and to refuse old timestamps). Default: unsigned. The secret is never logged.
func WithSecret(secret []byte) Option {
	return func(o *options) error {
		if len(secret) < 16 {
			return errors.New("notify: a secret needs at least 16 bytes")
		}
		o.secret = bytes.Clone(secret)
		return nil
	}
}

// WithPeriodic sends how a queueing room goes every every, for its first during: what the
// operators asked for in the story. Default every 5 minutes for the first 30; every 0
// sends none.
func WithPeriodic(every, during time.Duration) Option {
	return func(o *options) error {
		if every < 0 || during < 0 || every > 0 && every < time.Minute {
			return errors.New("notify: the periodic interval is 0 (off) or at least a minute, and the span not negative")
		}
		o.every, o.during = every, during
		return nil
	}
}

// WithThresholds sends one notification per queueing spell when the room's waiting count
// reaches waiting, and one when the wait a newcomer is told reaches wait. Default: neither
// (0 turns each off).
func WithThresholds(waiting int64, wait time.Duration) Option {
	return func(o *options) error {
		if waiting < 0 || wait < 0 {
			return errors.New("notify: negative threshold")
		}
		o.waiting, o.wait = waiting, wait
		return nil
	}
}

// WithStopAfter sets how long a room must have nobody waiting before it counts as
// stopped: a queue can drain and fill again within seconds. Default 1 minute.
func WithStopAfter(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return errors.New("notify: negative stop delay")
		}
		o.stopAfter = d
		return nil
	}
}

// WithRefresh sets how often the counters of a room that queues are read from the store
// (one call), for the periodic notifications, the thresholds and the stop. Default 10 s.
func WithRefresh(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return errors.New("notify: the refresh must be positive")
		}
		o.refresh = d
		return nil
	}
}

// WithQueue bounds the notifications waiting to be delivered: one more is dropped, logged
// and counted (Stats.Dropped). Default 256.
func WithQueue(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return errors.New("notify: the queue needs room for one")
		}
		o.queue = n
		return nil
	}
}

// WithRetry sets how a notification the receiver did not take is tried again: after
// backoff, doubling each time up to 30 s, until it has waited maxAge since it was queued
// (a network error, a timeout, 408, 429 and 5xx are tried again; another 4xx is not). The
// notifications behind it wait in the queue meanwhile, so a receiver that is down for less
// than maxAge loses only what overflows the queue (WithQueue). Default 1 s and 30 minutes.
func WithRetry(backoff, maxAge time.Duration) Option {
	return func(o *options) error {
		if backoff < 0 || maxAge < 0 {
			return errors.New("notify: a backoff and an age not negative")
		}
		o.backoff, o.maxAge = backoff, maxAge
		return nil
	}
}

// WithHTTPClient sets the client that posts. Default: one with a 5 s timeout.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("notify: nil HTTP client")
		}
		o.client = c
		return nil
	}
}

// WithLogger sets where failed deliveries and drops are logged. Default slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("notify: nil logger")
		}
		o.log = l
		return nil
	}
}

// WithClock sets the clock of the periodic notifications and the stop delay. Default
// time.Now. Spells are named by the store's time; this clock is corrected by the store's
// answers to the claims, so instances whose clocks disagree send each notification on
// time all the same.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("notify: nil clock")
		}
		o.clock = now
		return nil
	}
}

// WithTick sets how often Run checks the rules besides when a signal comes. Default 1 s;
// 0 checks only on signals (a host that calls Check itself).
func WithTick(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return errors.New("notify: negative tick")
		}
		o.tick = d
		return nil
	}
}

// New returns a Notifier that posts to endpoint (http or https), claims notifications in
// st (the rooms' store, shared by their instances) and finds rooms with lookup (a
// registry's Room method, or a function that returns the one room).
func New(endpoint string, st store.Once, lookup func(id string) (*waitingroom.Room, bool), opts ...Option) (*Notifier, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("notify: the endpoint must be an http or https URL")
	}
	if st == nil || reflect.ValueOf(st).Kind() == reflect.Pointer && reflect.ValueOf(st).IsNil() {
		return nil, errors.New("notify: nil store")
	}
	if lookup == nil {
		return nil, errors.New("notify: nil room lookup")
	}
	o := options{
		every: 5 * time.Minute, during: 30 * time.Minute, stopAfter: time.Minute, refresh: 10 * time.Second,
		queue: 256, backoff: time.Second, maxAge: 30 * time.Minute, client: &http.Client{Timeout: 5 * time.Second},
		log: slog.Default(), clock: time.Now, tick: time.Second, timeout: 2 * time.Second, signalsCapacity: 1024,
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	n := &Notifier{
		url: endpoint, once: st, lookup: lookup, o: o,
		signals: make(chan waitingroom.Signal, o.signalsCapacity),
		wake:    make(chan struct{}, 1),
		out:     make(chan Message, o.queue),
		rooms:   make(map[string]*episode),
		down:    make(map[string]time.Time),
		idle:    make(chan struct{}),
	}
	close(n.idle)
	return n, nil
}

// String names the notifier by its endpoint's host: the URL's path and query may hold a
// secret (a Slack webhook's does).
func (n *Notifier) String() string {
	u, _ := url.Parse(n.url)
	return "notify.Notifier(" + u.Scheme + "://" + u.Host + "/…)"
}

// Hook returns the function to give rooms with waitingroom.WithHook. It never blocks: a
// signal that finds the channel full is dropped and counted (Stats.LostSignals); the
// periodic read of the room's counters catches up with what it said.
func (n *Notifier) Hook() func(waitingroom.Signal) {
	return func(s waitingroom.Signal) {
		switch s.Kind {
		case waitingroom.Queueing, waitingroom.Drained, waitingroom.SettingsChanged:
		default:
			return
		}
		select {
		case n.signals <- s:
		default:
			n.lost.Add(1)
		}
		select {
		case n.wake <- struct{}{}:
		default:
		}
	}
}

// Stats are a Notifier's counts since it was made.
type Stats struct {
	Sent        int64 // delivered (a 2xx answer)
	Failed      int64 // given up after the last try, or refused with a 4xx
	Retried     int64 // tries after the first
	Dropped     int64 // not queued: the queue was full
	LostSignals int64 // signals dropped because the channel was full
}

// Stats returns the notifier's counts.
func (n *Notifier) Stats() Stats {
	return Stats{Sent: n.sent.Load(), Failed: n.failed.Load(), Retried: n.retried.Load(),
		Dropped: n.dropped.Load(), LostSignals: n.lost.Load()}
}

// Run delivers notifications and checks the rules on each signal and every tick, until
// ctx ends; what is still queued then is not sent.
func (n *Notifier) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { n.deliver(ctx) })
	var tick <-chan time.Time
	if n.o.tick > 0 {
		t := time.NewTicker(n.o.tick)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-n.wake: // signals are taken in by Check, under its lock
			n.Check(ctx)
		case <-tick:
			n.Check(ctx)
		}
	}
}

// Check takes in the signals received and applies the rules at the notifier's clock: Run
// calls it; a host with its own loop (or a test with its own clock) may call it instead.
func (n *Notifier) Check(ctx context.Context) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for {
		select {
		case s := <-n.signals:
			n.handle(ctx, s)
			continue
		default:
		}
		break
	}
	now := n.o.clock()
	for id, until := range n.down {
		if !now.Before(until) {
			delete(n.down, id)
		}
	}
	changes := n.changes
	n.changes = nil
	for _, s := range changes {
		n.announceChange(ctx, s)
	}
	for id, e := range n.rooms {
		if !n.check(ctx, id, e, now) {
			delete(n.rooms, id)
		}
	}
}

// Flush waits until every notification queued so far has been delivered or given up, or
// ctx ends (Run must be running).
func (n *Notifier) Flush(ctx context.Context) error {
	n.pmu.Lock()
	idle := n.idle
	n.pmu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// episode is a room's queueing spell as this instance follows it.
type episode struct {
	at       time.Time // the store's time of the spell's claim: it names the spell (zero: not claimed yet)
	start    time.Time // the same instant on this notifier's clock
	periodic int       // periodic notifications done (sent here or by another instance)
	waiting  bool      // the waiting threshold done
	wait     bool      // the wait threshold done
	drained  time.Time // this clock's time since which nobody waits (zero: some do)
	stopping bool      // stopped here: its claim is to be removed
	read     time.Time // this clock's time of the last counters read
	snap     waitingroom.Snapshot
}

// claimTTL is how long a spell's claims are kept: a spell whose every instance went away
// without seeing it stop is forgotten after a day.
const claimTTL = 24 * time.Hour

// handle takes in one signal; n.mu is held.
func (n *Notifier) handle(ctx context.Context, s waitingroom.Signal) {
	switch s.Kind {
	case waitingroom.Queueing:
		if _, ok := n.down[s.Room]; ok {
			if n.rooms[s.Room] == nil {
				n.rooms[s.Room] = &episode{} // Check begins it once the store is asked again
			}
			return
		}
		e := n.rooms[s.Room]
		if e != nil && e.stopping {
			if !n.unclaim(ctx, s.Room, e) {
				return // Check tries again, and begins the next spell then
			}
			delete(n.rooms, s.Room)
			e = nil
		}
		if e == nil || e.at.IsZero() || !e.drained.IsZero() {
			// A new spell, or the same one going on after a lull: another instance may
			// have ended it meanwhile and begun the next. The store says which.
			n.begin(ctx, s.Room)
			if e := n.rooms[s.Room]; e != nil {
				e.drained = time.Time{}
			}
		}
	case waitingroom.Drained:
		if e := n.rooms[s.Room]; e != nil && e.drained.IsZero() {
			e.drained = n.o.clock()
		}
	case waitingroom.SettingsChanged:
		if s.Change.By == "" || s.Change.By == "code" && (s.Change.What == "create" || s.Change.What == "seed") {
			return // a program making its room at start-up is no news
		}
		n.announceChange(ctx, s)
	}
}

// maxUnclaimedChanges bounds the settings changes kept while the store cannot be asked.
const maxUnclaimedChanges = 64

// announceChange sends settings change s if this instance is the first to claim it; one
// whose claim failed is kept (a bounded few) for Check to try again.
func (n *Notifier) announceChange(ctx context.Context, s waitingroom.Signal) {
	var c store.Claim
	ok := false
	if _, down := n.down[s.Room]; !down {
		c, ok = n.claim(ctx, s.Room, "v"+strconv.FormatInt(s.Version, 10))
	}
	switch {
	case !ok && len(n.changes) < maxUnclaimedChanges:
		n.changes = append(n.changes, s)
	case !ok:
		n.dropped.Add(1)
		n.o.log.Warn("notify: too many settings changes wait for the store; notification dropped", "room", s.Room, "version", s.Version)
	case c.First:
		n.send(settingsMessage(s))
	}
}

// begin follows room id's spell: it claims the spell, and announces it if it is the first.
func (n *Notifier) begin(ctx context.Context, id string) {
	rm, ok := n.lookup(id)
	if !ok {
		return
	}
	c, ok := n.claim(ctx, id, "q")
	if !ok {
		if n.rooms[id] == nil {
			n.rooms[id] = &episode{} // the store failed: Check tries again
		}
		return
	}
	n.follow(ctx, id, rm, c)
}

// follow makes the spell claim c names room id's here (the one it follows already, if it
// is that one) and announces it if c was its first claim.
func (n *Notifier) follow(ctx context.Context, id string, rm *waitingroom.Room, c store.Claim) *episode {
	if e := n.rooms[id]; e != nil && !e.at.IsZero() && e.at.Equal(c.At) {
		return e
	}
	now := n.o.clock()
	e := &episode{at: c.At, start: c.At.Add(now.Sub(c.Now))}
	n.rooms[id] = e
	if !c.First {
		// Another instance announced it: catch up with what is already due.
		if n.o.every > 0 {
			e.periodic = int(now.Sub(e.start) / n.o.every)
		}
		return e
	}
	snap, err := n.read(ctx, rm, e, now)
	m := Message{Event: "queueing", Room: id, At: c.At}
	if err == nil {
		m.fill(rm, snap)
	}
	m.Text = fmt.Sprintf("Room %s started queueing%s.", id, m.summary())
	n.send(m)
	return e
}

// check applies the rules to room id's spell e at now; false when the spell is over here.
func (n *Notifier) check(ctx context.Context, id string, e *episode, now time.Time) bool {
	rm, ok := n.lookup(id)
	if !ok {
		return false
	}
	if _, ok := n.down[id]; ok {
		return true // its store failed lately: not asked again yet
	}
	if e.at.IsZero() { // its claim failed: try again
		n.begin(ctx, id)
		return n.rooms[id] != nil
	}
	if e.stopping { // stopped; the spell's claim is still to be removed
		if !n.unclaim(ctx, id, e) {
			return true
		}
		delete(n.rooms, id)
		if snap, err := n.read(ctx, rm, e, now); err == nil && snap.Waiting > 0 {
			n.begin(ctx, id) // a crowd came back meanwhile: the next spell
		}
		return n.rooms[id] != nil
	}
	if now.Sub(e.read) >= n.o.refresh {
		n.read(ctx, rm, e, now)
	}
	key := "q" + strconv.FormatInt(e.at.UnixMilli(), 10) + ":"
	if n.o.every > 0 {
		k := int(now.Sub(e.start) / n.o.every)
		if last := int(n.o.during / n.o.every); k > last {
			k = last
		}
		if k > e.periodic {
			// Still the room's spell? An instance that missed its end (it served nobody
			// then) would announce the next one's minutes by the old one's clock.
			if c, ok := n.claim(ctx, id, "q"); !ok {
				return true
			} else if f := n.follow(ctx, id, rm, c); f != e {
				return true // the next check follows the new one
			}
			if c, ok := n.claim(ctx, id, key+"p"+strconv.Itoa(k)); ok {
				e.periodic = k
				if c.First && e.drained.IsZero() {
					if e.read.Before(now) { // not read at this check already
						n.read(ctx, rm, e, now)
					}
					m := Message{Event: "queueing_update", Room: id, At: c.Now, Minutes: int64(time.Duration(k) * n.o.every / time.Minute)}
					m.fill(rm, e.snap)
					m.Text = fmt.Sprintf("Room %s has queued for %d min%s.", id, m.Minutes, m.summary())
					n.send(m)
				}
			}
		}
	}
	if n.o.waiting > 0 && !e.waiting && e.snap.Waiting >= n.o.waiting {
		n.announceOnce(ctx, rm, e, key+"w", &e.waiting, func(m *Message) {
			m.Event, m.Threshold = "threshold_waiting", n.o.waiting
			m.Text = fmt.Sprintf("Room %s: %d people are waiting (threshold %d)%s.", id, e.snap.Waiting, n.o.waiting, m.summary())
		})
	}
	if n.o.wait > 0 && !e.wait && e.snap.Wait.Known && e.snap.Wait.P50 >= n.o.wait {
		n.announceOnce(ctx, rm, e, key+"d", &e.wait, func(m *Message) {
			m.Event, m.ThresholdSeconds = "threshold_wait", n.o.wait.Seconds()
			m.Text = fmt.Sprintf("Room %s: a newcomer now waits %s (threshold %s)%s.", id, e.snap.Wait.Format(), estimate.Wait{Known: true, P50: n.o.wait, P25: n.o.wait, P75: n.o.wait}.Format(), m.summary())
		})
	}
	if e.drained.IsZero() || now.Sub(e.drained) < n.o.stopAfter {
		return true
	}
	// Drained long enough, as this instance saw: the store has the last word.
	snap, err := n.read(ctx, rm, e, now)
	if err != nil {
		return true
	}
	if snap.Waiting > 0 {
		e.drained = time.Time{}
		return true
	}
	c, ok := n.claim(ctx, id, key+"stop")
	if !ok {
		return true
	}
	if c.First {
		m := Message{Event: "stopped", Room: id, At: c.Now, Minutes: int64(c.Now.Sub(e.at) / time.Minute)}
		m.fill(rm, snap)
		m.Text = fmt.Sprintf("Room %s stopped queueing after %d min; nobody waits.", id, m.Minutes)
		n.send(m)
		e.stopping = true
		return !n.unclaim(ctx, id, e)
	}
	return false
}

// unclaim removes spell e's claim, so that the room's next one is announced; false when
// the store failed (logged; Check tries again).
func (n *Notifier) unclaim(ctx context.Context, id string, e *episode) bool {
	ctx, cancel := context.WithTimeout(ctx, n.o.timeout)
	defer cancel()
	if err := n.once.Unclaim(ctx, id, "q", e.at); err != nil {
		n.o.log.Warn("notify: ending a room's queueing spell in the store failed; trying again", "room", id, "err", err)
		return false
	}
	return true
}

// announceOnce claims key for spell e of room rm; done marks it claimed (here or by another
// instance), and the first claim sends the message word writes, with e's counters.
func (n *Notifier) announceOnce(ctx context.Context, rm *waitingroom.Room, e *episode, key string, done *bool, word func(*Message)) {
	c, ok := n.claim(ctx, rm.ID(), key)
	if !ok {
		return
	}
	*done = true
	if c.First {
		m := Message{Room: rm.ID(), At: c.Now}
		m.fill(rm, e.snap)
		word(&m)
		n.send(m)
	}
}

// read refreshes e's counters from the store.
func (n *Notifier) read(ctx context.Context, rm *waitingroom.Room, e *episode, now time.Time) (waitingroom.Snapshot, error) {
	e.read = now
	snap, err := rm.Snapshot(ctx)
	if err != nil {
		n.storeFailed(rm.ID(), err, "reading a room's counters")
		return snap, err
	}
	e.snap = snap
	if snap.Waiting > 0 {
		e.drained = time.Time{}
	} else if e.drained.IsZero() {
		e.drained = now
	}
	return snap, nil
}

// claim claims key for room in the store; ok false when the store failed (logged).
func (n *Notifier) claim(ctx context.Context, room, key string) (store.Claim, bool) {
	ctx, cancel := context.WithTimeout(ctx, n.o.timeout)
	defer cancel()
	c, err := n.once.Claim(ctx, room, key, claimTTL)
	if err != nil {
		n.storeFailed(room, err, "claiming a notification")
		return c, false
	}
	return c, true
}

// storeBackoff is how long a notifier leaves a room's store alone after a call failed, so
// that an outage costs each Check one call per room, not one for each of its rules.
const storeBackoff = 10 * time.Second

// storeFailed logs a failed store call for room and leaves its store alone for storeBackoff;
// n.mu is held.
func (n *Notifier) storeFailed(room string, err error, doing string) {
	n.o.log.Warn("notify: "+doing+" in the store failed; trying again in "+storeBackoff.String(), "room", room, "err", err)
	n.down[room] = n.o.clock().Add(storeBackoff)
}

// send queues m for delivery, or drops it when the queue is full.
func (n *Notifier) send(m Message) {
	n.pmu.Lock()
	defer n.pmu.Unlock()
	m.queued = time.Now() // the age WithRetry bounds: real time, whatever the rules' clock
	select {
	case n.out <- m:
		if n.pending == 0 {
			n.idle = make(chan struct{})
		}
		n.pending++
	default:
		n.dropped.Add(1)
		n.o.log.Warn("notify: the delivery queue is full; notification dropped", "room", m.Room, "event", m.Event)
	}
}

// done counts one queued notification delivered or given up.
func (n *Notifier) done() {
	n.pmu.Lock()
	defer n.pmu.Unlock()
	n.pending--
	if n.pending == 0 {
		close(n.idle)
	}
}

// deliver posts queued notifications one at a time until ctx ends.
func (n *Notifier) deliver(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-n.out:
			n.post(ctx, m)
			n.done()
		}
	}
}

// post delivers m, trying again as WithRetry says.
func (n *Notifier) post(ctx context.Context, m Message) {
	body, err := json.Marshal(m)
	if err != nil {
		n.failed.Add(1)
		return
	}
	var id [12]byte
	rand.Read(id[:])
	delivery := hex.EncodeToString(id[:])
	backoff := n.o.backoff
	for attempt := 1; ; attempt++ {
		retry, err := n.try(ctx, body, delivery)
		if err == nil {
			n.sent.Add(1)
			if attempt > 1 {
				n.o.log.Info("notify: delivered after the receiver failed", "room", m.Room, "event", m.Event, "attempts", attempt)
			}
			return
		}
		waited := time.Since(m.queued)
		if !retry || waited+backoff > n.o.maxAge || ctx.Err() != nil {
			n.failed.Add(1)
			n.o.log.Warn("notify: delivery failed; notification given up", "room", m.Room, "event", m.Event, "attempts", attempt, "waited", waited.Round(time.Millisecond), "err", err)
			return
		}
		if attempt == 1 {
			n.o.log.Warn("notify: the receiver failed; trying again", "room", m.Room, "event", m.Event, "err", err)
		}
		n.retried.Add(1)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			n.failed.Add(1)
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// try posts body once; retry says whether another try may succeed.
func (n *Notifier) try(ctx context.Context, body []byte, delivery string) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("cannot make the request")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "waitingroom-notify")
	req.Header.Set("Waitingroom-Delivery", delivery)
	if n.o.secret != nil {
		ts := strconv.FormatInt(n.o.clock().Unix(), 10)
		mac := hmac.New(sha256.New, n.o.secret)
		mac.Write([]byte(ts + "."))
		mac.Write(body)
		req.Header.Set("Waitingroom-Signature", "t="+ts+",v1="+hex.EncodeToString(mac.Sum(nil)))
	}
	resp, err := n.o.client.Do(req)
	if err != nil {
		// The URL (a Slack webhook's path is its secret) stays out of the error.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return true, fmt.Errorf("post: %w", err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return false, nil
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		return true, fmt.Errorf("the receiver answered %d", c)
	default:
		return false, fmt.Errorf("the receiver refused it with %d", c)
	}
}

// Message is a notification's body: Slack's "text", and fields for other receivers.
type Message struct {
	Text  string    `json:"text"`
	Event string    `json:"event"` // queueing, queueing_update, threshold_waiting, threshold_wait, stopped, settings
	Room  string    `json:"room"`
	At    time.Time `json:"at"` // the store's time

	Waiting            *int64   `json:"waiting,omitempty"`
	Active             *int64   `json:"active,omitempty"`
	Capacity           int64    `json:"capacity,omitempty"`
	RatePerMinute      int64    `json:"rate_per_minute,omitempty"`
	EstimatedWaitSecs  *float64 `json:"estimated_wait_seconds,omitempty"` // a newcomer's, the median
	LongestWaitSeconds *float64 `json:"longest_wait_seconds,omitempty"`
	Minutes            int64    `json:"minutes,omitempty"` // queueing_update: since it began; stopped: how long it lasted
	Threshold          int64    `json:"threshold,omitempty"`
	ThresholdSeconds   float64  `json:"threshold_seconds,omitempty"`

	// settings: who changed what, and the version it made.
	By      string   `json:"by,omitempty"`
	What    string   `json:"what,omitempty"`
	Version int64    `json:"version,omitempty"`
	Changes []string `json:"changes,omitempty"`

	queued time.Time // when it was queued
}

// fill sets m's counters from a snapshot of rm.
func (m *Message) fill(rm *waitingroom.Room, s waitingroom.Snapshot) {
	cfg := rm.Config()
	m.Waiting, m.Active = &s.Waiting, &s.Active
	m.Capacity, m.RatePerMinute = int64(cfg.TotalActiveUsers), int64(cfg.NewUsersPerMinute)
	if s.Wait.Known {
		w := s.Wait.P50.Seconds()
		m.EstimatedWaitSecs = &w
	}
	if s.LongestWait > 0 {
		l := s.LongestWait.Seconds()
		m.LongestWaitSeconds = &l
	}
}

// summary is m's counters in words, after a colon; empty without them.
func (m *Message) summary() string {
	if m.Waiting == nil {
		return ""
	}
	s := fmt.Sprintf(": %d waiting, %d of %d active, %d admitted a minute at most", *m.Waiting, *m.Active, m.Capacity, m.RatePerMinute)
	if m.EstimatedWaitSecs != nil {
		d := time.Duration(*m.EstimatedWaitSecs * float64(time.Second))
		s += "; a newcomer waits " + estimate.Wait{Known: true, P25: d, P50: d, P75: d}.Format()
	}
	return s
}

// settingsMessage says who changed what of a room's settings.
func settingsMessage(s waitingroom.Signal) Message {
	b, a := s.Before, s.After
	m := Message{Event: "settings", Room: s.Room, At: s.At, By: s.Change.By, What: s.Change.What, Version: s.Version}
	var verbs []string
	switch {
	case a.Suspended && !b.Suspended:
		verbs = append(verbs, "suspended the room")
	case !a.Suspended && b.Suspended:
		verbs = append(verbs, "resumed the room")
	}
	switch {
	case a.QueueAll && !b.QueueAll:
		verbs = append(verbs, "turned queue-all on")
	case !a.QueueAll && b.QueueAll:
		verbs = append(verbs, "turned queue-all off")
	}
	num := func(name string, x, y int64) {
		if x != y {
			m.Changes = append(m.Changes, fmt.Sprintf("%s %d → %d", name, x, y))
		}
	}
	num("capacity", int64(b.TotalActiveUsers), int64(a.TotalActiveUsers))
	num("rate per minute", int64(b.NewUsersPerMinute), int64(a.NewUsersPerMinute))
	dur := func(name string, x, y time.Duration) {
		if x != y {
			m.Changes = append(m.Changes, fmt.Sprintf("%s %v → %v", name, x, y))
		}
	}
	dur("session", b.SessionDuration, a.SessionDuration)
	dur("refresh interval", b.RefreshInterval, a.RefreshInterval)
	if a.QueueingMethod != b.QueueingMethod {
		m.Changes = append(m.Changes, fmt.Sprintf("queueing method %v → %v", b.QueueingMethod, a.QueueingMethod))
	}
	if len(m.Changes) > 0 {
		verbs = append(verbs, "changed "+strings.Join(m.Changes, ", "))
	}
	if len(verbs) == 0 {
		verbs = append(verbs, "changed its settings")
	}
	m.Text = fmt.Sprintf("Room %s: %s %s (version %d).", s.Room, s.Change.By, strings.Join(verbs, " and "), s.Version)
	return m
}
