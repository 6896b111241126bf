// Package wrprom exports waiting rooms' metrics to Prometheus: a prometheus.Collector that
// reads the rooms when scraped, so the request path pays nothing for it. It lives in a
// module of its own so that the waitingroom module pulls in no Prometheus client.
//
// The package is named wrprom, not prometheus, so that it can sit next to client_golang's
// prometheus package without an alias, and so that calls read as what they are:
// wrprom.New is waitingroom's Prometheus collector.
//
// Each metric has a room label. Two kinds of figures come out, and they add up differently
// across the instances of a deployment:
//   - the room's state as its store counts it (waitingroom_active_sessions,
//     waitingroom_waiting, ..., waitingroom_abandonments_total): every instance reports the
//     same room-wide value, so aggregate them with max, not sum;
//   - what this instance did (waitingroom_joins_total, waitingroom_admissions_total, the
//     store's latency, the fallback's counters): sum them across instances.
package wrprom

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/waitingroom-go/waitingroom"
)

// Collector is a prometheus.Collector of rooms' metrics. Each scrape lists the rooms and
// reads each one's store once (Room.Snapshot) and, once a minute, its history
// (Room.History), within the scrape timeout; the rest it reads from the Room without a
// store call. A room whose store cannot be read leaves out its store gauges for that
// scrape and counts a waitingroom_scrape_errors_total. A room the source no longer lists
// leaves the output, and the collector forgets it.
//
// A room makes 14 series, 4 more with a fallback policy, and 16 for each kind of store call
// it made on this instance (a histogram and an error counter; a scrape makes two kinds, stats
// and history): mind Prometheus's series count for thousands of rooms, where
// WithStoreCallsByRoom(false) sums the store calls of every room into 16 series a kind.
//
// A Collector is safe for concurrent use (two Prometheus servers may scrape at once).
type Collector struct {
	rooms       func() []*waitingroom.Room
	timeout     time.Duration
	concurrency int
	log         *slog.Logger
	callsByRoom bool // WithStoreCallsByRoom

	mu     sync.Mutex
	states map[string]*roomState // by room ID: the rooms of the latest scrape
}

// Option configures a Collector.
type Option func(*Collector) error

// WithTimeout bounds the store reads of one scrape, all rooms together; a room not read by
// then counts as a scrape error. Keep it below Prometheus's scrape_timeout. Default 2 s.
func WithTimeout(d time.Duration) Option {
	return func(c *Collector) error {
		if d <= 0 {
			return fmt.Errorf("wrprom: timeout must be positive, got %v", d)
		}
		c.timeout = d
		return nil
	}
}

// WithConcurrency is how many rooms a scrape reads from the store at once. Default 16.
func WithConcurrency(n int) Option {
	return func(c *Collector) error {
		if n < 1 {
			return fmt.Errorf("wrprom: concurrency must be at least 1, got %d", n)
		}
		c.concurrency = n
		return nil
	}
}

// WithStoreCallsByRoom says whether the store calls' histogram and error counter have a
// series per room (true) or one summed over the rooms, labelled by kind only (false: for
// registries of thousands of rooms). Default true.
func WithStoreCallsByRoom(byRoom bool) Option {
	return func(c *Collector) error {
		c.callsByRoom = byRoom
		return nil
	}
}

// WithLogger sets where a scrape reports the rooms it could not read: one warning per
// scrape, naming how many failed, the first such room and its error (a store's error
// carries no secret). Default slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *Collector) error {
		if l == nil {
			return errors.New("wrprom: nil logger")
		}
		c.log = l
		return nil
	}
}

