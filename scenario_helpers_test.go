package waitingroom_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
)

// errNotFIFO is what a grantLedger reports when a store's answer cannot come from granting
// in ticket order.
var errNotFIFO = errors.New("store departed from ticket order")

// grantLedger is a store.Store that passes every call on and holds the store's answers to the
// admission rules after each operation: capacity, the rate window, ticket order, and slots
// that come back.
//
// The Store interface shows a grant only as a count (Stats.Granted, by Join and Poll) and,
// later, as a claim (Result.Admitted for the polled ticket). So the ledger names the ticket
// of each grant as FIFO must: the next ticket whose holder is still live (admission.Live, on
// the ledger's own record of each ticket's last counted poll), passing places whose holders
// left. Every answer must then agree with it: a ticket is Admitted exactly while the ledger
// holds an unlapsed grant or session for it, and the store's Active is the number of slots
// the ledger holds. A store that granted out of order is caught at the next poll of either
// ticket, before a grant can lapse (pollers here come back within the grace).
//
// It is for one goroutine (the scenario's event loop) and stops checking at its first error.
type grantLedger struct {
	store.Store
	capacity, perMinute int64

	base     int64          // the first ticket issued
	polled   []int64        // store ms of each ticket's latest counted poll, from base
	next     int64          // FIFO's head: every ticket before it was granted or passed
	grants   []grant        // in the order the store made them
	byTicket map[int64]int  // ticket -> index in grants
	passed   []int64        // tickets passed with no grant: their holders had left
	slots    map[int64]slot // grants and sessions the ledger holds, by ticket
	soonest  int64          // no slot ends before this store ms

	admissions int64            // the store's count after the latest operation
	limits     admission.Limits // the latest the room passed, for Stats after a Release
	last       int64            // the ticket of the latest Join or Poll answer
	ops        int
	maxActive  int64
	err        error
}

type grant struct {
	ticket    int64
	at        int64 // store ms
	claimed   bool
	claimedAt int64 // store ms: the admission, as the protected site sees it
}

type slot struct {
	exp     int64 // store ms; the slot is free from this instant on
	claimed bool
}

func newGrantLedger(s store.Store, capacity, perMinute int) *grantLedger {
	return &grantLedger{
		Store:     s,
		capacity:  int64(capacity),
		perMinute: int64(perMinute),
		byTicket:  map[int64]int{},
		slots:     map[int64]slot{},
		last:      -1,
	}
}

func (g *grantLedger) Join(ctx context.Context, room string, l admission.Limits) (store.Result, error) {
	res, err := g.Store.Join(ctx, room, l)
	if err != nil || g.err != nil {
		return res, err
	}
	if len(g.polled) == 0 {
		g.base = res.Ticket
		g.next = res.Ticket
	}
	if want := g.base + int64(len(g.polled)); res.Ticket != want {
		g.failf("join at %v: ticket %d, the next is %d", res.Now, res.Ticket, want)
		return res, nil
	}
	g.polled = append(g.polled, res.Now.UnixMilli())
	g.answer(res, l)
	return res, nil
}

func (g *grantLedger) Poll(ctx context.Context, room string, t store.Ref, l admission.Limits) (store.Result, error) {
	res, err := g.Store.Poll(ctx, room, t, l)
	if err != nil || g.err != nil {
		return res, err
	}
	if res.Requeued {
		// The scenario's waiters poll well within the hold and the grace.
		g.failf("ticket %d polled on time at %v and lost its place", t.Number, res.Now)
		return res, nil
	}
	switch i := t.Number - g.base; {
	case i < 0 || i >= int64(len(g.polled)):
		g.failf("ticket %d polled at %v was never issued", t.Number, res.Now)
		return res, nil
	case t.Number >= g.next:
		g.polled[i] = res.Now.UnixMilli() // still queued: the poll keeps it live
	}
	g.answer(res, l)
	return res, nil
}

func (g *grantLedger) Renew(ctx context.Context, room string, ref store.Ref, l admission.Limits) (store.Renewal, error) {
	ren, err := g.Store.Renew(ctx, room, ref, l)
	if err != nil || g.err != nil {
		return ren, err
	}
	g.ops++
	g.free(ren.Now.UnixMilli())
	s, ok := g.slots[ref.Number]
	held := ok && s.claimed
	switch {
	case ren.Active != held:
		g.failf("session %d at %v: the store says active %v, the ledger %v", ref.Number, ren.Now, ren.Active, held)
	case ren.Active:
		g.hold(ref.Number, slot{exp: ren.Expires.UnixMilli(), claimed: true})
	}
	g.readStats(ctx, room, l)
	return ren, nil
}

