package admin

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/waitingroom-go/waitingroom"
)

// The room page's chart: the last hour from Room.History, drawn by the server as inline SVG
// (no script, no image request), with a table of the same minutes as its text alternative.

const chartMinutes = 60

// chartView is the chart as the template draws it: every coordinate is worked out here.
type chartView struct {
	Problem string // no chart, and why
	Summary string // the chart in a sentence: its desc
	W, H    int
	Left    float64 // the plot's left edge
	Right   float64 // and right edge
	TickX   float64 // where the y ticks' labels end
	VTop    float64 // the time grid's top
	VBottom float64 // and bottom
	XLabelY float64 // the baseline of the time labels
	XTitleY float64 // and of the time axis's title
	Panels  []chartPanel
	XTicks  []chartTick
	Minutes []minuteRow // the recorded minutes, oldest first
}

// chartPanel is one of the chart's two plots, on the shared time axis.
type chartPanel struct {
	Title       string
	Class       string
	Top, Bottom float64
	TitleY      float64
	YTicks      []chartTick
	Bars        []chartBar   // admissions: a bar per recorded minute
	Lines       []string     // waiting: a polyline's points per run of consecutive minutes
	Points      []chartPoint // waiting: a point per recorded minute
}

type chartTick struct {
	At     float64
	LabelY float64 // a y tick's label's baseline
	Label  string
}

type chartBar struct {
	X, Y, W, H float64
	Label      string
}

type chartPoint struct {
	X, Y  float64
	Label string
}

// minuteRow is a minute of the table.
type minuteRow struct {
	Start                                                 string
	Joins, Admissions, Abandonments, PeakWaiting, Waiting string
	PeakActive                                            string
	LongestWait, P50Wait                                  string
}

// chart reads room rm's last hour and lays it out; the hour ends at the store's time of
// st (the instance's clock when the counters could not be read).
func (d *dashboard) chart(ctx context.Context, rm *waitingroom.Room, st statsResult) chartView {
	now := d.now()
	if st.err == nil {
		now = st.snap.Now
	}
	ms, err := rm.History(ctx, chartMinutes+1) // the minute under way counts among those asked for
	if err != nil {
		d.h.log.Warn("admin: reading a room's history failed", "room", rm.ID(), "err", err)
		return chartView{Problem: "The room's history could not be read."}
	}
	return layoutChart(ms, now)
}

