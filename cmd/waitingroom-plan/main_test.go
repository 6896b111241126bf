package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestTable(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run([]string{"-arrivals", "10000", "-total-active", "500", "-new-per-minute", "200", "-session", "5m"}, &out, &errOut)
	if err != nil {
		t.Fatal(err, errOut.String())
	}
	for _, want := range []string{"throughput", "median wait", "95th percentile wait", "longest wait", "queue empty after", "bottleneck: capacity/session"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestJSON(t *testing.T) {
	var out bytes.Buffer
	err := run([]string{"-arrivals", "10000", "-total-active", "1000", "-new-per-minute", "100", "-session", "5m", "-json"}, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	for _, k := range []string{"throughputPerMinute", "p50WaitMinutes", "p95WaitMinutes", "maxWaitMinutes", "drainMinutes"} {
		if v, ok := m[k].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", k, m[k])
		}
	}
	if m["bottleneck"] != "rate" {
		t.Errorf("bottleneck = %v, want rate (100/min against 1000 places over 5 min)", m["bottleneck"])
	}
	// 10,000 people at 100 a minute (reached over 61 s, in waves after the burst): about 100
	// minutes for the last.
	if v := m["maxWaitMinutes"].(float64); v < 95 || v > 135 {
		t.Errorf("maxWaitMinutes = %v, want about 100 to 130", v)
	}
}

func TestTargetWait(t *testing.T) {
	var out bytes.Buffer
	err := run([]string{"-arrivals", "10000", "-total-active", "2000", "-session", "5m", "-target-wait", "1h", "-json"}, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Recommendation struct {
			Feasible          bool
			NewUsersPerMinute int
			TotalActiveUsers  int
			MaxWaitMinutes    float64
		}
	}
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	r := m.Recommendation
	if !r.Feasible || r.NewUsersPerMinute < 1 || r.TotalActiveUsers > 2000 || r.MaxWaitMinutes > 60 {
		t.Fatalf("recommendation %+v", r)
	}
	out.Reset()
	run([]string{"-arrivals", "100000", "-total-active", "100", "-session", "5m", "-target-wait", "1h"}, &out, io.Discard)
	if !strings.Contains(out.String(), "no settings can") {
		t.Fatalf("an impossible target is not reported:\n%s", out.String())
	}
}

func TestSVG(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plan.svg")
	var out bytes.Buffer
	if err := run([]string{"-arrivals", "40000", "-total-active", "500", "-new-per-minute", "200", "-abandon", "0.1", "-svg", file}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		XMLName xml.Name
		Texts   []string `xml:"text"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil || doc.XMLName.Local != "svg" {
		t.Fatalf("not an SVG document: %v", err)
	}
	all := strings.Join(doc.Texts, "|")
	for _, want := range []string{"people waiting", "wait of those let in (hours)", "time since the opening (hours)"} {
		if !strings.Contains(all, want) {
			t.Errorf("chart lacks the label %q", want)
		}
	}
	if !strings.Contains(string(b), "<polygon") || !strings.Contains(string(b), "<polyline") {
		t.Error("chart lacks the queue area or the wait line")
	}
}

// The command shows the settings the plan ran with: flags left out take the planner's
// defaults, and those are what it prints, as they are typed.
func TestShowsSettingsUsed(t *testing.T) {
	base := []string{"-arrivals", "1000", "-total-active", "100", "-new-per-minute", "50"}
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{nil, "sessions of 5m, refresh every 20s"},
		{[]string{"-abandon", "0.5"}, "50% give up after about 10m"},
		{[]string{"-refresh", "7s", "-session", "90s", "-session-spread", "30s"}, "sessions of 1m30s ± 30s, refresh every 7s"},
		{[]string{"-session", "2h0m0s", "-arrival-spread", "1h30m"}, "arriving over 1h30m; 100 on the site at once, 50 admitted a minute, sessions of 2h,"},
	} {
		var out bytes.Buffer
		if err := run(append(base, tc.flags...), &out, io.Discard); err != nil {
			t.Fatalf("%q: %v", tc.flags, err)
		}
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("%q: output lacks %q:\n%s", tc.flags, tc.want, out.String())
		}
	}
	var out bytes.Buffer
	if err := run(append(base, "-json"), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var m struct{ SessionMinutes, RefreshSeconds float64 }
	if err := json.Unmarshal(out.Bytes(), &m); err != nil || m.SessionMinutes != 5 || m.RefreshSeconds != 20 {
		t.Errorf("JSON shows session %v min, refresh %v s (%v); want 5 and 20", m.SessionMinutes, m.RefreshSeconds, err)
	}
}

// Every duration the command writes reads back as a flag's value would: the table's
// figures, the recommendation and its reason, and the defaults in -h.
func TestDurationsAsTyped(t *testing.T) {
	var out bytes.Buffer
	args := []string{"-arrivals", "100000", "-total-active", "500", "-new-per-minute", "200", "-abandon", "0.1", "-target-wait", "30m"}
	if got := cli(args, &out, io.Discard); got != 0 {
		t.Fatalf("exit status %d", got)
	}
	if err := cli([]string{"-h"}, &out, io.Discard); err != 0 {
		t.Fatalf("-h: exit status %d", err)
	}
	text := out.String()
	for _, tail := range []string{"m0s", "h0m", "(default 5m0s)"} {
		if strings.Contains(text, tail) {
			t.Errorf("output writes a duration with %q:\n%s", tail, text)
		}
	}
	for _, want := range []string{"to keep every wait within 30m:", "sessions of 5m)", "over the 30m target", "(default 5m)", "(default 20s)"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	rows := 0
	for _, line := range strings.Split(text, "\n") {
		for _, row := range []string{"median wait", "95th percentile wait", "longest wait", "queue empty after"} {
			f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), row))
			if !strings.HasPrefix(strings.TrimSpace(line), row) || len(f) != 2 {
				continue
			}
			rows++
			for _, d := range f {
				if _, err := time.ParseDuration(d); err != nil {
					t.Errorf("%s: %q is not a duration one could type: %v", row, d, err)
				}
			}
		}
	}
	if rows != 4 {
		t.Errorf("found %d of the table's 4 duration rows:\n%s", rows, text)
	}
}

func TestDur(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{1499 * time.Millisecond, "1s"},
		{59 * time.Second, "59s"},
		{12*time.Minute + 20*time.Second, "12m"},
		{time.Hour, "1h"},
		{3*time.Hour + 5*time.Minute, "3h5m"},
		{47*time.Hour + 59*time.Minute, "47h59m"},
		{150*time.Hour + 20*time.Minute, "150h"},
	} {
		if got := dur(tc.d); got != tc.want {
			t.Errorf("dur(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// Bad input gets one line on stderr naming the flag, and exit status 2; -h gets the usage
// on stdout and 0.
func TestExitStatus(t *testing.T) {
	base := []string{"-arrivals", "100", "-total-active", "10", "-new-per-minute", "5"}
	with := func(args ...string) []string { return append(slices.Clip(base), args...) }
	for _, tc := range []struct {
		name   string
		args   []string
		status int
		says   string // the one line on stderr, after "waitingroom-plan: "
	}{
		{"plan", base, 0, ""},
		{"no flags", nil, 2, "-arrivals is required"},
		{"negative arrivals", []string{"-arrivals", "-5", "-total-active", "10", "-new-per-minute", "5"}, 2, "-arrivals must be from 1 to 10,000,000, got -5"},
		{"no arrivals", []string{"-arrivals", "0", "-total-active", "10", "-new-per-minute", "5"}, 2, "-arrivals must be from 1 to 10,000,000, got 0"},
		{"too many arrivals", []string{"-arrivals", "2000000000", "-total-active", "10", "-new-per-minute", "5"}, 2, "-arrivals must be from 1 to 10,000,000, got 2,000,000,000"},
		{"arrivals not a number", []string{"-arrivals", "1e6"}, 2, `invalid value "1e6" for flag -arrivals: want a whole number`},
		{"arrivals beyond an int", []string{"-arrivals", "99999999999999999999"}, 2, `invalid value "99999999999999999999" for flag -arrivals`},
		{"no capacity", []string{"-arrivals", "100"}, 2, "-total-active is required"},
		{"zero capacity", []string{"-arrivals", "100", "-total-active", "0", "-new-per-minute", "5"}, 2, "-total-active must be at least 1, got 0"},
		{"no rate", []string{"-arrivals", "100", "-total-active", "10"}, 2, "-new-per-minute is required"},
		{"negative rate", []string{"-arrivals", "100", "-total-active", "10", "-new-per-minute", "-1"}, 2, "-new-per-minute must be at least 1, got -1"},
		{"rate above capacity", []string{"-arrivals", "100", "-total-active", "10", "-new-per-minute", "50"}, 2, "-new-per-minute (50) exceeds -total-active (10)"},
		{"rate above capacity, allowed", []string{"-arrivals", "100", "-total-active", "10", "-new-per-minute", "50", "-allow-rate-above-capacity", "-session", "30s"}, 0, ""},
		{"zero session", with("-session", "0s"), 2, "-session must be from 1s to 24h, got 0s"},
		{"negative session", with("-session", "-5m"), 2, "-session must be from 1s to 24h, got -5m"},
		{"session beyond a day", with("-session", "25h"), 2, "-session must be from 1s to 24h, got 25h"},
		{"session without a unit", with("-session", "5"), 2, `invalid value "5" for flag -session: want a duration such as 90s, 5m or 1h30m`},
		{"unparsable session", with("-session", "banana"), 2, `invalid value "banana" for flag -session`},
		{"spread beyond the session", with("-session-spread", "6m"), 2, "-session-spread must be from 0s to -session (5m), got 6m"},
		{"negative arrival spread", with("-arrival-spread", "-1m"), 2, "-arrival-spread must not be negative, got -1m"},
		{"abandon beyond one", with("-abandon", "1.5"), 2, "-abandon must be a share from 0 to 1, got 1.5"},
		{"abandon not a number", with("-abandon", "NaN"), 2, `invalid value "NaN" for flag -abandon: want a number`},
		{"zero patience", with("-patience", "0s"), 2, "-patience must be positive, got 0s"},
		{"zero refresh", with("-refresh", "0s"), 2, "-refresh must be from 1s to 2m30s, got 0s"},
		{"refresh beyond the hold", with("-refresh", "10m"), 2, "-refresh must be from 1s to 2m30s, got 10m"},
		{"negative seed", with("-seed", "-1"), 2, `invalid value "-1" for flag -seed`},
		{"zero target", []string{"-arrivals", "100", "-total-active", "10", "-target-wait", "0s"}, 2, "-target-wait must be positive, got 0s"},
		{"negative target", []string{"-arrivals", "100", "-total-active", "10", "-target-wait", "-5m"}, 2, "-target-wait must be positive, got -5m"},
		{"json not a boolean", with("-json=maybe"), 2, `invalid boolean value "maybe" for -json: want true or false`},
		{"unknown flag", with("-sesion", "5m"), 2, "flag provided but not defined: -sesion"},
		{"flag without its value", []string{"-arrivals"}, 2, "flag needs an argument: -arrivals"},
		{"stray argument", with("stray"), 2, `unexpected argument "stray"`},
		{"chart into no directory", with("-svg", filepath.Join(t.TempDir(), "none", "plan.svg")), 2, "-svg: open "},
		{"does not drain", []string{"-arrivals", "100000", "-total-active", "1", "-new-per-minute", "1"}, 1, "does not drain within the planning horizon"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if got := cli(tc.args, &out, &errOut); got != tc.status {
				t.Errorf("exit status %d, want %d; stderr:\n%s", got, tc.status, errOut.String())
			}
			if tc.says == "" {
				if errOut.Len() != 0 {
					t.Errorf("stderr:\n%s", errOut.String())
				}
				return
			}
			line, ok := strings.CutPrefix(errOut.String(), "waitingroom-plan: ")
			if !ok || strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") || !strings.Contains(line, tc.says) {
				t.Errorf("stderr is not one line saying %q:\n%s", tc.says, errOut.String())
			}
			if out.Len() != 0 && tc.status == 2 {
				t.Errorf("bad input, yet stdout:\n%s", out.String())
			}
		})
	}
	t.Run("help", func(t *testing.T) {
		for _, h := range []string{"-h", "-help", "--help"} {
			var out, errOut bytes.Buffer
			if got := cli(append(slices.Clip(base), h), &out, &errOut); got != 0 || errOut.Len() != 0 {
				t.Errorf("%s: exit status %d, stderr %q; want 0 and nothing", h, got, errOut.String())
			}
			for _, want := range []string{"usage: waitingroom-plan", "-allow-rate-above-capacity", "-arrivals number"} {
				if !strings.Contains(out.String(), want) {
					t.Errorf("%s: usage lacks %q:\n%s", h, want, out.String())
				}
			}
		}
	})
}

// When the queue would not drain within the planning horizon even with every place, the
// command says that no settings can, rather than failing with the horizon.
func TestTargetWaitBeyondHorizon(t *testing.T) {
	args := []string{"-arrivals", "100000", "-total-active", "1", "-target-wait", "1h"}
	var out, errOut bytes.Buffer
	if got := cli(args, &out, &errOut); got != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", got, errOut.String())
	}
	for _, want := range []string{"no settings can", "sessions of 5m)", "does not empty within 60 days"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if got := cli(append(args, "-json"), &out, &errOut); got != 0 {
		t.Fatalf("-json: exit status %d; stderr:\n%s", got, errOut.String())
	}
	var m struct {
		PlanError      string
		Recommendation struct {
			Feasible bool
			Reason   string
		}
	}
	if err := json.Unmarshal(out.Bytes(), &m); err != nil || m.PlanError == "" || m.Recommendation.Feasible || m.Recommendation.Reason == "" {
		t.Errorf("-json: %+v, %v:\n%s", m, err, out.String())
	}
}

// No two labels of the chart overlap, all lie on it, and an axis never repeats a label,
// however large or small the crowd, the limits and the durations: text widths are estimated at 0.55 em a character (0.6 em in
// bold), a little wider than the system sans-serif fonts draw them.
func TestChartLabelsDoNotCollide(t *testing.T) {
	for _, args := range [][]string{
		{"-arrivals", "1000000", "-total-active", "500", "-new-per-minute", "200"},
		{"-arrivals", "1000000", "-total-active", "500", "-new-per-minute", "200", "-arrival-spread", "1m", "-abandon", "0.1"},
		{"-arrivals", "10", "-total-active", "1", "-new-per-minute", "1", "-session", "1s"},
		{"-arrivals", "9999", "-total-active", "10000", "-new-per-minute", "10000", "-session", "23h59m", "-session-spread", "23h59m",
			"-arrival-spread", "23h59m59s", "-abandon", "0.15", "-patience", "23h59m59s"},
		{"-arrivals", "50000", "-total-active", "50", "-new-per-minute", "50", "-session", "30m", "-abandon", "0.5"},
	} {
		file := filepath.Join(t.TempDir(), "plan.svg")
		if err := run(append(args, "-svg", file), io.Discard, io.Discard); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		width, height, labels := svgLabels(t, b)
		for i, a := range labels {
			if a.x0 < 0 || a.y0 < 0 || a.x1 > width || a.y1 > height {
				t.Errorf("%q: %q lies off the %gx%g chart: %+v", args, a.text, width, height, a)
			}
			for _, b := range labels[i+1:] {
				if a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1 {
					t.Errorf("%q: %q and %q overlap", args, a.text, b.text)
				}
				if a.column != "" && a.column == b.column && a.text == b.text {
					t.Errorf("%q: %q twice in one column", args, a.text)
				}
			}
		}
	}
}

// label is a text of a chart and the box it takes.
type label struct {
	text           string
	x0, y0, x1, y1 float64
	column         string // the anchor and x of labels set one under another, such as an axis's
}

// svgLabels reads the size of an SVG chart and the boxes of its texts, as chart writes them:
// x and y with a text-anchor, or a transform that turns them by 90 degrees about their middle.
func svgLabels(t *testing.T, svg []byte) (width, height float64, labels []label) {
	t.Helper()
	num := func(s string) float64 {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("%q in the SVG is not a number", s)
		}
		return f
	}
	d := xml.NewDecoder(bytes.NewReader(svg))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return width, height, labels
		}
		if err != nil {
			t.Fatal(err)
		}
		el, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		attr := map[string]string{"font-size": "13", "text-anchor": "start"}
		for _, a := range el.Attr {
			attr[a.Name.Local] = a.Value
		}
		switch el.Name.Local {
		case "svg":
			width, height = num(attr["width"]), num(attr["height"])
			continue
		case "text":
		default:
			continue
		}
		var text string
		if err := d.DecodeElement(&text, &el); err != nil {
			t.Fatal(err)
		}
		size := num(attr["font-size"])
		em := 0.55
		if attr["font-weight"] != "" {
			em = 0.6
		}
		long := em * size * float64(len([]rune(text)))
		if tr := attr["transform"]; tr != "" {
			var x, y, deg float64
			if _, err := fmt.Sscanf(tr, "translate(%g %g) rotate(%g)", &x, &y, &deg); err != nil || (deg != 90 && deg != -90) || attr["text-anchor"] != "middle" {
				t.Fatalf("transform %q of %q: chart writes no such label", tr, text)
			}
			labels = append(labels, label{text, x - size/2, y - long/2, x + size/2, y + long/2, ""})
			continue
		}
		column := attr["text-anchor"] + " " + attr["x"]
		x, y := num(attr["x"]), num(attr["y"])
		switch attr["text-anchor"] {
		case "middle":
			x -= long / 2
		case "end":
			x -= long
		}
		labels = append(labels, label{text, x, y - 0.8*size, x + long, y + 0.2*size, column})
	}
}
