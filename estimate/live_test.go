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

// observeSteady feeds a queue admitting perMinute, polled every 20 s, for d.
func observeSteady(l *Live, from time.Time, total int64, perMinute float64, d time.Duration) (time.Time, int64) {
	for now := from; now.Before(from.Add(d)); now = now.Add(20 * time.Second) {
		l.Observe(now, total, true)
		total += int64(perMinute / 3)
	}
	return from.Add(d), total
}

func TestLiveLearnsTheRate(t *testing.T) {
	var l Live
	observeSteady(&l, t0, 0, 30, 10*time.Minute)
	rate, basis := l.Rate()
	if math.Abs(rate-30) > 0.5 || basis < 9*time.Minute {
		t.Fatalf("rate %.2f/min over %v, want 30/min over about 10 min", rate, basis)
	}
	w := l.Estimate(149, 10, 100) // 150 to go at 30/min: 5 minutes
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
	now, total := observeSteady(&l, t0, 0, 30, 5*time.Minute)
	ahead := int64(300)
	prev := l.Estimate(ahead, 30, 100).P50
	for range 30 {
		now, total = observeSteady(&l, now, total, 30, 20*time.Second)
		ahead -= 10
		p := l.Estimate(ahead, 30, 100).P50
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
		l.Observe(t0.Add(time.Duration(i)*20*time.Second), int64(i*100), false)
	}
	if rate, basis := l.Rate(); rate != 0 || basis != 0 {
		t.Fatalf("learned %.1f/min over %v from an idle room", rate, basis)
	}
}

func TestLivePriorAndCeiling(t *testing.T) {
	var l Live
	w := l.Estimate(59, 20, 100) // nothing observed: the prior of 20/min
	if !w.Known || w.P50 != 3*time.Minute {
		t.Fatalf("from the prior: %+v, want P50 3m", w)
	}
	if w := l.Estimate(10, 0, 0); w.Known || w.Reason == "" {
		t.Fatalf("no prior and no observation should be unknown with a reason: %+v", w)
	}
	observeSteady(&l, t0, 0, 300, 5*time.Minute)
	if w := l.Estimate(99, 20, 50); w.P50 != 2*time.Minute {
		t.Fatalf("rate above the ceiling of 50/min: P50 %v, want 2m", w.P50)
	}
}

func TestLiveStoreRestart(t *testing.T) {
	var l Live
	now, _ := observeSteady(&l, t0, 1000, 30, 5*time.Minute)
	l.Observe(now, 0, true) // the store forgot its counters
	l.Observe(now.Add(20*time.Second), 10, true)
	if rate, _ := l.Rate(); math.Abs(rate-30) > 1 {
		t.Fatalf("rate %.1f after a store restart, want it kept near 30", rate)
	}
}

func TestEstimateRandom(t *testing.T) {
	var l Live
	observeSteady(&l, t0, 0, 30, 10*time.Minute)
	w := l.EstimateRandom(300, 0, 0) // 300 waiting, 30 a minute: 10 minutes per "lifetime"
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
	if var0 := (Live{}); var0.EstimateRandom(10, 0, 0).Known {
		t.Error("no basis and no prior: the random wait should be unknown")
	}
}
