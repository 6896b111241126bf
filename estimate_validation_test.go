package waitingroom_test

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/estimate"
	"github.com/waitingroom-go/waitingroom/store/memory"
)

// waitCheck is how well the waits shown at join matched the waits people had.
type waitCheck struct {
	n            int
	medianAbsErr float64 // median of |predicted p50 - actual| / actual
	p75Covers    float64 // share of visitors whose actual wait was within the p75 shown
	p25Covers    float64 // share within the p25 shown (about a quarter when calibrated)
	bias         float64 // median of (predicted p50 - actual) / actual
	unknown      int     // joins told "unknown"
}

// TestWaitEstimatesAreHonest runs crowds through a room in simulated time and compares the
// wait each visitor was shown when joining (the p50 and p75) with the wait it actually had.
// Targets: median absolute error within 15% in steady queues and 25% after a burst at the
// opening; the 75th percentile covers at least 70% of actual waits.
func TestWaitEstimatesAreHonest(t *testing.T) {
	for _, tc := range []struct {
		name      string
		s         estimate.Scenario
		maxErr    float64
		fromQueue time.Duration // judge only visitors who joined after this (a steady queue has formed)
	}{
		{"steady arrivals", estimate.Scenario{Arrivals: 3000, Spread: 60 * time.Minute, TotalActiveUsers: 60, NewUsersPerMinute: 60,
			Session: 2 * time.Minute, SessionSpread: 30 * time.Second}, 0.15, 15 * time.Minute},
		{"burst at the opening", estimate.Scenario{Arrivals: 2000, TotalActiveUsers: 50, NewUsersPerMinute: 50,
			Session: 2 * time.Minute, SessionSpread: 30 * time.Second}, 0.25, 0},
		{"slow sessions", estimate.Scenario{Arrivals: 1500, Spread: 45 * time.Minute, TotalActiveUsers: 100, NewUsersPerMinute: 100,
			Session: 8 * time.Minute, SessionSpread: 4 * time.Minute}, 0.15, 15 * time.Minute},
		{"abandonment", estimate.Scenario{Arrivals: 3000, Spread: 60 * time.Minute, TotalActiveUsers: 60, NewUsersPerMinute: 60,
			Session: 2 * time.Minute, SessionSpread: 30 * time.Second, Abandon: 0.2, Patience: 6 * time.Minute}, 0.15, 15 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := checkWaits(t, tc.s, tc.fromQueue)
			t.Logf("%s: %d visitors judged, median absolute error %.1f%% (bias %+.1f%%), p25 covers %.1f%%, p75 covers %.1f%%, %d unknown",
				tc.name, c.n, 100*c.medianAbsErr, 100*c.bias, 100*c.p25Covers, 100*c.p75Covers, c.unknown)
			if c.n < 100 {
				t.Fatalf("only %d visitors waited: the scenario does not queue", c.n)
			}
			if c.medianAbsErr > tc.maxErr {
				t.Errorf("median absolute error %.1f%%, target %.0f%%", 100*c.medianAbsErr, 100*tc.maxErr)
			}
			if c.p75Covers < 0.70 {
				t.Errorf("the 75th percentile covered %.1f%% of actual waits, target 70%%", 100*c.p75Covers)
			}
		})
	}
}

// checkWaits plays the crowd through a Room: each visitor joins, polls every refresh
// interval, holds its session for its length once in and then releases it.
func checkWaits(t *testing.T, s estimate.Scenario, from time.Duration) waitCheck {
	t.Helper()
	crowd, err := estimate.Crowd(s)
	if err != nil {
		t.Fatal(err)
	}
	clock := newSimClock()
	open := clock.Now()
	room, err := waitingroom.New("w", memory.New(memory.WithClock(clock.Now)), waitingroom.Config{
		TotalActiveUsers: s.TotalActiveUsers, NewUsersPerMinute: s.NewUsersPerMinute,
		SessionDuration: 10 * time.Minute, TypicalSession: s.Session,
	}, waitingroom.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	const refresh = 20 * time.Second
	type visitor struct {
		cookie   string
		joined   bool
		polls    int
		shown    waitingroom.Status
		admitted time.Duration
		leave    time.Duration
		done     bool
	}
	vs := make([]visitor, len(crowd))
	ctx := context.Background()
	left := len(crowd)
	for now := time.Duration(0); left > 0; now += time.Second {
		if now > 24*time.Hour {
			t.Fatal("not drained in a day")
		}
		clock.Set(open.Add(now))
		for i, c := range crowd {
			v := &vs[i]
			if v.done || c.Arrive > now {
				continue
			}
			if v.leave > 0 {
				if now >= v.leave {
					p, err := room.Codec().ParsePass("w", v.cookie, clock.Now())
					if err == nil {
						room.Release(ctx, p)
					}
					v.done = true
					left--
				}
				continue
			}
			if c.GiveUp > 0 && now >= c.GiveUp {
				v.done = true
				left--
				continue
			}
			if v.joined && now < (c.Arrive+time.Duration(v.polls+1)*refresh+time.Second-1).Truncate(time.Second) {
				continue
			}
			visit, err := room.Enter(ctx, v.cookie)
			if err != nil {
				t.Fatal(err)
			}
			if visit.Token != "" {
				v.cookie = visit.Token
			}
			if !v.joined {
				v.joined = true
				v.shown = visit.Status
			} else {
				v.polls++
			}
			if visit.Outcome == waitingroom.Admitted {
				v.admitted = now - c.Arrive
				v.leave = now + c.Session
			}
		}
	}
	var errs, signed []float64
	var out waitCheck
	covered, under := 0, 0
	for i, v := range vs {
		if v.leave == 0 || crowd[i].Arrive < from || v.admitted < time.Minute {
			continue // gave up, joined before the queue settled, or hardly waited
		}
		if !v.shown.Wait.Known {
			out.unknown++
			continue
		}
		out.n++
		actual := v.admitted.Seconds()
		errs = append(errs, math.Abs(v.shown.Wait.P50.Seconds()-actual)/actual)
		signed = append(signed, (v.shown.Wait.P50.Seconds()-actual)/actual)
		if v.admitted <= v.shown.Wait.P25 {
			under++
		}
		if v.admitted <= v.shown.Wait.P75+refresh/2 {
			covered++
		}
	}
	if out.n == 0 {
		return out
	}
	slices.Sort(errs)
	slices.Sort(signed)
	out.medianAbsErr = errs[len(errs)/2]
	out.bias = signed[len(signed)/2]
	out.p25Covers = float64(under) / float64(out.n)
	out.p75Covers = float64(covered) / float64(out.n)
	return out
}
