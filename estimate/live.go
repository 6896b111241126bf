// Package estimate turns what a room observes into waits people can trust: the live estimate
// shown to each waiting visitor.
package estimate

import (
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/waitingroom-go/waitingroom/admission"
)

// Wait is an estimated wait with its 25th, 50th and 75th percentiles.
type Wait struct {
	Known         bool
	Reason        string // why the wait is unknown; empty when Known
	P25, P50, P75 time.Duration
}

// Unknown returns a Wait that is not known, for the given reason.
func Unknown(reason string) Wait { return Wait{Reason: reason} }

// Minutes rounds d up to whole minutes, as the hosted rooms' JSON fields count them.
func Minutes(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Minute - 1) / time.Minute)
}

// Format writes the wait as the hosted rooms do: "10 minutes", "5 minutes to 15 minutes",
// or "unavailable".
func (w Wait) Format() string {
	if !w.Known {
		return "unavailable"
	}
	lo, hi := Minutes(w.P25), Minutes(w.P75)
	if lo == hi {
		return plural(lo)
	}
	return plural(lo) + " to " + plural(hi)
}

func plural(n int64) string {
	if n == 1 {
		return "1 minute"
	}
	return fmt.Sprintf("%d minutes", n)
}

// Live estimates the rate at which waiters leave the queue into the site, from the store's
// running count of admissions, and turns users ahead into a Wait.
//
// The rate is an exponentially weighted moving average of the admissions observed while
// people waited, with time constant Tau: an observation dt after the last moves the average
// by 1-exp(-dt/Tau) of the difference. Only stretches during which someone waited count,
// since while nobody waits admissions follow arrivals, not the room's limits. Until a
// stretch of at least MinBasis has been observed the estimate leans on the prior, the
// throughput the limits allow.
//
// A Live is safe for concurrent use. The zero value is ready, with Tau 2 minutes.
type Live struct {
	Tau      time.Duration // smoothing time constant; 0 means 2 minutes
	MinBasis time.Duration // observed time needed before the rate is trusted; 0 means 30 s

	mu       sync.Mutex
	last     time.Time
	total    int64
	waiting  bool
	rate     float64 // admissions per minute
	variance float64 // of the smoothed rate as an estimate: how far it may be off
	basis    time.Duration
}

// minGap is the shortest interval that counts as an observation: polls arrive in bursts,
// and a rate over milliseconds is noise.
const minGap = time.Second

// Observe records the store's count of admissions at the store's time now, and whether
// anyone was waiting.
func (l *Live) Observe(now time.Time, admitted int64, waiting bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	dt := now.Sub(l.last)
	switch {
	case l.last.IsZero() || admitted < l.total || dt < 0:
		// First observation, or the store started again: start counting from here.
	case dt < minGap:
		return
	case l.waiting && waiting:
		inst := float64(admitted-l.total) / dt.Minutes()
		a := 1 - math.Exp(-float64(dt)/float64(l.tau()))
		if l.basis == 0 {
			a = 1
		}
		d := inst - l.rate
		l.rate += a * d
		// The smoothed rate averages many noisy intervals: its own variance follows
		// v' = (1-a)²v + a²d², with d the latest interval's deviation.
		l.variance = (1-a)*(1-a)*l.variance + a*a*d*d
		l.basis += dt
	}
	l.last, l.total, l.waiting = now, admitted, waiting
}

// Rate returns the smoothed admissions per minute and how long a stretch backs it.
func (l *Live) Rate() (perMinute float64, basis time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rate, l.basis
}

// Estimate returns the wait of a visitor with ahead live waiters in front. prior is the
// throughput the room's settings promise (see Throughput), used while little has been
// observed, 0 if the settings do not say; ceiling is the rate limit, which the room never
// exceeds (0: none). With neither a prior nor anything observed, the wait is unknown.
func (l *Live) Estimate(ahead int64, prior, ceiling float64) Wait {
	rate, variance, ok := l.pace(prior, ceiling)
	if !ok {
		return Unknown("no admissions observed yet")
	}
	k := float64(ahead + 1) // everyone ahead, then this visitor
	mean := k / rate
	// Spread: the count of admissions in a stretch varies like a Poisson count (1/k), and the
	// rate itself is uncertain (variance/rate²).
	rel := math.Sqrt(1/k + variance/(rate*rate))
	const z = 0.6745 // quartiles of a normal distribution
	lo := mean * max(1-z*rel, 0.5)
	hi := mean * (1 + z*rel)
	return Wait{Known: true, P25: minutes(lo), P50: minutes(mean), P75: minutes(hi)}
}

// EstimateRandom is the wait in a Random queue of waiting live visitors: each admission
// picks one of them, so a visitor is still waiting after k admissions with probability
// about (1-1/waiting)^k, and its q-th percentile wait is (waiting/rate)·ln(1/(1-q)).
func (l *Live) EstimateRandom(waiting int64, prior, ceiling float64) Wait {
	rate, _, ok := l.pace(prior, ceiling)
	if !ok {
		return Unknown("no admissions observed yet")
	}
	n := float64(max(waiting, 1))
	q := func(p float64) time.Duration { return minutes(n / rate * math.Log(1/(1-p))) }
	return Wait{Known: true, P25: q(0.25), P50: q(0.5), P75: q(0.75)}
}

// pace is the admission rate to estimate with, and its variance: the smoothed rate, leaning
// on the prior while little has been observed, capped by the ceiling.
func (l *Live) pace(prior, ceiling float64) (rate, variance float64, ok bool) {
	l.mu.Lock()
	rate, variance, basis := l.rate, l.variance, l.basis
	l.mu.Unlock()
	if basis < l.minBasis() {
		f := float64(basis) / float64(l.minBasis())
		switch {
		case prior > 0:
			// Lean on the prior while the basis is thin, and doubt it by a quarter.
			rate = f*rate + (1-f)*prior
			variance = f*variance + (1-f)*(0.25*prior)*(0.25*prior)
		case basis > 0 && rate > 0:
			variance += (1 - f) * (0.5 * rate) * (0.5 * rate) // a short look: doubt it more
		default:
			return 0, 0, false
		}
	}
	if ceiling > 0 {
		rate = min(rate, ceiling)
	}
	return rate, variance, rate > 0
}

// Throughput is the most visitors a minute a room lets in while people wait: the rate
// limit, reached over 61 s (the 61 one-second slots of the window), or the capacity
// turning over once per session plus half a refresh interval (a freed slot waits for its
// next holder's poll). Plan refines this for a crowd that polls in step.
func Throughput(capacity, perMinute int, session, refresh time.Duration) float64 {
	if capacity < 1 || perMinute < 1 || session <= 0 {
		return 0
	}
	rate := float64(perMinute) * 60 / admission.WindowSlots
	return math.Min(rate, float64(capacity)/(session+refresh/2).Minutes())
}

func minutes(m float64) time.Duration { return time.Duration(m * float64(time.Minute)) }

func (l *Live) tau() time.Duration {
	if l.Tau > 0 {
		return l.Tau
	}
	return 2 * time.Minute
}

func (l *Live) minBasis() time.Duration {
	if l.MinBasis > 0 {
		return l.MinBasis
	}
	return 30 * time.Second
}