// layoutChart lays out minutes ms (oldest first) on the hour before now.
func layoutChart(ms []waitingroom.HistoryMinute, now time.Time) chartView {
	const (
		w, h         = 600, 310
		left, right  = 46.0, 580.0
		top1, bottom = 30.0, 122.0  // waiting
		top2, bot2   = 172.0, 264.0 // admitted
	)
	end := now.Truncate(time.Minute)
	start := end.Add(-chartMinutes * time.Minute)
	slot := (right - left) / chartMinutes
	x := func(t time.Time) float64 { return left + t.Sub(start).Minutes()*slot }
	var maxWaiting, maxAdmissions int64
	for _, m := range ms {
		maxWaiting = max(maxWaiting, m.PeakWaiting)
		maxAdmissions = max(maxAdmissions, m.Admissions)
	}
	c := chartView{W: w, H: h, Left: left, Right: right, TickX: left - 6, VTop: top1, VBottom: bot2,
		XLabelY: bot2 + 17, XTitleY: bot2 + 38}
	waiting := chartPanel{Title: "People waiting (the most in each minute)", Class: "waiting", Top: top1, Bottom: bottom, TitleY: top1 - 12}
	admitted := chartPanel{Title: "Admitted per minute", Class: "admitted", Top: top2, Bottom: bot2, TitleY: top2 - 12}
	yw, wTicks := scale(maxWaiting, top1, bottom)
	ya, aTicks := scale(maxAdmissions, top2, bot2)
	waiting.YTicks, admitted.YTicks = wTicks, aTicks
	var run []string
	var prev time.Time
	flush := func() {
		if len(run) > 1 {
			waiting.Lines = append(waiting.Lines, strings.Join(run, " "))
		}
		run = nil
	}
	var peak waitingroom.HistoryMinute
	var total int64
	for _, m := range ms {
		if m.Start.Before(start) || !m.Start.Before(end) {
			continue // outside the hour drawn: the minute under way is not over
		}
		label := m.Start.UTC().Format("15:04")
		cx := x(m.Start) + slot/2
		if !prev.IsZero() && !m.Start.Equal(prev.Add(time.Minute)) {
			flush() // a minute nobody recorded: the line breaks
		}
		prev = m.Start
		py := yw(float64(m.PeakWaiting))
		run = append(run, fmt.Sprintf("%.1f,%.1f", cx, py))
		waiting.Points = append(waiting.Points, chartPoint{X: cx, Y: py, Label: fmt.Sprintf("%s UTC: %s waiting", label, thousands(m.PeakWaiting))})
		by := ya(float64(m.Admissions))
		admitted.Bars = append(admitted.Bars, chartBar{X: x(m.Start) + slot*0.15, Y: by, W: slot * 0.7, H: bot2 - by,
			Label: fmt.Sprintf("%s UTC: %s admitted", label, thousands(m.Admissions))})
		c.Minutes = append(c.Minutes, minuteRow{
			Start: label, Joins: thousands(m.Joins), Admissions: thousands(m.Admissions), Abandonments: thousands(m.Abandonments),
			PeakWaiting: thousands(m.PeakWaiting), Waiting: thousands(m.Waiting), PeakActive: thousands(m.PeakActive),
			LongestWait: clock(m.LongestWait), P50Wait: clock(m.P50Wait),
		})
		if m.PeakWaiting > peak.PeakWaiting {
			peak = m
		}
		total += m.Admissions
	}
	flush()
	c.Panels = []chartPanel{waiting, admitted}
	for i := 0; i <= chartMinutes; i += 10 {
		t := start.Add(time.Duration(i) * time.Minute)
		c.XTicks = append(c.XTicks, chartTick{At: x(t), Label: t.UTC().Format("15:04")})
	}
	from, to := start.UTC().Format("15:04"), end.UTC().Format("15:04")
	switch n := len(c.Minutes); {
	case n == 0:
		c.Summary = fmt.Sprintf("No minute was recorded from %s to %s UTC.", from, to)
	case peak.PeakWaiting == 0:
		c.Summary = fmt.Sprintf("%d minutes recorded from %s to %s UTC: nobody waited; %s admitted in all.", n, from, to, thousands(total))
	default:
		c.Summary = fmt.Sprintf("%d minutes recorded from %s to %s UTC: at most %s waiting, at %s; %s admitted in all, at most %s in a minute.",
			n, from, to, thousands(peak.PeakWaiting), peak.Start.UTC().Format("15:04"), thousands(total), thousands(maxAdmissions))
	}
	return c
}

// scale maps counts from 0 to at least top onto the pixels from bottom up to top, with
// ticks at round numbers.
func scale(most int64, top, bottom float64) (func(float64) float64, []chartTick) {
	step := niceStep(float64(max(most, 4)) / 4)
	hi := math.Ceil(float64(max(most, 1))/step) * step
	y := func(v float64) float64 { return bottom - v/hi*(bottom-top) }
	var ticks []chartTick
	for v := 0.0; v <= hi+step/2; v += step {
		ticks = append(ticks, chartTick{At: y(v), LabelY: y(v) + 4, Label: thousands(int64(v))})
	}
	return y, ticks
}

// niceStep is the round number (1, 2 or 5 times a power of ten, at least 1) nearest above d.
func niceStep(d float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(d)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= d {
			return max(1, m*p)
		}
	}
	return max(1, 10*p)
}

// chartFragment answers GET /dashboard/rooms/{id}/chart: the chart alone, for the page's
// script to swap in.
func (d *dashboard) chartFragment(w http.ResponseWriter, r *http.Request, cred *credential) {
	rm, ok := d.roomOf(w, r, nil)
	if !ok {
		return
	}
	c := d.chart(r.Context(), rm, d.h.snapshot(r.Context(), rm))
	var b strings.Builder
	if err := pages["room"].ExecuteTemplate(&b, "chart", c); err != nil {
		d.h.log.Error("admin: rendering a chart failed", "err", err)
		http.Error(w, "the chart could not be drawn", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
}
