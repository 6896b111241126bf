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

// Pace is what a room's settings say about how fast it lets people in.
type Pace struct {
	// Prior is the throughput the settings promise while people wait, per minute (see
	// Throughput); 0 when they do not say (no typical session given).
	Prior float64
	// Ceiling is the rate limit, which the room never exceeds, per minute; 0: none.
	Ceiling float64
	// Period is how long admissions may bunch: a typical session plus a refresh interval
	// (a room that filled at once frees its places about together). 0: unknown.
	Period time.Duration
}

// Live estimates the rate at which waiters leave the queue into the site, from the store's
// running count of admissions, and turns users ahead into a Wait.
//
// The rate is a time-weighted average of the admissions observed while people waited,
// each minute of it counting exp(-age/τ): admissions over waiting time, both decayed alike.
// τ is Tau or two Periods, whichever is longer, so that the bunching of admissions a
// session apart averages out. Only stretches during which someone waited count, since
// while nobody waits admissions follow arrivals, not the room's limits.
//
// The prior enters as Period's worth of admissions at the promised rate (a gamma prior on
// a Poisson rate). With a prior, the first Period of waiting is not observed: a room that
// just filled up frees no places until its first sessions end, so what is seen then says
// nothing of its pace. Admissions then come in waves about a Period apart, so observations
// count only once they span a whole Period, by degrees over the next one; after that the
// prior fades at the same pace as they do. A room without a prior has no estimate until
// its first admissions while people wait; once known, an estimate never turns unknown.
//
// A Live is safe for concurrent use. The zero value is ready, with Tau 2 minutes.
type Live struct {
	Tau      time.Duration // shortest smoothing time constant; 0 means 2 minutes
	MinBasis time.Duration // waiting time observed before a rate without prior is trusted; 0 means 30 s

	mu       sync.Mutex
	last     time.Time
	total    int64
	waiting  int64
	pace     Pace    // the settings the observations were made under
	n, w     float64 // decayed admissions, and decayed minutes of waiting
	variance float64 // of the observed rate as an estimate: how far it may be off
	drain    float64 // smoothed fall of the waiting count per minute (negative: it grows)
	basis    time.Duration
}

// minGap is the shortest interval that counts as an observation: polls arrive in bursts,
// and a rate over milliseconds is noise.
const minGap = time.Second

// Observe records the store's count of admissions and of live waiters at the store's time
// now, under the settings p. A change of the prior (new limits or an event, in a room that
// has one) starts the learning again from the new prior. Without a prior, what was learned
// stands, capped by the new Ceiling, until the room shows otherwise.
func (l *Live) Observe(now time.Time, admitted, waiting int64, p Pace) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p.Prior != l.pace.Prior {
		l.n, l.w, l.variance, l.drain, l.basis = 0, 0, 0, 0, 0
	}
	l.pace = p
	dt := now.Sub(l.last)
	switch {
	case l.last.IsZero() || admitted < l.total || dt < 0:
		// First observation, or the store started again: start counting from here.
	case dt < minGap:
		return
	case l.waiting > 0 && waiting > 0:
		m, tau := dt.Minutes(), l.tauFor(p).Minutes()
		d := math.Exp(-m / tau)
		inst := float64(admitted-l.total) / m
		a := 1 - d
		if l.basis == 0 {
			a = 1
		}
		if l.w > 0 && l.n > 0 {
			// The smoothed rate averages many noisy intervals: its own variance follows
			// v' = (1-a)²v + a²e², with e the latest interval's deviation.
			e := inst - l.n/l.w
			l.variance = (1-a)*(1-a)*l.variance + a*a*e*e
		}
		// Admissions spread evenly over the interval, decayed as its minutes are.
		if p.Prior == 0 || l.basis >= l.lull(p) {
			l.w = l.w*d + tau*(1-d)
			l.n = l.n*d + inst*tau*(1-d)
		}
		l.drain += a * (float64(l.waiting-waiting)/m - l.drain)
		l.basis += dt
	}
	l.last, l.total, l.waiting = now, admitted, waiting
}

// Rate returns the smoothed admissions per minute observed, and how long a stretch of
// waiting backs it.
func (l *Live) Rate() (perMinute float64, basis time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w == 0 {
		return 0, l.basis
	}
	return l.n / l.w, l.basis
}

