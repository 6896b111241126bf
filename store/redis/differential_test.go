package redis_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/memory"
	"github.com/waitingroom-go/waitingroom/store/redis"
	"github.com/waitingroom-go/waitingroom/store/storetest"
)

// TestDifferential applies long random sequences of operations (every operation, limits
// that change, events with pre-queues and shuffles, FIFO, Random and Passthrough, store
// losses and epochs, clock jumps either way, slot counts set and taken, a room that closes
// when sold out) to the reference engine (admission.Room, as
// store/memory holds it) and to the Lua script, on miniredis and, when
// WAITINGROOM_REDIS_ADDR is set, on a real Redis, and requires the same answers, every
// field. DIFF_SEED=n replays one seed; DIFF_STEPS=n sets the steps per seed.
func TestDifferential(t *testing.T) {
	seeds := []uint64{1, rand.Uint64()}
	if s := os.Getenv("DIFF_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seeds = []uint64{n}
	}
	steps := 6000
	if s := os.Getenv("DIFF_STEPS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		steps = n
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("miniredis/seed=%d", seed), func(t *testing.T) {
			differential(t, seed, steps, miniTarget(t))
		})
	}
	if os.Getenv("WAITINGROOM_REDIS_ADDR") != "" {
		client := realClient(t)
		seed := rand.Uint64()
		t.Run(fmt.Sprintf("redis/seed=%d", seed), func(t *testing.T) {
			differential(t, seed, steps, realTarget(t, client))
		})
	}
}

// target is a Redis store under the differential test, on the test's clock.
type target struct {
	client goredis.UniversalClient
	store  *redis.Store
	setNow func(time.Time) // tells the server the clock moved (miniredis); nil: the store passes it
	forget func()          // the server loses every room
}

func miniTarget(t *testing.T) func(clock *storetest.Clock) target {
	return func(clock *storetest.Clock) target {
		m := miniredis.RunT(t)
		m.SetTime(clock.Now())
		m.ClockTTL(true)
		client := goredis.NewClient(&goredis.Options{Addr: m.Addr(), ContextTimeoutEnabled: true})
		t.Cleanup(func() { client.Close() })
		rs, err := redis.New(client)
		if err != nil {
			t.Fatal(err)
		}
		return target{client: client, store: rs, setNow: m.SetTime, forget: m.FlushAll}
	}
}

func realTarget(t *testing.T, client *goredis.Client) func(clock *storetest.Clock) target {
	return func(clock *storetest.Clock) target {
		prefix := "wrdiff-" + randomHex(6)
		rs, err := redis.New(client, redis.WithPrefix(prefix), redis.WithClock(clock.Now))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { deletePrefix(t, client, prefix) })
		return target{store: rs, forget: func() { deletePrefix(t, client, prefix) }}
	}
}

