package waitingroom_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/estimate"
	"github.com/waitingroom-go/waitingroom/store/memory"
)

// accuracy is how well shown waits matched the waits people had.
type accuracy struct {
	n            int
	medianAbsErr float64 // median of |predicted p50 - actual| / actual
	bias         float64 // median of (predicted p50 - actual) / actual
	p25Covers    float64 // share within the p25 shown (about a quarter when calibrated)
	p75Covers    float64 // share within the p75 shown
	unknown      int     // told "unknown"
}

func (a accuracy) String() string {
	return fmt.Sprintf("%d judged, median absolute error %.1f%% (bias %+.1f%%), p25 covers %.1f%%, p75 covers %.1f%%, %d unknown",
		a.n, 100*a.medianAbsErr, 100*a.bias, 100*a.p25Covers, 100*a.p75Covers, a.unknown)
}

// waitCheck is what checkWaits found.
type waitCheck struct {
	join, poll accuracy // the wait shown at join, and the wait left shown at each later poll
	jump95     float64  // 95th percentile of how far a visitor's estimate moved between polls
	jumpMax    float64  // the largest such move, relative to what was left
	lost       int      // polls told "unknown" after a known wait
}

type waitOptions struct {
	from             time.Duration // judge joins and polls from this time on (a steady queue has formed)
	method           waitingroom.Method
	noTypicalSession bool          // the room is not told how long sessions last: no prior
	typicalSession   time.Duration // what the room is told instead of the truth
	pollsOnly        bool          // judge the waits shown at polls, not at join
}

// TestWaitEstimatesAreHonest runs crowds through a room in simulated time and compares the
// waits shown (the p50 and p75) with the waits people had: at join, and what was left at
// every later poll. Targets: median absolute error within 15% in steady queues and 25%
// after a burst at the opening; the 75th percentile covers at least 70% of actual waits;
// a visitor's estimate moves between polls by no more than the time gone by, give or
// take 10% of what is left, at the 95th percentile; a known wait never turns unknown.
func TestWaitEstimatesAreHonest(t *testing.T) {
	if raceDetector {
		// One goroutine drives each crowd, so the detector has nothing to find, and it
		// makes these minutes of simulation take several (.ci/run runs it without).
		t.Skip("a single-goroutine simulation: run without -race")
	}
	steady := estimate.Scenario{Arrivals: 3000, Spread: 60 * time.Minute, TotalActiveUsers: 60, NewUsersPerMinute: 60,
		Session: 2 * time.Minute, SessionSpread: 30 * time.Second}
	burst := estimate.Scenario{Arrivals: 2000, TotalActiveUsers: 50, NewUsersPerMinute: 50,
		Session: 2 * time.Minute, SessionSpread: 30 * time.Second}
	slow := estimate.Scenario{Arrivals: 1500, Spread: 45 * time.Minute, TotalActiveUsers: 100, NewUsersPerMinute: 100,
		Session: 8 * time.Minute, SessionSpread: 4 * time.Minute}
	abandon := steady
	abandon.Abandon, abandon.Patience = 0.2, 6*time.Minute
	rateBound := estimate.Scenario{Arrivals: 3000, Spread: 30 * time.Minute, TotalActiveUsers: 1000, NewUsersPerMinute: 60,
		Session: 2 * time.Minute, SessionSpread: 30 * time.Second}
	const settled = 15 * time.Minute // a steady queue has formed
	for _, tc := range []struct {
		name   string
		s      estimate.Scenario
		o      waitOptions
		maxErr float64
	}{
		{"steady arrivals", steady, waitOptions{from: settled}, 0.15},
		{"burst at the opening", burst, waitOptions{}, 0.25},
		{"burst, no TypicalSession", burst, waitOptions{noTypicalSession: true}, 0.25},
		{"slow sessions", slow, waitOptions{from: settled}, 0.15},
		{"abandonment", abandon, waitOptions{from: settled}, 0.15},
		{"rate-bound", rateBound, waitOptions{from: settled}, 0.15},
		// Told sessions last twice as long as they do, the room learns better within a few
		// (told) sessions; judged from then on.
		{"TypicalSession twice too long", steady, waitOptions{from: 30 * time.Minute, typicalSession: 2 * steady.Session}, 0.15},
		{"random, steady", steady, waitOptions{from: settled, method: waitingroom.Random}, -1},
		// Under Random a visitor joining a burst waits as long as the draw among everyone
		// who joins after it takes, which nobody knows yet: judged from its first poll on.
		{"random, burst", burst, waitOptions{method: waitingroom.Random, pollsOnly: true}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each crowd has its own room and clock
			c := checkWaits(t, tc.s, tc.o)
			t.Logf("%s\n  at join:    %v\n  at polls:   %v\n  between polls: 95th pct. move %.1f%%, largest %.1f%%; %d known waits turned unknown",
				tc.name, c.join, c.poll, 100*c.jump95, 100*c.jumpMax, c.lost)
			for _, a := range []struct {
				at string
				accuracy
			}{{"join", c.join}, {"polls", c.poll}} {
				if a.at == "join" && tc.o.pollsOnly {
					continue
				}
				if a.n < 100 {
					if a.at == "join" && tc.o.noTypicalSession {
						continue // a burst joins before anyone has gone in: unknown, rightly
					}
					t.Fatalf("only %d waits judged at %s: the scenario does not queue", a.n, a.at)
				}
				if tc.maxErr > 0 && a.medianAbsErr > tc.maxErr {
					t.Errorf("at %s: median absolute error %.1f%%, target %.0f%%", a.at, 100*a.medianAbsErr, 100*tc.maxErr)
				}
				if a.p75Covers < 0.70 {
					t.Errorf("at %s: the 75th percentile covered %.1f%% of actual waits, target 70%%", a.at, 100*a.p75Covers)
				}
			}
			if !tc.o.noTypicalSession && c.join.unknown > 0 {
				t.Errorf("%d visitors told the wait is unknown at join, with a prior from the settings", c.join.unknown)
			}
			if tc.o.method != waitingroom.Random && c.jump95 > 0.10 {
				t.Errorf("95th percentile move between polls %.1f%% of the wait left, target 10%%", 100*c.jump95)
			}
			if c.lost > 0 {
				t.Errorf("%d polls told unknown after a known wait", c.lost)
			}
		})
	}
}

