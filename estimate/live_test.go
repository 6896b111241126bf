package estimate

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

func TestFormat(t *testing.T) {
	tests := []struct {
		w    Wait
		want string
	}{
		{Unknown("queue all"), "unavailable"},
		{Wait{Known: true, P25: 10 * time.Minute, P50: 10 * time.Minute, P75: 10 * time.Minute}, "10 minutes"},
		{Wait{Known: true, P25: 30 * time.Second, P50: 50 * time.Second, P75: 59 * time.Second}, "1 minute"},
		{Wait{Known: true, P25: 4*time.Minute + time.Second, P50: 9 * time.Minute, P75: 15 * time.Minute}, "5 minutes to 15 minutes"},
	}
	for _, tt := range tests {
		if got := tt.w.Format(); got != tt.want {
			t.Errorf("%+v.Format() = %q, want %q", tt.w, got, tt.want)
		}
	}
	if Minutes(0) != 0 || Minutes(time.Nanosecond) != 1 || Minutes(time.Minute) != 1 || Minutes(61*time.Second) != 2 {
		t.Error("Minutes does not round up to whole minutes")
	}
}

// observeSteady feeds a queue of 100 waiting, admitting perMinute, polled every 20 s, for d.
func observeSteady(l *Live, from time.Time, total int64, perMinute float64, d time.Duration, p Pace) (time.Time, int64) {
	for now := from; now.Before(from.Add(d)); now = now.Add(20 * time.Second) {
		l.Observe(now, total, 100, p)
		total += int64(perMinute / 3)
	}
	return from.Add(d), total
}

func TestLiveLearnsTheRate(t *testing.T) {
	var l Live
	observeSteady(&l, t0, 0, 30, 10*time.Minute, Pace{})
	rate, basis := l.Rate()
	if math.Abs(rate-30) > 0.5 || basis < 9*time.Minute {
		t.Fatalf("rate %.2f/min over %v, want 30/min over about 10 min", rate, basis)
	}
	w := l.Estimate(149, Pace{Ceiling: 100}) // 150 to go at 30/min: 5 minutes
	if !w.Known || w.P50 < 4*time.Minute+50*time.Second || w.P50 > 5*time.Minute+10*time.Second {
		t.Fatalf("P50 %v, want about 5m", w.P50)
	}
	if !(w.P25 < w.P50 && w.P50 < w.P75) {
		t.Fatalf("percentiles out of order: %+v", w)
	}
	if w.P75-w.P25 > w.P50/2 {
		t.Errorf("range %v..%v too wide for a steady queue", w.P25, w.P75)
	}
}

func TestLiveSteadyBetweenPolls(t *testing.T) {
	// In a steady queue, each poll 20 s later should show about 20 s less, not jump.
	var l Live
	p := Pace{Prior: 30, Ceiling: 100}
	now, total := observeSteady(&l, t0, 0, 30, 5*time.Minute, p)
	ahead := int64(300)
	prev := l.Estimate(ahead, p).P50
	for range 30 {
		now, total = observeSteady(&l, now, total, 30, 20*time.Second, p)
		ahead -= 10
		p := l.Estimate(ahead, p).P50
		if d := prev - p; d < 10*time.Second || d > 30*time.Second {
			t.Fatalf("estimate moved by %v between polls 20 s apart", d)
		}
		prev = p
	}
}

func TestLiveIgnoresIdleStretches(t *testing.T) {
	var l Live
	// Nobody waiting: admissions follow arrivals and say nothing about the room's pace.
	for i := range 10 {
		l.Observe(t0.Add(time.Duration(i)*20*time.Second), int64(i*100), 0, Pace{})
	}
	if rate, basis := l.Rate(); rate != 0 || basis != 0 {
		t.Fatalf("learned %.1f/min over %v from an idle room", rate, basis)
	}
}

func TestLivePriorAndCeiling(t *testing.T) {
	var l Live
	w := l.Estimate(59, Pace{Prior: 20, Ceiling: 100}) // nothing observed: the prior of 20/min
	if !w.Known || w.P50 != 3*time.Minute {
		t.Fatalf("from the prior: %+v, want P50 3m", w)
	}
	if w := l.Estimate(10, Pace{}); w.Known || w.Reason == "" {
		t.Fatalf("no prior and no observation should be unknown with a reason: %+v", w)
	}
	observeSteady(&l, t0, 0, 300, 5*time.Minute, Pace{})
	if w := l.Estimate(99, Pace{Ceiling: 50}); w.P50 != 2*time.Minute {
		t.Fatalf("rate above the ceiling of 50/min: P50 %v, want 2m", w.P50)
	}
}

