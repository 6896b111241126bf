package waitingroom_test

import (
	"container/heap"
	"context"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/store/memory"
	"github.com/waitingroom-go/waitingroom/token"
)

// TestScenarioStampede is the opening-minute crowd in simulated time: 2,000 visitors at once
// on a room of capacity 50 and 100 admissions a minute, sessions of about two minutes, 10%
// giving up while they wait. Every simulated second it checks that active sessions never
// exceed 50 and no 60-second window holds more than 100 admissions; at the end, that
// everyone who stayed got in, in ticket order, and that abandoned grants came back.
func TestScenarioStampede(t *testing.T) {
	const (
		visitors  = 2000
		capacity  = 50
		perMinute = 100
		refresh   = 20 * time.Second
	)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	clock := newSimClock()
	st := memory.New(memory.WithClock(clock.Now))
	room, err := waitingroom.New("stampede", st, waitingroom.Config{
		TotalActiveUsers:  capacity,
		NewUsersPerMinute: perMinute,
		// Most visitors release their slot when they have booked, so the rate can be
		// reached with sessions of minutes.
		AllowRateAboveCapacity: true,
		SessionDuration:        3 * time.Minute,
		RefreshInterval:        refresh,
	}, waitingroom.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := clock.Now()

	vs := make([]*visitor, visitors)
	var events eventQueue
	for i := range vs {
		v := &visitor{id: i, ticket: -1}
		if rng.Float64() < 0.10 {
			v.giveUp = start.Add(time.Minute + time.Duration(rng.Int64N(int64(20*time.Minute))))
		}
		vs[i] = v
		heap.Push(&events, event{at: start, seq: i, v: v})
	}

	var (
		granted   = map[int64]int64{} // second -> store grants counted up to then
		admitted  = map[int64]int{}   // second -> visitors who first got in during it
		stayers   int
		seq       = visitors
		endBy     = start.Add(4 * time.Hour)
		lastStats = start.Add(-time.Second)
	)
	for events.Len() > 0 {
		e := heap.Pop(&events).(event)
		for !lastStats.Add(time.Second).After(e.at) { // check each second before moving on
			lastStats = lastStats.Add(time.Second)
			clock.Set(lastStats)
			s, err := room.Stats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			sec := int64(lastStats.Sub(start) / time.Second)
			if s.Active > capacity {
				t.Fatalf("t=%ds: %d active sessions, capacity %d", sec, s.Active, capacity)
			}
			granted[sec] = s.Admissions
			if w := s.Admissions - granted[sec-60]; sec >= 60 && w > perMinute {
				t.Fatalf("t=%ds: %d admissions in the last 60 s, limit %d", sec, w, perMinute)
			}
		}
		if e.at.After(endBy) {
			t.Fatalf("not drained after %v", endBy.Sub(start))
		}
		clock.Set(e.at)
		v := e.v
		if v.state == waitingState && !v.giveUp.IsZero() && !e.at.Before(v.giveUp) {
			v.state = goneState
			continue
		}
		if v.state == admittedState && !e.at.Before(v.leave) {
			v.state = doneState
			if v.release {
				if err := room.Release(ctx, v.pass); err != nil {
					t.Fatal(err)
				}
			}
			continue
		}
		visit, err := room.Enter(ctx, v.cookie)
		if err != nil {
			t.Fatal(err)
		}
		if visit.Token != "" {
			v.cookie = visit.Token
		}
		next := refresh + time.Duration(rng.Int64N(int64(2*time.Second)))
		switch visit.Outcome {
		case waitingroom.Waiting:
			if v.state == admittedState {
				t.Fatalf("visitor %d was admitted and is waiting again", v.id)
			}
			tk, err := room.Codec().ParseTicket(room.ID(), v.cookie, e.at)
			if err != nil {
				t.Fatal(err)
			}
			if v.ticket < 0 {
				v.ticket = tk.Number
			} else if tk.Number != v.ticket {
				t.Fatalf("visitor %d polling on time lost its place (%d -> %d)", v.id, v.ticket, tk.Number)
			}
			v.state = waitingState
		case waitingroom.Admitted:
			if v.state != admittedState {
				v.state, v.admittedAt, v.pass = admittedState, e.at, visit.Pass
				v.leave = e.at.Add(90*time.Second + time.Duration(rng.Int64N(int64(time.Minute))))
				v.release = rng.Float64() < 0.8
				admitted[int64(e.at.Sub(start)/time.Second)]++
				stayers++
			}
			next = 30*time.Second + time.Duration(rng.Int64N(int64(5*time.Second)))
		default:
			t.Fatalf("unexpected outcome %v", visit.Outcome)
		}
		seq++
		heap.Push(&events, event{at: e.at.Add(next), seq: seq, v: v})
	}

	// Everyone who stayed got in; the others gave up.
	var gaveUp int
	for _, v := range vs {
		switch v.state {
		case goneState:
			gaveUp++
		case doneState:
		default:
			t.Fatalf("visitor %d ended in state %d", v.id, v.state)
		}
	}
	if gaveUp == 0 || gaveUp+stayers != visitors {
		t.Fatalf("gave up %d, admitted %d, of %d", gaveUp, stayers, visitors)
	}
	// Visitors entering in any 60 s window: at most the rate.
	for sec := range int64(lastStats.Sub(start) / time.Second) {
		var n int
		for s := sec - 59; s <= sec; s++ {
			n += admitted[s]
		}
		if n > perMinute {
			t.Fatalf("%d visitors entered in the 60 s before t=%ds", n, sec)
		}
	}
	// Ticket order: slots are granted strictly in ticket order; a visitor learns of the grant
	// at the next poll, so nobody enters more than one poll interval before an earlier ticket.
	sort.Slice(vs, func(i, j int) bool { return vs[i].ticket < vs[j].ticket })
	var latest time.Time
	var latestTicket int64
	for _, v := range vs {
		if v.admittedAt.IsZero() {
			continue
		}
		if v.admittedAt.Add(refresh + 2*time.Second).Before(latest) {
			t.Fatalf("ticket %d entered at %v, before ticket %d at %v", v.ticket, v.admittedAt.Sub(start), latestTicket, latest.Sub(start))
		}
		if v.admittedAt.After(latest) {
			latest, latestTicket = v.admittedAt, v.ticket
		}
	}
	// Abandoned grants came back: more slots were granted than visitors entered, and yet
	// every stayer got in and the room ends empty.
	clock.Set(lastStats.Add(4 * time.Minute)) // past every session, within the idle time
	s, err := room.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if wasted := s.Admissions - int64(stayers); wasted <= 0 {
		t.Errorf("no grant went to a visitor who had left (%d grants, %d entered): scenario too easy", s.Admissions, stayers)
	}
	if s.Active != 0 || s.Waiting != 0 {
		t.Errorf("room not empty at the end: %+v", s)
	}
	t.Logf("%d entered, %d gave up, %d grants, drained in %v", stayers, gaveUp, s.Admissions, lastStats.Sub(start))
}

type visitorState uint8

const (
	newState visitorState = iota
	waitingState
	admittedState
	doneState
	goneState
)

type visitor struct {
	id         int
	state      visitorState
	cookie     string
	ticket     int64
	giveUp     time.Time
	admittedAt time.Time
	leave      time.Time
	release    bool
	pass       token.Pass
}

type event struct {
	at  time.Time
	seq int
	v   *visitor
}

type eventQueue []event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(event)) }
func (q *eventQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}