// checkWaits plays the crowd through a Room: each visitor joins, polls when told (every
// refresh interval, or when its slot is due), holds its session for its length once in and then releases it. It judges the
// wait shown at join (from visitors who joined at or after from) and the wait left shown at
// every later poll, and how far consecutive polls' estimates of one visitor moved.
func checkWaits(t *testing.T, s estimate.Scenario, o waitOptions) waitCheck {
	t.Helper()
	crowd, err := estimate.Crowd(s)
	if err != nil {
		t.Fatal(err)
	}
	clock := newSimClock()
	open := clock.Now()
	typical := s.Session
	if o.noTypicalSession {
		typical = 0
	} else if o.typicalSession > 0 {
		typical = o.typicalSession
	}
	room, err := waitingroom.New("w", memory.New(memory.WithClock(clock.Now)), waitingroom.Config{
		TotalActiveUsers: s.TotalActiveUsers, NewUsersPerMinute: s.NewUsersPerMinute,
		SessionDuration: 10 * time.Minute, TypicalSession: typical, QueueingMethod: o.method,
	}, waitingroom.WithClock(clock.Now), simStoreTimeout)
	if err != nil {
		t.Fatal(err)
	}
	const refresh = 20 * time.Second
	type shown struct {
		at   time.Duration
		wait estimate.Wait
	}
	type visitor struct {
		cookie   string
		polls    []shown // [0] at join
		admitted time.Duration
		leave    time.Duration
		next     time.Duration // the next poll
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
			if len(v.polls) > 0 && now < v.next {
				continue
			}
			visit, err := room.Enter(ctx, v.cookie)
			if err != nil {
				t.Fatal(err)
			}
			if visit.Token != "" {
				v.cookie = visit.Token
			}
			if visit.Outcome == waitingroom.Admitted {
				v.admitted = now
				v.leave = now + c.Session
				if len(v.polls) == 0 {
					v.polls = append(v.polls, shown{at: now, wait: estimate.Wait{Known: true}})
				}
				continue
			}
			v.polls = append(v.polls, shown{at: now, wait: visit.Status.Wait})
			// When told, on the second it falls in.
			v.next = (now + visit.Status.RefreshInterval + time.Second - 1).Truncate(time.Second)
		}
	}
	var out waitCheck
	var join, poll judged
	var jumps []float64
	for i, v := range vs {
		if v.leave == 0 {
			continue // gave up
		}
		for k, p := range v.polls {
			left := v.admitted - p.at
			if k > 0 && v.polls[k-1].wait.Known && !p.wait.Known {
				out.lost++
			}
			if k > 0 && v.polls[k-1].wait.Known && p.wait.Known && left >= time.Minute {
				// The estimate one poll earlier, less the time gone since.
				want := v.polls[k-1].wait.P50 - (p.at - v.polls[k-1].at)
				jumps = append(jumps, math.Abs((p.wait.P50-want).Seconds())/max(want, 5*time.Minute).Seconds())
			}
			if left < time.Minute {
				continue // hardly waited
			}
			if k == 0 {
				if crowd[i].Arrive >= o.from {
					join.add(p.wait, left, refresh)
				}
			} else if p.at >= o.from {
				poll.add(p.wait, left, refresh)
			}
		}
	}
	out.join, out.poll = join.result(), poll.result()
	if len(jumps) > 0 {
		slices.Sort(jumps)
		out.jump95 = jumps[len(jumps)*95/100]
		out.jumpMax = jumps[len(jumps)-1]
	}
	return out
}

// judged gathers shown waits against the waits people had.
type judged struct {
	errs, signed  []float64
	under, covers int
	unknown       int
}

func (j *judged) add(w estimate.Wait, actual, refresh time.Duration) {
	if !w.Known {
		j.unknown++
		return
	}
	a := actual.Seconds()
	j.errs = append(j.errs, math.Abs(w.P50.Seconds()-a)/a)
	j.signed = append(j.signed, (w.P50.Seconds()-a)/a)
	if actual <= w.P25 {
		j.under++
	}
	if actual <= w.P75+refresh/2 { // a poll's granularity
		j.covers++
	}
}

func (j *judged) result() accuracy {
	a := accuracy{n: len(j.errs), unknown: j.unknown}
	if a.n == 0 {
		return a
	}
	slices.Sort(j.errs)
	slices.Sort(j.signed)
	a.medianAbsErr = j.errs[a.n/2]
	a.bias = j.signed[a.n/2]
	a.p25Covers = float64(j.under) / float64(a.n)
	a.p75Covers = float64(j.covers) / float64(a.n)
	return a
}
