package estimate_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom/admission"
	"github.com/waitingroom-go/waitingroom/estimate"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/memory"
	"github.com/waitingroom-go/waitingroom/store/storetest"
)

// Where the closed form is exact (a big burst, fixed sessions, no abandonment, limited by
// the rate or by capacity over the session) the simulation agrees with it within 2%.
func TestPlanAgreesWithClosedForm(t *testing.T) {
	for _, tc := range []struct {
		name       string
		s          estimate.Scenario
		bottleneck string
	}{
		{"rate", estimate.Scenario{Arrivals: 20000, TotalActiveUsers: 1000, NewUsersPerMinute: 100, Session: 5 * time.Minute}, "rate"},
		{"capacity", estimate.Scenario{Arrivals: 20000, TotalActiveUsers: 200, NewUsersPerMinute: 200, Session: 5 * time.Minute}, "capacity/session"},
		{"capacity, short sessions", estimate.Scenario{Arrivals: 50000, TotalActiveUsers: 300, NewUsersPerMinute: 300, Session: 2 * time.Minute}, "capacity/session"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := estimate.Plan(tc.s)
			if err != nil {
				t.Fatal(err)
			}
			if f.Bottleneck != tc.bottleneck || f.Admitted != tc.s.Arrivals {
				t.Fatalf("bottleneck %q, admitted %d", f.Bottleneck, f.Admitted)
			}
			near := func(what string, sim, fluid float64) {
				if rel := math.Abs(sim-fluid) / fluid; rel > 0.02 {
					t.Errorf("%s: simulation %.2f, closed form %.2f (%.1f%% apart)", what, sim, fluid, 100*rel)
				}
			}
			near("throughput/min", f.Throughput, f.Fluid.Throughput)
			near("p50 wait (min)", f.WaitP50.Minutes(), f.Fluid.WaitP50.Minutes())
			near("p95 wait (min)", f.WaitP95.Minutes(), f.Fluid.WaitP95.Minutes())
			near("max wait (min)", f.WaitMax.Minutes(), f.Fluid.WaitMax.Minutes())
			near("drain (min)", f.Drain.Minutes(), f.Fluid.Drain.Minutes())
		})
	}
}

// TestPlanMatchesTheRoom runs each crowd twice: through the planner, and through the memory
// store itself with every visitor polling every refresh interval. The planner applies the
// room's own rules, so every visitor enters at the same second in both.
func TestPlanMatchesTheRoom(t *testing.T) {
	base := estimate.Scenario{
		Arrivals: 1500, Spread: 3 * time.Minute, Session: 2 * time.Minute,
		TotalActiveUsers: 40, NewUsersPerMinute: 30, Seed: 7,
	}
	for _, tc := range []struct {
		name string
		f    func(*estimate.Scenario)
	}{
		{"spread arrivals", func(*estimate.Scenario) {}},
		{"burst", func(s *estimate.Scenario) { s.Spread = 0 }},
		{"sessions of different lengths", func(s *estimate.Scenario) { s.SessionSpread = 45 * time.Second }},
		{"abandonment", func(s *estimate.Scenario) { s.Abandon, s.Patience = 0.15, 6*time.Minute }},
		{"arrival curve", func(s *estimate.Scenario) { s.Curve = []float64{6, 3, 1, 1, 1} }},
		{"rate-bound", func(s *estimate.Scenario) { s.NewUsersPerMinute, s.Session = 10, 30*time.Second }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base
			tc.f(&s)
			plan, err := estimate.PlanEntries(s)
			if err != nil {
				t.Fatal(err)
			}
			_, room := driveRoomEntries(t, s)
			diff := 0
			for i := range plan {
				p := time.Duration(plan[i]) * time.Millisecond
				if plan[i] < 0 {
					p = -1
				}
				if p != room[i] {
					if diff++; diff <= 5 {
						t.Errorf("visitor %d: planner says it enters at %v, the room let it in at %v", i, p, room[i])
					}
				}
			}
			if diff > 0 {
				t.Errorf("%d of %d visitors differ", diff, len(plan))
			}
		})
	}
}

// driveRoom plays the scenario's crowd against the memory store, each visitor polling every
// refresh interval from its arrival (on the second it falls in), and measures what Plan
// measures.
func driveRoom(t *testing.T, s estimate.Scenario) estimate.Forecast {
	f, _ := driveRoomEntries(t, s)
	return f
}