// New returns a Collector of the rooms that rooms lists at each scrape: a registry's
// (*rooms.Registry).Rooms, or a function returning a fixed list. Register it with a
// prometheus.Registerer.
func New(rooms func() []*waitingroom.Room, opts ...Option) (*Collector, error) {
	if rooms == nil {
		return nil, errors.New("wrprom: nil rooms function")
	}
	c := &Collector{rooms: rooms, timeout: 2 * time.Second, concurrency: 16, log: slog.Default(),
		callsByRoom: true, states: map[string]*roomState{}}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Metrics. The room label is variable, so the set of descriptions is fixed whatever rooms
// come and go: the collector is checked by its registry as any other.
var (
	room   = []string{"room"}
	roomOp = []string{"room", "op"}

	roomWide = " Room-wide: every instance reports the same value (aggregate with max, not sum)."

	activeDesc = prometheus.NewDesc("waitingroom_active_sessions",
		"Sessions active in the room (pending grants included), as its store counts them."+roomWide, room, nil)
	waitingDesc = prometheus.NewDesc("waitingroom_waiting",
		"Visitors waiting in the room's queue, as its store counts them."+roomWide, room, nil)
	windowDesc = prometheus.NewDesc("waitingroom_admissions_last_minute",
		"Admissions in the last 60 s plus pending grants: what the room's rate limit counts."+roomWide, room, nil)
	waitDesc = prometheus.NewDesc("waitingroom_estimated_wait_seconds",
		"Estimated median wait of a visitor arriving now (0: straight in); absent while the room cannot estimate one (suspended, queueing all, too little to go on)."+roomWide, room, nil)
	longestDesc = prometheus.NewDesc("waitingroom_longest_wait_seconds",
		"How long the earliest waiter this instance answered lately has waited so far (0: none waiting); behind a load balancer, of the waiters this instance sees.", room, nil)
	capacityDesc = prometheus.NewDesc("waitingroom_capacity",
		"Sessions the room allows at once (TotalActiveUsers; a scheduled event may set its own)."+roomWide, room, nil)
	rateDesc = prometheus.NewDesc("waitingroom_rate_per_minute",
		"Admissions the room allows in any 60 s (NewUsersPerMinute; a scheduled event may set its own)."+roomWide, room, nil)
	queueAllDesc = prometheus.NewDesc("waitingroom_queue_all",
		"1 while the room queues everyone new (QueueAll), else 0."+roomWide, room, nil)
	suspendedDesc = prometheus.NewDesc("waitingroom_suspended",
		"1 while the room is suspended (traffic passes untouched and uncounted), else 0."+roomWide, room, nil)
	abandonDesc = prometheus.NewDesc("waitingroom_abandonments_total",
		"Places given up (joins less admissions less the queue's growth) as the store's history records the room's minutes, counted a minute after each minute ends, since this collector began."+roomWide, room, nil)

	joinsDesc = prometheus.NewDesc("waitingroom_joins_total",
		"Places in the queue taken through this instance, requeues included.", room, nil)
	admissionsDesc = prometheus.NewDesc("waitingroom_admissions_total",
		"Visitors this instance admitted.", room, nil)
	requeuesDesc = prometheus.NewDesc("waitingroom_requeues_total",
		"Waiters this instance sent to the back of the queue because their place was gone.", room, nil)
	callDesc = prometheus.NewDesc("waitingroom_store_operation_duration_seconds",
		"Latency of this instance's store calls for the room, by kind, failed ones included.", roomOp, nil)
	callErrorsDesc = prometheus.NewDesc("waitingroom_store_errors_total",
		"This instance's store calls for the room that failed, by kind.", roomOp, nil)
	// The same, summed over the rooms (WithStoreCallsByRoom(false)).
	allCallDesc = prometheus.NewDesc("waitingroom_store_operation_duration_seconds",
		"Latency of this instance's store calls for all its rooms, by kind, failed ones included.", []string{"op"}, nil)
	allCallErrorsDesc = prometheus.NewDesc("waitingroom_store_errors_total",
		"This instance's store calls for all its rooms that failed, by kind.", []string{"op"}, nil)

	localDesc = prometheus.NewDesc("waitingroom_fallback_local",
		"1 while this instance admits alone because the store is unreachable, else 0 (rooms with a fallback policy).", room, nil)
	switchesDesc = prometheus.NewDesc("waitingroom_fallback_switches_total",
		"Times this instance started admitting alone (rooms with a fallback policy).", room, nil)
	localAdmittedDesc = prometheus.NewDesc("waitingroom_fallback_admissions_total",
		"Visitors this instance admitted alone (rooms with a fallback policy).", room, nil)
	instancesDesc = prometheus.NewDesc("waitingroom_fallback_instances",
		"Instances serving the room as the store last said, this one included: each admits its share alone (rooms with a fallback policy).", room, nil)

	scrapeErrorsDesc = prometheus.NewDesc("waitingroom_scrape_errors_total",
		"Scrapes of this instance that could not read the room's store (a failed snapshot leaves the room's store gauges out of that scrape).", room, nil)

	descs = []*prometheus.Desc{
		activeDesc, waitingDesc, windowDesc, waitDesc, longestDesc, capacityDesc, rateDesc,
		queueAllDesc, suspendedDesc, abandonDesc, joinsDesc, admissionsDesc, requeuesDesc,
		localDesc, switchesDesc, localAdmittedDesc, instancesDesc, scrapeErrorsDesc,
	}
)

// Describe sends the descriptions of every metric the Collector may send.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range descs {
		ch <- d
	}
	if c.callsByRoom {
		ch <- callDesc
		ch <- callErrorsDesc
	} else {
		ch <- allCallDesc
		ch <- allCallErrorsDesc
	}
}

