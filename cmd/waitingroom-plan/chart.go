package main

import (
	"fmt"
	"html"
	"math"
	"strings"
	"time"

	"github.com/waitingroom-go/waitingroom/estimate"
)

// chart draws the forecast as an SVG: people waiting (filled, left axis) and the wait of
// those let in at each moment (line, right axis) against time since the opening.
func chart(f estimate.Forecast) string {
	const (
		width, height            = 880, 480
		left, right, top, bottom = 80, 80, 112, 64
		plotW, plotH             = width - left - right, height - top - bottom
	)
	s, series := f.Scenario, f.Series
	end := f.Drain
	if len(series) > 0 {
		end = max(end, series[len(series)-1].At)
	}
	end = max(end, time.Minute)
	unit, unitName := time.Minute, "minutes"
	if end > 3*time.Hour {
		unit, unitName = time.Hour, "hours"
	}
	xMax := float64(end) / float64(unit)
	var qMax, wMax float64
	for _, p := range series {
		qMax = math.Max(qMax, float64(p.Waiting))
		wMax = math.Max(wMax, p.Wait.Minutes())
	}
	waitUnit, waitName := 1.0, "minutes"
	if wMax > 180 {
		waitUnit, waitName = 60, "hours"
		wMax /= 60
	}
	qTicks, qTop := niceTicks(math.Max(qMax, 5)) // whole people: steps of at least 1
	wTicks, wTop := niceTicks(math.Max(wMax, 1))
	xTicks, xTop := niceTicks(xMax)
	x := func(t time.Duration) float64 { return left + float64(t)/float64(unit)/xTop*plotW }
	yq := func(v float64) float64 { return top + plotH - v/qTop*plotH }
	yw := func(v float64) float64 { return top + plotH - v/wTop*plotH }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="system-ui, sans-serif" font-size="13">`+"\n", width, height, width, height)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	arrive := "all at once"
	if s.Spread > 0 {
		arrive = "over " + setting(s.Spread)
	}
	if s.Abandon > 0 {
		arrive += fmt.Sprintf(", %.0f%% giving up", 100*s.Abandon)
	}
	lines := []string{
		fmt.Sprintf("Room: %s on the site at once, %s admitted a minute; sessions of %s; bottleneck: %s.",
			thousands(s.TotalActiveUsers), thousands(s.NewUsersPerMinute), setting(s.Session), f.Bottleneck),
		fmt.Sprintf("Median wait %s, 95th percentile %s, longest %s; the queue is empty after %s.",
			dur(f.WaitP50), dur(f.WaitP95), dur(f.WaitMax), dur(f.Drain)),
	}
	fmt.Fprintf(&b, `<text x="%d" y="26" font-size="16" font-weight="600">%s</text>`+"\n", left,
		html.EscapeString(fmt.Sprintf("How long %s visitors wait (arriving %s)", thousands(s.Arrivals), arrive)))
	for i, l := range lines {
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555">%s</text>`+"\n", left, 48+20*i, html.EscapeString(l))
	}

	// Grid and axes.
	for _, v := range qTicks {
		y := yq(v)
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e5e5e5"/>`+"\n", left, left+plotW, y, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" fill="#2563eb">%s</text>`+"\n", left-8, y+4, count(v))
	}
	for _, v := range wTicks {
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" fill="#b45309">%s</text>`+"\n", left+plotW+8, yw(v)+4, trimFloat(v))
	}
	for _, v := range xTicks {
		px := left + v/xTop*plotW
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#999"/>`+"\n", px, px, top+plotH, top+plotH+5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", px, top+plotH+20, trimFloat(v))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", left, top, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">time since the opening (%s)</text>`+"\n", left+plotW/2, height-18, unitName)
	fmt.Fprintf(&b, `<text transform="translate(22 %d) rotate(-90)" text-anchor="middle" fill="#2563eb">people waiting</text>`+"\n", top+plotH/2)
	fmt.Fprintf(&b, `<text transform="translate(%d %d) rotate(90)" text-anchor="middle" fill="#b45309">wait of those let in (%s)</text>`+"\n", width-20, top+plotH/2, waitName)

	// People waiting, as a filled area.
	if len(series) > 0 {
		var pts strings.Builder
		fmt.Fprintf(&pts, "%.1f,%.1f ", x(series[0].At), yq(0))
		for _, p := range series {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(p.At), yq(float64(p.Waiting)))
		}
		fmt.Fprintf(&pts, "%.1f,%.1f", x(series[len(series)-1].At), yq(0))
		fmt.Fprintf(&b, `<polygon points="%s" fill="#2563eb" fill-opacity="0.25" stroke="#2563eb" stroke-width="1.5"/>`+"\n", pts.String())
	}
	// The wait of those let in, as a line (minutes with nobody let in are skipped).
	var line strings.Builder
	for _, p := range series {
		if p.Wait > 0 {
			fmt.Fprintf(&line, "%.1f,%.1f ", x(p.At), yw(p.Wait.Minutes()/waitUnit))
		}
	}
	if line.Len() > 0 {
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="#b45309" stroke-width="2"/>`+"\n", strings.TrimSpace(line.String()))
	}
	// Legend, on its own row above the plot, where no data can lie under it.
	lx, ly := left, top-14
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="14" height="10" fill="#2563eb" fill-opacity="0.25" stroke="#2563eb"/><text x="%d" y="%d">people waiting</text>`+"\n", lx, ly-9, lx+20, ly)
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="#b45309" stroke-width="2"/><text x="%d" y="%d">wait of those let in then</text>`+"\n", lx+130, lx+144, ly-4, ly-4, lx+150, ly)
	b.WriteString("</svg>\n")
	return b.String()
}

// niceTicks returns round tick values from 0 covering max, and the top of the axis.
func niceTicks(maxV float64) ([]float64, float64) {
	raw := maxV / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	top := math.Ceil(maxV/step) * step
	var ticks []float64
	for v := 0.0; v <= top+step/2; v += step {
		ticks = append(ticks, v)
	}
	return ticks, top
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

// thousands writes n with thousands separators: "1,000,000".
func thousands(n int) string {
	s := fmt.Sprint(n)
	sign := ""
	if n < 0 {
		sign, s = "-", s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return sign + s
}

// count writes an axis label compactly, so that it fits beside the axis: "7,500", "20k",
// "1.5M".
func count(v float64) string {
	switch {
	case v >= 1e6:
		return trimFloat(v/1e6) + "M"
	case v >= 1e4:
		return trimFloat(v/1e3) + "k"
	}
	return thousands(int(v))
}