// TestLiveAfterTheRoomFills plays the stretch after a burst: the room filled at once, so
// for most of a session nobody goes in, then a cohort's sessions end together. The prior
// holds the estimate through the lull, and it never turns unknown.
func TestLiveAfterTheRoomFills(t *testing.T) {
	p := Pace{Prior: 23, Ceiling: 50, Period: 2*time.Minute + 20*time.Second} // 50 places, sessions of 2 min
	var l Live
	total := int64(0)
	for s := 0; s <= 1200; s += 20 {
		if s >= 100 && (s-100)%140 < 60 {
			total += 17 // a cohort of 51 leaves over a minute every 2m20s (sessions of 2m±30s)
		}
		l.Observe(t0.Add(time.Duration(s)*time.Second), total, 1000, p)
		w := l.Estimate(999, p)
		if !w.Known {
			t.Fatalf("at %ds: unknown (%s)", s, w.Reason)
		}
		// 1,000 ahead at 22-23 a minute: about 45 minutes.
		if got := w.P50.Minutes(); got < 45*0.8 || got > 45*1.2 {
			t.Fatalf("at %ds: %.1f minutes, want about 45 from a rate of 22-23/min", s, got)
		}
	}
}

func TestLivePriorFadesAndChangesRestart(t *testing.T) {
	var l Live
	p := Pace{Prior: 60, Ceiling: 100, Period: time.Minute}
	// The room goes at 30 a minute, not the 60 the settings promise: after long enough the
	// observations win.
	observeSteady(&l, t0, 0, 30, 30*time.Minute, p)
	if w := l.Estimate(299, p); math.Abs(w.P50.Minutes()-10) > 0.5 {
		t.Fatalf("P50 %v after 30 minutes at 30/min, want about 10m", w.P50)
	}
	// New limits: the prior again, until the room shows otherwise.
	q := Pace{Prior: 120, Ceiling: 200, Period: time.Minute}
	if w := l.Estimate(599, q); w.P50 != 5*time.Minute {
		t.Fatalf("P50 %v under new limits, want 5m from the new prior", w.P50)
	}
}

func TestLiveStoreRestart(t *testing.T) {
	var l Live
	now, _ := observeSteady(&l, t0, 1000, 30, 5*time.Minute, Pace{})
	l.Observe(now, 0, 100, Pace{}) // the store forgot its counters
	l.Observe(now.Add(20*time.Second), 10, 100, Pace{})
	if rate, _ := l.Rate(); math.Abs(rate-30) > 1 {
		t.Fatalf("rate %.1f after a store restart, want it kept near 30", rate)
	}
}

func TestEstimateRandom(t *testing.T) {
	var l Live
	observeSteady(&l, t0, 0, 30, 10*time.Minute, Pace{}) // the waiting count holds: steady
	w := l.EstimateRandom(300, Pace{})                   // 300 waiting, 30 a minute: 10 minutes per "lifetime"
	if !w.Known {
		t.Fatalf("unknown: %s", w.Reason)
	}
	for _, c := range []struct {
		got  time.Duration
		want float64 // minutes: 10 · ln(1/(1-q))
	}{{w.P25, 10 * math.Log(4.0/3)}, {w.P50, 10 * math.Ln2}, {w.P75, 10 * math.Log(4)}} {
		if math.Abs(c.got.Minutes()-c.want) > 0.2 {
			t.Errorf("percentile %v, want %.2f minutes", c.got, c.want)
		}
	}
	if var0 := (Live{}); var0.EstimateRandom(10, Pace{}).Known {
		t.Error("no basis and no prior: the random wait should be unknown")
	}
}

func TestEstimateRandomDraining(t *testing.T) {
	// Nobody new arrives: the queue shrinks by the 30 admitted each minute, and a waiter's
	// turn is uniform over the 10 minutes the 300 take.
	var l Live
	waiting, total := int64(600), int64(0)
	for now := t0; now.Before(t0.Add(10 * time.Minute)); now = now.Add(20 * time.Second) {
		l.Observe(now, total, waiting, Pace{})
		total += 10
		waiting -= 10
	}
	w := l.EstimateRandom(300, Pace{})
	for _, c := range []struct {
		got  time.Duration
		want float64
	}{{w.P25, 2.5}, {w.P50, 5}, {w.P75, 7.5}} {
		if math.Abs(c.got.Minutes()-c.want) > 0.3 {
			t.Errorf("percentile %v, want %.1f minutes", c.got, c.want)
		}
	}
}

func TestSteady(t *testing.T) {
	m := func(f float64) time.Duration { return time.Duration(f * float64(time.Minute)) }
	wait := func(p25, p50, p75 float64) Wait { return Wait{Known: true, P25: m(p25), P50: m(p50), P75: m(p75)} }
	for _, tc := range []struct {
		name       string
		prev, next Wait
		elapsed    time.Duration
		want       Wait
	}{
		{"on course", wait(8, 10, 12), wait(7.5, 9.5, 11.5), 30 * time.Second, wait(7.5, 9.5, 11.5)},
		{"a step ahead: halfway", wait(8, 10, 12), wait(7.5, 9, 11.5), 30 * time.Second, wait(7.5, 9.25, 11.5)},
		{"stood still: halfway", wait(8, 10, 12), wait(8, 10, 12), time.Minute, wait(7.5, 9.5, 11.5)},
		{"news: at once", wait(8, 10, 12), wait(3, 4, 5), 30 * time.Second, wait(3, 4, 5)},
		{"was unknown", Unknown("x"), wait(3, 4, 5), time.Minute, wait(3, 4, 5)},
		{"now unknown", wait(8, 10, 12), Unknown("queue all"), time.Minute, Unknown("queue all")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Steady(tc.prev, tc.next, tc.elapsed); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