// Estimate returns the wait of a visitor with ahead live waiters in front, under the
// settings p. With neither a prior nor any admission observed, the wait is unknown.
func (l *Live) Estimate(ahead int64, p Pace) Wait {
	rate, variance, _, ok := l.rate(p)
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
// picks one of them. With the queue shrinking by D a minute at admission rate μ, the
// waiting count after t minutes is n - Dt and a visitor is still waiting with probability
// (1 - Dt/n)^(μ/D), so its q-th percentile wait is n/D · (1 - (1-q)^(D/μ)): uniform over the
// drain when nobody new comes (D = μ), (n/μ)·ln(1/(1-q)) in a steady queue (D → 0), which
// is also what a growing queue is told, since nobody knows how long the growth lasts.
func (l *Live) EstimateRandom(waiting int64, p Pace) Wait {
	rate, _, drain, ok := l.rate(p)
	if !ok {
		return Unknown("no admissions observed yet")
	}
	n := float64(max(waiting, 1))
	f := min(max(drain/rate, 0), 1)
	q := func(q float64) time.Duration {
		if f < 1e-3 {
			return minutes(n / rate * math.Log(1/(1-q)))
		}
		return minutes(n / (f * rate) * (1 - math.Pow(1-q, f)))
	}
	return Wait{Known: true, P25: q(0.25), P50: q(0.5), P75: q(0.75)}
}

// rate is the admission rate to estimate with under p, its variance and the queue's drain:
// observations and the prior weighed together, capped by the ceiling.
func (l *Live) rate(p Pace) (rate, variance, drain float64, ok bool) {
	l.mu.Lock()
	n, w, v, drain, basis := l.n, l.w, l.variance, l.drain, l.basis
	seen := l.pace
	l.mu.Unlock()
	if p.Prior != seen.Prior {
		n, w, v, drain, basis = 0, 0, 0, 0, 0 // observed under other settings
	}
	switch {
	case p.Prior > 0:
		// Observations start after the first Period (see Observe). Admissions come in waves
		// about a Period apart, and a shorter look can catch one or none: they count once
		// they span a whole Period, by degrees over the next, and then the prior fades.
		t0 := l.lull(p)
		w0 := t0.Minutes()
		if g := float64(basis-2*t0) / float64(t0); g < 1 {
			n, w = n*max(g, 0), w*max(g, 0)
		} else {
			w0 *= math.Exp(-(basis - 3*t0).Minutes() / l.tauFor(p).Minutes())
		}
		rate = (n + p.Prior*w0) / (w + w0)
		f := w / (w + w0) // the observations' share
		variance = f*f*v + (1-f)*(1-f)*(0.25*p.Prior)*(0.25*p.Prior)
	case n > 0:
		rate, variance = n/w, v
		if basis < l.minBasis() {
			f := float64(basis) / float64(l.minBasis())
			variance += (1 - f) * (0.5 * rate) * (0.5 * rate) // a short look: doubt it more
		}
	default:
		return 0, 0, 0, false
	}
	if p.Ceiling > 0 {
		rate = min(rate, p.Ceiling)
	}
	return rate, variance, drain, rate > 0
}

// Steady is the wait to show a visitor who was shown prev elapsed ago and whose wait is
// now estimated next: prev counted down by elapsed, moved halfway toward next. Progress
// comes in waves (the rate window reopens, a cohort's sessions end together), so the count
// ahead falls in steps; halving each step keeps the estimate falling with the clock instead
// of standing still and then leaping. A move of more than half the wait left is news (new
// limits, a requeue) and is shown at once; so is anything when either wait is unknown.
func Steady(prev, next Wait, elapsed time.Duration) Wait {
	if !prev.Known || !next.Known {
		return next
	}
	toward := func(p, n time.Duration) (time.Duration, bool) {
		p = max(p-elapsed, 0)
		if d := n - p; d > p/2 || -d > p/2 {
			return n, false
		}
		return p + (n-p)/2, true
	}
	out := next
	var ok bool
	if out.P50, ok = toward(prev.P50, next.P50); !ok {
		return next
	}
	out.P25, _ = toward(prev.P25, next.P25)
	out.P75, _ = toward(prev.P75, next.P75)
	out.P25, out.P75 = min(out.P25, out.P50), max(out.P75, out.P50)
	return out
}

// Throughput is the most visitors a minute a room lets in while people wait: the rate
// limit (waiters are told to poll as the rate window frees their slots, so it is reached),
// or the capacity turning over once per session plus half a refresh interval (a freed slot
// waits for its next holder's poll). Plan refines this for a crowd.
func Throughput(capacity, perMinute int, session, refresh time.Duration) float64 {
	if capacity < 1 || perMinute < 1 || session <= 0 {
		return 0
	}
	rate := float64(perMinute) / admission.RateWindow.Minutes()
	return math.Min(rate, float64(capacity)/(session+refresh/2).Minutes())
}

// minutes turns m minutes into a Duration, at most MaxWait (a stalled room's rate falls
// toward zero, and its waits toward infinity).
func minutes(m float64) time.Duration {
	if !(m < MaxWait.Minutes()) { // and NaN
		return MaxWait
	}
	return time.Duration(max(m, 0) * float64(time.Minute))
}

// MaxWait is the longest wait an estimate states: ten years, which says "stalled" plainly
// enough and leaves room to add waits without overflow.
const MaxWait = 10 * 365 * 24 * time.Hour

// lull is how long, from the start of waiting, admissions may not yet show the room's pace
// under p: a Period, and at least MinBasis.
func (l *Live) lull(p Pace) time.Duration { return max(p.Period, l.minBasis()) }

// tauFor is the smoothing time constant under p: Tau, or two Periods if longer.
func (l *Live) tauFor(p Pace) time.Duration {
	tau := l.Tau
	if tau <= 0 {
		tau = 2 * time.Minute
	}
	return max(tau, 2*p.Period)
}

func (l *Live) minBasis() time.Duration {
	if l.MinBasis > 0 {
		return l.MinBasis
	}
	return 30 * time.Second
}