func (g *grantLedger) Release(ctx context.Context, room string, ref store.Ref) error {
	if err := g.Store.Release(ctx, room, ref); err != nil || g.err != nil {
		return err
	}
	g.ops++
	delete(g.slots, ref.Number)
	g.readStats(ctx, room, g.limits)
	return nil
}

// answer names the grants a Join or Poll made and checks the answer for its ticket.
func (g *grantLedger) answer(res store.Result, l admission.Limits) {
	now := res.Now.UnixMilli()
	g.ops++
	g.limits, g.last = l, res.Ticket
	g.free(now)
	if res.Granted < g.admissions {
		g.failf("grants went back from %d to %d at %v", g.admissions, res.Granted, res.Now)
		return
	}
	for k := res.Granted - g.admissions; k > 0; k-- {
		end := g.base + int64(len(g.polled))
		for g.next < end && !admission.Live(admission.Bucket(g.polled[g.next-g.base])+1, admission.Bucket(now)+1, l) {
			g.passed = append(g.passed, g.next)
			g.next++
		}
		if g.next == end {
			g.failf("%w: a grant at %v, with no live ticket left in order", errNotFIFO, res.Now)
			return
		}
		g.byTicket[g.next] = len(g.grants)
		g.grants = append(g.grants, grant{ticket: g.next, at: now})
		g.hold(g.next, slot{exp: (now + l.Grace.Milliseconds() + 999) / 1000 * 1000}) // whole seconds
		g.next++
	}
	g.admissions = res.Granted
	s, held := g.slots[res.Ticket]
	switch {
	case res.Admitted && !held:
		g.failf("%w: ticket %d admitted at %v; in order, the next to grant is %d", errNotFIFO, res.Ticket, res.Now, g.next)
		return
	case !res.Admitted && held:
		g.failf("%w: ticket %d told to wait at %v; in order, it was granted %v earlier", errNotFIFO, res.Ticket, res.Now,
			time.Duration(now-g.grants[g.byTicket[res.Ticket]].at)*time.Millisecond)
		return
	case res.Admitted && !s.claimed:
		gr := &g.grants[g.byTicket[res.Ticket]]
		gr.claimed, gr.claimedAt = true, now
	}
	if res.Admitted {
		g.hold(res.Ticket, slot{exp: res.Expires.UnixMilli(), claimed: true})
	}
	g.counters(res.Stats)
}

// readStats checks the counters after an operation that answers without them.
func (g *grantLedger) readStats(ctx context.Context, room string, l admission.Limits) {
	st, err := g.Store.Stats(ctx, room, l)
	if err != nil {
		g.failf("stats: %v", err)
		return
	}
	g.free(st.Now.UnixMilli())
	if st.Granted != g.admissions {
		g.failf("%d grants at %v outside Join and Poll", st.Granted-g.admissions, st.Now)
		return
	}
	g.counters(st)
}

// counters checks the store's counters against the limits and the ledger's slots.
func (g *grantLedger) counters(st store.Stats) {
	switch {
	case st.Active > g.capacity:
		g.failf("%d active at %v, capacity %d", st.Active, st.Now, g.capacity)
	case st.Window > g.perMinute:
		g.failf("%d grants in the rate window at %v, limit %d", st.Window, st.Now, g.perMinute)
	case st.Active != int64(len(g.slots)):
		g.failf("the store counts %d active at %v, the ledger holds %d slots", st.Active, st.Now, len(g.slots))
	}
	g.maxActive = max(g.maxActive, st.Active)
}

// free drops the slots that ended by now: sessions at their expiry, grants nobody claimed at
// the end of the grace.
func (g *grantLedger) free(now int64) {
	if now < g.soonest {
		return
	}
	g.soonest = math.MaxInt64
	for n, s := range g.slots {
		if s.exp <= now {
			delete(g.slots, n)
		} else {
			g.soonest = min(g.soonest, s.exp)
		}
	}
}

// hold records a slot of ticket n until exp.
func (g *grantLedger) hold(n int64, s slot) {
	g.slots[n] = s
	g.soonest = min(g.soonest, s.exp)
}

// busiestMinute is the most admissions (claims: what the protected site sees) in any 60 s,
// [t, t+60 s), at the store's millisecond.
func (g *grantLedger) busiestMinute() (most int, from time.Time) {
	var at []int64
	for _, gr := range g.grants {
		if gr.claimed {
			at = append(at, gr.claimedAt)
		}
	}
	slices.Sort(at)
	j := 0
	for i := range at {
		for j < len(at) && at[j] < at[i]+time.Minute.Milliseconds() {
			j++
		}
		if j-i > most {
			most, from = j-i, time.UnixMilli(at[i])
		}
	}
	return most, from
}

func (g *grantLedger) failf(format string, args ...any) {
	if g.err == nil {
		g.err = fmt.Errorf(format, args...)
	}
}