func driveRoomEntries(t *testing.T, s estimate.Scenario) (estimate.Forecast, []time.Duration) {
	t.Helper()
	crowd, err := estimate.Crowd(s)
	if err != nil {
		t.Fatal(err)
	}
	clock := storetest.NewClock(time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC))
	st := memory.New(memory.WithClock(clock.Now))
	ctx := context.Background()
	const refresh = 20 * time.Second
	l := admission.Limits{
		Capacity: int64(s.TotalActiveUsers), PerMinute: int64(s.NewUsersPerMinute),
		Session: time.Hour, Renewal: true, Hold: 5 * time.Minute, Grace: 2 * refresh,
	}
	type visitor struct {
		ref    store.Ref
		joined bool
		polls  int           // polls made after the join
		leave  time.Duration // admitted: when it releases its slot
		done   bool
	}
	vs := make([]visitor, len(crowd))
	var out estimate.Forecast
	var waits []time.Duration
	entered := make([]time.Duration, len(crowd))
	for i := range entered {
		entered[i] = -1
	}
	admit := func(i int, now time.Duration) {
		entered[i] = now
		vs[i].leave = now + crowd[i].Session
		waits = append(waits, now-crowd[i].Arrive)
		out.Admitted++
		out.Drain = now
	}
	for now := time.Duration(0); out.Admitted+out.GaveUp < len(crowd) || slicesAny(vs, func(v visitor) bool { return v.leave > 0 && !v.done }); now += time.Second {
		if now > 24*time.Hour {
			t.Fatal("the room did not drain in a day")
		}
		if now > 0 {
			clock.Advance(time.Second)
		}
		for i, c := range crowd {
			v := &vs[i]
			switch {
			case v.done || c.Arrive > now:
			case v.leave > 0:
				if now >= v.leave {
					if err := st.Release(ctx, "r", v.ref); err != nil {
						t.Fatal(err)
					}
					v.done = true
				}
			case c.GiveUp > 0 && now >= c.GiveUp:
				v.done = true
				out.GaveUp++
				out.Drain = max(out.Drain, c.GiveUp.Truncate(time.Second))
			case !v.joined:
				res, err := st.Join(ctx, "r", l)
				if err != nil {
					t.Fatal(err)
				}
				v.joined, v.ref = true, store.Ref{Number: res.Ticket, Epoch: res.Epoch}
				if res.Admitted {
					admit(i, now)
				}
			case now >= ceilSecond(c.Arrive+time.Duration(v.polls+1)*refresh):
				v.polls++
				res, err := st.Poll(ctx, "r", v.ref, l)
				if err != nil {
					t.Fatal(err)
				}
				if res.Requeued {
					t.Fatalf("visitor %d lost its place at %v", i, now)
				}
				if res.Admitted {
					admit(i, now)
				}
			}
		}
	}
	slices.Sort(waits)
	q := func(p float64) time.Duration { return waits[min(len(waits)-1, int(p*float64(len(waits))))] }
	out.WaitP50, out.WaitP95, out.WaitMax = q(0.5), q(0.95), q(1)
	return out, entered
}

// ceilSecond rounds d up to a whole second: a poll is served on the second it falls in.
func ceilSecond(d time.Duration) time.Duration { return (d + time.Second - 1).Truncate(time.Second) }

func slicesAny[T any](s []T, f func(T) bool) bool {
	for _, v := range s {
		if f(v) {
			return true
		}
	}
	return false
}

func TestPlanValidation(t *testing.T) {
	ok := estimate.Scenario{Arrivals: 10, TotalActiveUsers: 5, NewUsersPerMinute: 5}
	for name, f := range map[string]func(*estimate.Scenario){
		"no arrivals":           func(s *estimate.Scenario) { s.Arrivals = 0 },
		"no capacity":           func(s *estimate.Scenario) { s.TotalActiveUsers = 0 },
		"no rate":               func(s *estimate.Scenario) { s.NewUsersPerMinute = -1 },
		"abandon above 1":       func(s *estimate.Scenario) { s.Abandon = 1.5 },
		"negative spread":       func(s *estimate.Scenario) { s.Spread = -time.Second },
		"spread beyond session": func(s *estimate.Scenario) { s.SessionSpread = time.Hour },
		"curve without weight":  func(s *estimate.Scenario) { s.Curve = []float64{0, 0} },
		"negative curve":        func(s *estimate.Scenario) { s.Curve = []float64{1, -1} },
	} {
		s := ok
		f(&s)
		if _, err := estimate.Plan(s); !errors.Is(err, estimate.ErrScenario) {
			t.Errorf("%s: %v, want ErrScenario", name, err)
		}
	}
	if _, err := estimate.Plan(ok); err != nil {
		t.Errorf("valid scenario: %v", err)
	}
}