// Collect reads the rooms and sends their metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	rs, sts := c.list()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	reads := make([]read, len(rs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(c.concurrency, len(rs)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(rs); i = int(next.Add(1) - 1) {
				reads[i] = c.read(ctx, rs[i], sts[i])
			}
		})
	}
	wg.Wait()

	failed, first := 0, -1
	var all [waitingroom.NumStoreOps]waitingroom.CallStats // the rooms' summed
	for i, rm := range rs {
		if reads[i].err != nil {
			failed++
			if first < 0 {
				first = i
			}
		}
		c.send(ch, rm, sts[i], &reads[i], &all)
	}
	if !c.callsByRoom {
		for op := range waitingroom.NumStoreOps {
			sendCalls(ch, allCallDesc, allCallErrorsDesc, &all[op], op.String())
		}
	}
	if failed > 0 {
		c.log.Warn("waitingroom: metrics could not read rooms from the store", "failed", failed,
			"room", rs[first].ID(), "err", reads[first].err)
	}
}

// roomState is what the collector keeps of a room between scrapes: a few words each.
type roomState struct {
	// Abandonments: the history's minutes up to through (a minute's start) are counted in
	// abandoned, or began before the collector did.
	through   time.Time
	abandoned int64
	noHistory bool // the room's store keeps none
	errors    int64
}

// read is what one scrape read of a room's store.
type read struct {
	snap    waitingroom.Snapshot
	snapped bool  // snap was read
	err     error // Snapshot's or History's
}

const (
	// settle is how long after a minute ends the collector counts its abandonments: each
	// instance records a finished minute on its next store answer, or its registry's watch
	// within a second or two; what an instance records later is not counted.
	settle = time.Minute
	// catchUp is how many minutes of history a scrape reads at most: after a longer gap
	// between scrapes, the older minutes are skipped.
	catchUp = 60
)

// list returns the rooms to scrape and their states, making the states those of these
// rooms alone (rooms no longer listed are forgotten). A room listed twice counts once.
func (c *Collector) list() ([]*waitingroom.Room, []*roomState) {
	listed := c.rooms()
	rs := make([]*waitingroom.Room, 0, len(listed))
	sts := make([]*roomState, 0, len(listed))
	c.mu.Lock()
	defer c.mu.Unlock()
	states := make(map[string]*roomState, len(listed))
	for _, rm := range listed {
		if rm == nil {
			continue
		}
		id := rm.ID()
		if _, dup := states[id]; dup {
			continue
		}
		st := c.states[id]
		if st == nil {
			st = &roomState{}
		}
		states[id] = st
		rs, sts = append(rs, rm), append(sts, st)
	}
	c.states = states
	return rs, sts
}

// read reads room rm's store: its snapshot and, when a minute of history has settled since
// the last read, those minutes' abandonments into st.
func (c *Collector) read(ctx context.Context, rm *waitingroom.Room, st *roomState) read {
	if err := ctx.Err(); err != nil {
		return c.failed(st, read{err: fmt.Errorf("scrape timeout %v: %w", c.timeout, err)})
	}
	snap, err := rm.Snapshot(ctx)
	if err != nil {
		return c.failed(st, read{err: err})
	}
	out := read{snap: snap, snapped: true}
	// Minutes up to cutoff have settled.
	cutoff := snap.Now.Add(-settle - time.Minute).Truncate(time.Minute)
	c.mu.Lock()
	through, skip := st.through, st.noHistory
	if through.IsZero() {
		st.through = cutoff // the counter starts now: earlier minutes belong to no scrape of ours
	}
	c.mu.Unlock()
	if skip || through.IsZero() || !cutoff.After(through) {
		return out
	}
	// History(n) reads the n minutes up to the current one.
	n := min(int(snap.Now.Sub(through)/time.Minute)+1, catchUp)
	hs, err := rm.History(ctx, n)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case errors.Is(err, waitingroom.ErrConfig):
		st.noHistory = true
	case err != nil:
		out.err = err
		st.errors++
	default:
		for _, h := range hs {
			// Another scrape at once may have counted some.
			if h.Start.After(st.through) && !h.Start.After(cutoff) {
				st.abandoned += h.Abandonments
			}
		}
		if cutoff.After(st.through) {
			st.through = cutoff
		}
	}
	return out
}