func differential(t *testing.T, seed uint64, ops int, newTarget func(*storetest.Clock) target) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d: rerun it with DIFF_SEED=%d", seed, seed)
		}
	})
	rng := rand.New(rand.NewPCG(seed, 7))
	clock := storetest.NewClock(start)
	mem := storetest.NewForgetful(func() store.Store { return memory.New(memory.WithClock(clock.Now)) })
	tg := newTarget(clock)
	rs := tg.store
	var err error
	ctx := context.Background()
	l := admission.Limits{
		Capacity: 4, PerMinute: 5, Session: 90 * time.Second, Renewal: true,
		Hold: time.Minute, Grace: 20 * time.Second, Recovery: 15 * time.Second, Refresh: 10 * time.Second,
	}
	rooms := []string{"a", "b"}
	// What the test handed out, to poll, renew and release the way a room would: a ticket
	// only while its JWT would be valid (its last counted poll within the hold), a pass only
	// until its session's expiry. Now and then a junk reference no valid token can carry.
	type handed struct {
		ref      store.Ref
		seen     time.Time     // last counted poll
		hold     time.Duration // the shortest hold since: its ticket is valid that long
		admitted bool
		expires  time.Time
	}
	refs := map[string][]*handed{}
	find := func(room string, ref store.Ref) *handed {
		for _, h := range refs[room] {
			if h.ref == ref {
				return h
			}
		}
		h := &handed{ref: ref}
		refs[room] = append(refs[room], h)
		return h
	}
	// Each room's clock: the latest time it answered with. A clock that steps back leaves
	// it where it was, so tokens age by it, not by the test's clock.
	roomNow := map[string]time.Time{}
	pick := func(room string, pass bool) store.Ref {
		now := clock.Now()
		if roomNow[room].After(now) {
			now = roomNow[room]
		}
		var ok []store.Ref
		for _, h := range refs[room] {
			// Tickets are used within 64 s of their last poll too: a room nobody visits for
			// 65 s may go (store/memory sweeps it, Redis lets it expire), each store at its
			// own moment, so a ticket older than that could find one store with the room
			// and the other without. And within the hold in force: once a place is passed,
			// a store keeps what says so for a hold, the one it then has, and a shorter hold
			// since lets the stores forget at different moments.
			if pass && h.admitted && now.Before(h.expires) ||
				!pass && now.Sub(h.seen) < min(h.hold, 64*time.Second)-time.Second {
				ok = append(ok, h.ref)
			}
		}
		if len(ok) == 0 || rng.IntN(25) == 0 {
			switch rng.IntN(3) {
			case 0:
				return store.Ref{}
			case 1:
				return store.Ref{Number: -1, Epoch: clock.Now().UnixMilli()}
			}
			return store.Ref{Number: rng.Int64N(5), Epoch: clock.Now().UnixMilli() + 1e6}
		}
		return ok[rng.IntN(len(ok))]
	}
	var history []string
	histN := 30
	if s := os.Getenv("DIFF_HISTORY"); s != "" {
		histN, _ = strconv.Atoi(s)
	}
	fail := func(format string, args ...any) {
		t.Helper()
		for _, h := range history[max(0, len(history)-histN):] {
			t.Log(h)
		}
		t.Fatalf("seed %d: "+format, append([]any{seed}, args...)...)
	}
	// A room nobody visits for 65 s may go, each store at its own moment (store/memory at
	// its next sweep, Redis when its TTL runs out), so that a join could find it in one store
	// and not in the other: a room left alone for 45 s is asked for its stats, which keeps it.
	lastTouch := map[string]time.Time{}
	for i := range ops {
		for _, r := range rooms {
			if t0, ok := lastTouch[r]; ok && clock.Now().Sub(t0) >= 45*time.Second {
				a, _ := mem.Stats(ctx, r, l)
				b, err := rs.Stats(ctx, r, l)
				if err != nil {
					fail("stats of %s, which was left alone: redis: %v", r, err)
				}
				history = append(history, fmt.Sprintf("op %d %s stats (left alone) %s: %s", i, r, clock.Now().Format("15:04:05.000"), show(a)))
				if show(a) != show(b) {
					fail("stats of %s, which was left alone, differ:\n memory: %s\n redis:  %s", r, show(a), show(b))
				}
				lastTouch[r] = clock.Now()
			}
		}
		room := rooms[rng.IntN(len(rooms))]
		var op string
		var a, b any
		switch r := rng.IntN(100); {
		case r < 25 && rng.IntN(150) == 0:
			// A crowd that joins and never comes back: blocks of places that lapse whole
			// (admission.Block), which admission passes a block at a time.
			n := 50 + rng.IntN(2*admission.Block)
			op = fmt.Sprintf("join x%d", n)
			for j := range n {
				a, _ = mem.Join(ctx, room, l)
				if b, err = rs.Join(ctx, room, l); err != nil || show(a) != show(b) {
					op = fmt.Sprintf("join %d of %d", j+1, n)
					break
				}
			}
		case r < 25:
			op = "join"
			a, _ = mem.Join(ctx, room, l)
			b, err = rs.Join(ctx, room, l)
		case r < 60:
			ref := pick(room, false)
			op = fmt.Sprintf("poll %+v", ref)
			a, _ = mem.Poll(ctx, room, ref, l)
			b, err = rs.Poll(ctx, room, ref, l)
		case r < 66:
			ref := pick(room, true)
			la := l // with an admission time within the rate window or not, or none
			if k := rng.IntN(3); k > 0 {
				la.Admitted = clock.Now().Add(-time.Duration(rng.Int64N(int64(k) * int64(time.Minute)))).UnixMilli()
			}
			if rng.IntN(4) == 0 {
				// A pass an instance issued alone while the store was unreachable, for a
				// ticket it held (waiting, granted, or passed).
				la.Recount = true
				if rng.IntN(3) > 0 {
					ref = pick(room, false)
				}
			}
			op = fmt.Sprintf("renew %+v admitted %d recount %v", ref, la.Admitted, la.Recount)
			a, _ = mem.Renew(ctx, room, ref, la)
			b, err = rs.Renew(ctx, room, ref, la)
		case r < 70:
			// A pass that ran out a little while ago, as a late form brings it.
			ref := pick(room, true)
			for _, h := range refs[room] {
				if h.admitted && !roomNow[room].Before(h.expires) && roomNow[room].Sub(h.expires) < 2*time.Minute {
					ref = h.ref
				}
			}
			op = fmt.Sprintf("revive %+v", ref)
			a, _ = mem.Revive(ctx, room, ref, l)
			b, err = rs.Revive(ctx, room, ref, l)
		case r < 77:
			ref := pick(room, true)
			op = fmt.Sprintf("release %+v", ref)
			mem.Release(ctx, room, ref)
			err = rs.Release(ctx, room, ref)
		case r < 81:
			op = "stats"
			a, _ = mem.Stats(ctx, room, l)
			b, err = rs.Stats(ctx, room, l)
		case r < 85:
			// The host's count of slots, kept small so that it often runs out: set (or
			// stopped, at -1), taken, given back.
			n := rng.Int64N(4) - 1
			if rng.IntN(4) == 0 {
				op = fmt.Sprintf("set slots %d", n)
				mem.SetSlots(ctx, room, n)
				err = rs.SetSlots(ctx, room, n)
			} else {
				op = fmt.Sprintf("take slots %d", n)
				a, _ = mem.TakeSlots(ctx, room, n)
				b, err = rs.TakeSlots(ctx, room, n)
			}
		case r < 97:
			d := time.Duration(rng.Int64N(int64(15 * time.Second)))
			switch rng.IntN(40) {
			case 0:
				d = -d // a clock that jumps back: the stores stand still
			case 1:
				// A step back of under a second: the rooms' clocks go back to the start of
				// their latest second, no further (admission.Room.clock).
				d = -time.Duration(rng.Int64N(int64(time.Second)))
			}
			op = fmt.Sprintf("advance %v", d)
			clock.Advance(d)
			if tg.setNow != nil {
				tg.setNow(clock.Now())
			}
		case r < 98 && i > ops/3:
			op = "forget (the store loses every room)"
			mem.Forget()
			tg.forget()
			l.LastEpoch = 0
		default:
			switch rng.IntN(11) {
			case 10:
				l.CloseWhenSoldOut = !l.CloseWhenSoldOut
			case 7:
				l.Capacity, l.PerMinute = 1+rng.Int64N(6), 1+rng.Int64N(8)
			case 8:
				l.Hold = time.Duration(30+rng.IntN(90)) * time.Second // and the liveness counts with it
				for _, hs := range refs {
					for _, h := range hs {
						h.hold = min(h.hold, l.Hold) // the shortest hold since it was seen
					}
				}
			case 9:
				l.Refresh = time.Duration(1+rng.IntN(15)) * time.Second
			case 5, 6:
				// A schedule of one or two events near now, or none: pre-queues, shuffles,
				// and the event's own limits, switched on each store's clock alike.
				l.Events = nil
				at := clock.Now().Add(time.Duration(rng.Int64N(int64(time.Minute))))
				for range rng.IntN(3) {
					pre := at.Add(-time.Duration(rng.Int64N(int64(40 * time.Second))))
					if n := len(l.Events); n > 0 && pre.UnixMilli() < l.Events[n-1].End {
						pre = time.UnixMilli(l.Events[n-1].End)
					}
					start := at
					if pre.After(at) {
						start = pre
					}
					end := start.Add(time.Minute + time.Duration(rng.Int64N(int64(2*time.Minute))))
					capacity := 1 + rng.Int64N(6)
					l.Events = append(l.Events, admission.Event{
						Prequeue: pre.UnixMilli(), Start: start.UnixMilli(), End: end.UnixMilli(),
						Shuffle: rng.IntN(3) > 0, Seed: rng.Int64N(admission.MaxSeed),
						Capacity: capacity, PerMinute: 1 + rng.Int64N(capacity+2),
						Session: time.Duration(30+rng.IntN(90)) * time.Second, Renewal: rng.IntN(2) == 0,
						Method: []admission.Method{admission.FIFO, admission.FIFO, admission.Random, admission.Passthrough}[rng.IntN(4)],
					})
					at = end.Add(time.Duration(rng.Int64N(int64(time.Minute))))
				}
				if err := l.Validate(); err != nil {
					t.Fatalf("the test made a bad schedule: %v", err)
				}
			case 0:
				l.QueueAll = !l.QueueAll
			case 1:
				l.Method = admission.Passthrough
			case 2:
				l.Method = admission.FIFO
			case 3:
				l.Renewal = !l.Renewal
			case 4:
				l.Method = admission.Random
			}
			op = fmt.Sprintf("limits %+v", l)
		}
		if err != nil {
			if tg.client != nil {
				t.Log(dumpRoom(tg.client, "wr", room))
				t.Log(dumpSets(tg.client, "wr", room))
			}
			fail("op %d %s: redis: %v", i, op, err)
		}
		switch {
		case strings.HasPrefix(op, "forget"):
			clear(lastTouch)
		case !strings.HasPrefix(op, "advance") && !strings.HasPrefix(op, "limits"):
			lastTouch[room] = clock.Now()
		}
		history = append(history, fmt.Sprintf("op %d %s %s %s: %s", i, room, op, clock.Now().Format("15:04:05.000"), show(a)))
		if show(a) != show(b) {
			if tg.client != nil {
				t.Log(dumpRoom(tg.client, "wr", room))
				t.Log(dumpSets(tg.client, "wr", room))
			}
			fail("op %d %s on %s differs (limits %+v):\n memory: %s\n redis:  %s", i, op, room, l, show(a), show(b))
		}
		if os.Getenv("DIFF_STATS") != "" {
			sa, _ := mem.Stats(ctx, room, l)
			sb, _ := rs.Stats(ctx, room, l)
			if show(sa) != show(sb) {
				fail("after op %d %s on %s, stats differ:\n memory: %s\n redis:  %s", i, op, room, show(sa), show(sb))
			}
		}
		switch res := a.(type) {
		case store.Result:
			roomNow[room] = res.Now
			if res.SoldOut {
				break // no ticket handed out
			}
			h := find(room, store.Ref{Number: res.Ticket, Epoch: res.Epoch})
			if res.Admitted {
				// The room hands out a pass: the ticket keeps its old validity.
				h.admitted, h.expires = true, res.Expires
			} else {
				h.seen, h.hold = res.Now, l.Hold // a fresh ticket
			}
		case store.Stats:
			roomNow[room] = res.Now
		case store.Renewal:
			roomNow[room] = res.Now
			var ref store.Ref
			if _, err := fmt.Sscanf(op, "renew {Number:%d Epoch:%d}", &ref.Number, &ref.Epoch); err != nil {
				fmt.Sscanf(op, "revive {Number:%d Epoch:%d}", &ref.Number, &ref.Epoch)
			}
			if h := find(room, ref); res.Active {
				h.admitted, h.expires = true, res.Expires
			}
		}
	}
}

// show prints an answer with times in Unix milliseconds, so that equal answers print alike.
func show(v any) string {
	ms := func(t time.Time) int64 {
		if t.IsZero() {
			return 0
		}
		return t.UnixMilli()
	}
	switch v := v.(type) {
	case store.Result:
		return fmt.Sprintf("ticket %d epoch %d joined %d requeued %t sold out %t admitted %t expires %d ahead %d next poll %d %s",
			v.Ticket, v.Epoch, ms(v.Joined), v.Requeued, v.SoldOut, v.Admitted, ms(v.Expires), v.UsersAhead, ms(v.NextPoll), show(v.Stats))
	case store.Renewal:
		return fmt.Sprintf("now %d active %t expires %d", ms(v.Now), v.Active, ms(v.Expires))
	case store.Stats:
		return fmt.Sprintf("(now %d active %d waiting %d admissions %d granted %d window %d slots %d)", ms(v.Now), v.Active, v.Waiting, v.Admissions, v.Granted, v.Window, v.Slots)
	case nil:
		return "-"
	}
	return fmt.Sprint(v)
}
