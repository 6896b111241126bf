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