func TestPlanNoQueue(t *testing.T) {
	// Arrivals slower than the room admits: nobody waits.
	f, err := estimate.Plan(estimate.Scenario{Arrivals: 600, Spread: time.Hour, TotalActiveUsers: 100, NewUsersPerMinute: 100})
	if err != nil {
		t.Fatal(err)
	}
	if f.WaitMax > time.Second || f.Admitted != 600 {
		t.Fatalf("max wait %v, admitted %d; want no waiting", f.WaitMax, f.Admitted)
	}
}

func TestPlanCurve(t *testing.T) {
	// Three quarters in the first minute, the rest in the next three.
	crowd, err := estimate.Crowd(estimate.Scenario{Arrivals: 400, Curve: []float64{3, 1.0 / 3, 1.0 / 3, 1.0 / 3}, TotalActiveUsers: 5, NewUsersPerMinute: 5})
	if err != nil {
		t.Fatal(err)
	}
	var first int
	for i, v := range crowd {
		if i > 0 && v.Arrive < crowd[i-1].Arrive {
			t.Fatalf("arrivals out of order at %d", i)
		}
		if v.Arrive < time.Minute {
			first++
		}
	}
	if first != 300 || crowd[len(crowd)-1].Arrive >= 4*time.Minute {
		t.Fatalf("%d arrived in the first minute, last at %v; want 300 and before 4m", first, crowd[len(crowd)-1].Arrive)
	}
}

func TestRecommend(t *testing.T) {
	s := estimate.Scenario{Arrivals: 10000, TotalActiveUsers: 1000, NewUsersPerMinute: 1, Session: 5 * time.Minute}
	r, err := estimate.Recommend(s, 60*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Feasible || r.Forecast.WaitMax > 60*time.Minute {
		t.Fatalf("not feasible or over target: %+v", r)
	}
	// One less of either misses the target: the recommendation is the smallest.
	for _, less := range []estimate.Scenario{
		{Arrivals: s.Arrivals, Session: s.Session, TotalActiveUsers: r.TotalActiveUsers, NewUsersPerMinute: r.NewUsersPerMinute - 1},
	} {
		f, err := estimate.Plan(less)
		if err != nil {
			t.Fatal(err)
		}
		if f.WaitMax <= 60*time.Minute {
			t.Errorf("%d a minute already meets the target (max wait %v); recommended %d", less.NewUsersPerMinute, f.WaitMax, r.NewUsersPerMinute)
		}
	}
	if r.TotalActiveUsers > r.NewUsersPerMinute {
		less := estimate.Scenario{Arrivals: s.Arrivals, Session: s.Session, TotalActiveUsers: r.TotalActiveUsers - 1, NewUsersPerMinute: r.NewUsersPerMinute}
		if f, err := estimate.Plan(less); err == nil && f.WaitMax <= 60*time.Minute {
			t.Errorf("capacity %d already meets the target; recommended %d", less.TotalActiveUsers, r.TotalActiveUsers)
		}
	}
	// An origin of 50 places with 5-minute sessions lets through 10 a minute: 10,000 people
	// need over 16 hours. No setting meets an hour.
	s.TotalActiveUsers = 50
	r, err = estimate.Recommend(s, 60*time.Minute)
	if err != nil || r.Feasible || r.Reason == "" {
		t.Fatalf("infeasible target: %+v, %v", r, err)
	}
	t.Log(r.Reason)
}

func BenchmarkPlan100k(b *testing.B) {
	s := estimate.Scenario{Arrivals: 100000, TotalActiveUsers: 500, NewUsersPerMinute: 200, Session: 5 * time.Minute, Abandon: 0.1}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := estimate.Plan(s); err != nil {
			b.Fatal(err)
		}
	}
}
