package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
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

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-arrivals", "100"},
		{"-arrivals", "100", "-total-active", "10"},
		{"-arrivals", "-1", "-total-active", "10", "-new-per-minute", "5"},
		{"-arrivals", "100", "-total-active", "10", "-new-per-minute", "5", "-abandon", "1.5"},
		{"-arrivals", "100", "-total-active", "10", "-new-per-minute", "5", "-session", "banana"},
		{"-arrivals", "100", "-total-active", "10", "-new-per-minute", "5", "stray"},
		{"-arrivals", "100", "-total-active", "10", "-target-wait", "-5m"},
	} {
		var errOut bytes.Buffer
		if err := run(args, io.Discard, &errOut); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}

// The command shows the settings the plan ran with: zero flags take the planner's defaults,
// and those are what it prints.
func TestShowsSettingsUsed(t *testing.T) {
	base := []string{"-arrivals", "1000", "-total-active", "100", "-new-per-minute", "50"}
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"-session", "0"}, "sessions of 5m,"},
		{[]string{"-patience", "0", "-abandon", "0.5"}, "50% give up after about 10m"},
		{[]string{"-refresh", "0"}, "refresh every 20s"},
		{[]string{"-refresh", "7s", "-session", "90s", "-session-spread", "30s"}, "sessions of 1m30s ± 30s, refresh every 7s"},
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
	if err := run(append(base, "-session", "0", "-refresh", "0", "-json"), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var m struct{ SessionMinutes, RefreshSeconds float64 }
	if err := json.Unmarshal(out.Bytes(), &m); err != nil || m.SessionMinutes != 5 || m.RefreshSeconds != 20 {
		t.Errorf("JSON shows session %v min, refresh %v s (%v); want 5 and 20", m.SessionMinutes, m.RefreshSeconds, err)
	}
}

func TestExitStatus(t *testing.T) {
	base := []string{"-arrivals", "100", "-total-active", "10", "-new-per-minute", "5"}
	for _, tc := range []struct {
		name   string
		args   []string
		status int
		says   string // on stderr, exactly once
	}{
		{"help", []string{"-h"}, 0, "usage: waitingroom-plan"},
		{"plan", base, 0, ""},
		{"unparsable flag", append(base, "-session", "banana"), 2, `invalid value "banana" for flag -session`},
		{"unknown flag", append(base, "-sesion", "5m"), 2, "flag provided but not defined: -sesion"},
		{"refresh beyond the hold", append(base, "-refresh", "10m"), 2, "-refresh must be from 1s to 2m30s"},
		{"too many arrivals", []string{"-arrivals", "2000000000", "-total-active", "10", "-new-per-minute", "5"}, 2, "-arrivals must be at most 10,000,000"},
		{"negative session", append(base, "-session", "-5m"), 2, "-session must be from 1s to 24h"},
		{"spread beyond the default session", append(base, "-session", "0", "-session-spread", "6m"), 2, "-session-spread must be from 0 to -session"},
		{"does not drain", []string{"-arrivals", "100000", "-total-active", "1", "-new-per-minute", "1"}, 1, "does not drain within the planning horizon"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var errOut bytes.Buffer
			if got := cli(tc.args, io.Discard, &errOut); got != tc.status {
				t.Errorf("exit status %d, want %d; stderr:\n%s", got, tc.status, errOut.String())
			}
			if n := strings.Count(errOut.String(), tc.says); tc.says != "" && n != 1 {
				t.Errorf("stderr says %q %d times, want once:\n%s", tc.says, n, errOut.String())
			}
		})
	}
}

// When the queue would not drain within the planning horizon even with every place, the
// command says that no settings can, rather than failing with the horizon.
func TestTargetWaitBeyondHorizon(t *testing.T) {
	args := []string{"-arrivals", "100000", "-total-active", "1", "-target-wait", "1h"}
	var out, errOut bytes.Buffer
	if got := cli(args, &out, &errOut); got != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", got, errOut.String())
	}
	for _, want := range []string{"no settings can", "sessions of 5m0s", "does not empty within 60 days"} {
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