func (c *Collector) failed(st *roomState, r read) read {
	c.mu.Lock()
	st.errors++
	c.mu.Unlock()
	return r
}

// send sends room rm's metrics: the store's gauges if its snapshot was read, the rest
// from the Room.
func (c *Collector) send(ch chan<- prometheus.Metric, rm *waitingroom.Room, st *roomState, r *read, all *[waitingroom.NumStoreOps]waitingroom.CallStats) {
	id := rm.ID()
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, id)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, id)
	}

	if r.snapped {
		s := &r.snap
		gauge(activeDesc, float64(s.Active))
		gauge(waitingDesc, float64(s.Waiting))
		gauge(windowDesc, float64(s.Window))
		if s.Wait.Known {
			gauge(waitDesc, s.Wait.P50.Seconds())
		}
		gauge(longestDesc, s.LongestWait.Seconds())
	}
	cfg, _ := rm.Settings()
	gauge(capacityDesc, float64(cfg.TotalActiveUsers))
	gauge(rateDesc, float64(cfg.NewUsersPerMinute))
	gauge(queueAllDesc, bit(cfg.QueueAll))
	gauge(suspendedDesc, bit(cfg.Suspended))

	c.mu.Lock()
	abandoned, history, errs := st.abandoned, !st.noHistory, st.errors
	c.mu.Unlock()
	if history {
		counter(abandonDesc, float64(abandoned))
	}
	counter(scrapeErrorsDesc, float64(errs))

	// Read after the store reads above, so that they are in it.
	n := rm.Counters()
	counter(joinsDesc, float64(n.Joins))
	counter(admissionsDesc, float64(n.Admissions))
	counter(requeuesDesc, float64(n.Requeues))
	for op := range waitingroom.NumStoreOps {
		k := &n.Calls[op]
		if !c.callsByRoom {
			a := &all[op]
			a.Count, a.Errors, a.Total = a.Count+k.Count, a.Errors+k.Errors, a.Total+k.Total
			for i := range a.Buckets {
				a.Buckets[i] += k.Buckets[i]
			}
			continue
		}
		sendCalls(ch, callDesc, callErrorsDesc, k, id, op.String())
	}

	// A room without a fallback policy reports none (Instances is at least 1 with one).
	if f := rm.Fallback(); f.Instances > 0 {
		gauge(localDesc, bit(f.Local))
		counter(switchesDesc, float64(f.Switches))
		counter(localAdmittedDesc, float64(f.Admitted))
		gauge(instancesDesc, float64(f.Instances))
	}
}

// sendCalls sends k as a histogram of d and an error counter of errs, with labels.
func sendCalls(ch chan<- prometheus.Metric, d, errs *prometheus.Desc, k *waitingroom.CallStats, labels ...string) {
	if k.Count == 0 {
		return // a kind of call never made: no series
	}
	// The count is the buckets' sum: Counters reads a call in flight in some fields and
	// not others, and a histogram's count must match its buckets.
	buckets := make(map[float64]uint64, len(waitingroom.CallBounds))
	var cum uint64
	for i, b := range waitingroom.CallBounds {
		cum += uint64(k.Buckets[i])
		buckets[b.Seconds()] = cum
	}
	cum += uint64(k.Buckets[len(waitingroom.CallBounds)])
	ch <- prometheus.MustNewConstHistogram(d, cum, k.Total.Seconds(), buckets, labels...)
	ch <- prometheus.MustNewConstMetric(errs, prometheus.CounterValue, float64(k.Errors), labels...)
}

func bit(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
