// Command waitingroom-plan answers "if N people arrive at the opening, how long will they
// wait?" by running the waiting room's own admission rules in simulated time.
//
//	go run ./cmd/waitingroom-plan -arrivals 100000 -total-active 500 -new-per-minute 200 -session 5m
//
// With -target-wait it also recommends the smallest settings that keep every wait within
// the target; -json prints machine-readable output; -svg FILE draws the queue and the wait
// over time.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/waitingroom-go/waitingroom/estimate"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "waitingroom-plan:", err)
		}
		os.Exit(2)
	}
}

// output is the -json document.
type output struct {
	Arrivals            int            `json:"arrivals"`
	TotalActiveUsers    int            `json:"totalActiveUsers"`
	NewUsersPerMinute   int            `json:"newUsersPerMinute"`
	SessionMinutes      float64        `json:"sessionMinutes"`
	ThroughputPerMinute float64        `json:"throughputPerMinute"`
	P50WaitMinutes      float64        `json:"p50WaitMinutes"`
	P95WaitMinutes      float64        `json:"p95WaitMinutes"`
	MaxWaitMinutes      float64        `json:"maxWaitMinutes"`
	DrainMinutes        float64        `json:"drainMinutes"`
	Bottleneck          string         `json:"bottleneck"`
	Admitted            int            `json:"admitted"`
	GaveUp              int            `json:"gaveUp"`
	Fluid               fluidOutput    `json:"closedForm"`
	Recommendation      *recommendJSON `json:"recommendation,omitempty"`
}

type fluidOutput struct {
	ThroughputPerMinute float64 `json:"throughputPerMinute"`
	P50WaitMinutes      float64 `json:"p50WaitMinutes"`
	P95WaitMinutes      float64 `json:"p95WaitMinutes"`
	MaxWaitMinutes      float64 `json:"maxWaitMinutes"`
	DrainMinutes        float64 `json:"drainMinutes"`
}

type recommendJSON struct {
	TargetWaitMinutes float64 `json:"targetWaitMinutes"`
	Feasible          bool    `json:"feasible"`
	NewUsersPerMinute int     `json:"newUsersPerMinute,omitempty"`
	TotalActiveUsers  int     `json:"totalActiveUsers,omitempty"`
	MaxWaitMinutes    float64 `json:"maxWaitMinutes,omitempty"`
	Reason            string  `json:"reason,omitempty"`
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("waitingroom-plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s estimate.Scenario
	fs.IntVar(&s.Arrivals, "arrivals", 0, "visitors who come (required)")
	fs.IntVar(&s.TotalActiveUsers, "total-active", 0, "TotalActiveUsers: visitors on the site at once; with -target-wait, the most the origin can take (required)")
	fs.IntVar(&s.NewUsersPerMinute, "new-per-minute", 0, "NewUsersPerMinute: admissions in any 60 seconds (required unless -target-wait)")
	fs.DurationVar(&s.Session, "session", 5*time.Minute, "how long an admitted visitor stays on the site, on average")
	fs.DurationVar(&s.SessionSpread, "session-spread", 0, "sessions vary uniformly by up to this much either way")
	fs.DurationVar(&s.Spread, "arrival-spread", 0, "arrivals spread evenly over this period (0: all at once)")
	fs.Float64Var(&s.Abandon, "abandon", 0, "share of visitors who give up while waiting (0 to 1)")
	fs.DurationVar(&s.Patience, "patience", 10*time.Minute, "how long those who give up wait first, on average")
	fs.DurationVar(&s.RefreshInterval, "refresh", 20*time.Second, "RefreshInterval of the waiting page")
	fs.Uint64Var(&s.Seed, "seed", 1, "seed for the random draws")
	target := fs.Duration("target-wait", 0, "recommend the smallest settings that keep every wait within this")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	svg := fs.String("svg", "", "write a chart of the queue and the wait over time to this SVG file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags only; see -h)", fs.Arg(0))
	}
	switch {
	case s.Arrivals < 1:
		return errors.New("-arrivals is required (a positive number)")
	case s.TotalActiveUsers < 1:
		return errors.New("-total-active is required (a positive number)")
	case s.NewUsersPerMinute < 1 && *target <= 0:
		return errors.New("-new-per-minute is required (a positive number), or give -target-wait")
	case *target < 0:
		return errors.New("-target-wait must be positive")
	}
	var rec *estimate.Recommendation
	if *target > 0 {
		r, err := estimate.Recommend(s, *target)
		if err != nil {
			return err
		}
		rec = &r
		if s.NewUsersPerMinute < 1 {
			// Plan the recommended settings (or the most the origin takes, if none meet it).
			s.NewUsersPerMinute = max(r.NewUsersPerMinute, s.TotalActiveUsers*boolInt(!r.Feasible))
			if r.Feasible {
				s.TotalActiveUsers = r.TotalActiveUsers
			}
		}
	}
	f, err := estimate.Plan(s)
	if err != nil {
		return err
	}
	if *svg != "" {
		if err := os.WriteFile(*svg, []byte(chart(s, f)), 0o644); err != nil {
			return err
		}
	}
	if *asJSON {
		return writeJSON(stdout, s, f, rec, *target)
	}
	writeTable(stdout, s, f, rec, *target)
	if *svg != "" {
		fmt.Fprintf(stdout, "\nChart written to %s\n", *svg)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func writeTable(w io.Writer, s estimate.Scenario, f estimate.Forecast, rec *estimate.Recommendation, target time.Duration) {
	arrive := "all at once"
	if s.Spread > 0 {
		arrive = "over " + dur(s.Spread)
	}
	fmt.Fprintf(w, "%s visitors arriving %s; %d on the site at once, %d admitted a minute, sessions of %s",
		thousands(s.Arrivals), arrive, s.TotalActiveUsers, s.NewUsersPerMinute, dur(s.Session))
	if s.Abandon > 0 {
		fmt.Fprintf(w, "; %.0f%% give up after about %s", 100*s.Abandon, dur(s.Patience))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\tsimulated\tclosed form\t")
	fmt.Fprintf(tw, "throughput\t%.1f/min\t%.1f/min\t\n", f.Throughput, f.Fluid.Throughput)
	fmt.Fprintf(tw, "median wait\t%s\t%s\t\n", dur(f.WaitP50), dur(f.Fluid.WaitP50))
	fmt.Fprintf(tw, "95th percentile wait\t%s\t%s\t\n", dur(f.WaitP95), dur(f.Fluid.WaitP95))
	fmt.Fprintf(tw, "longest wait\t%s\t%s\t\n", dur(f.WaitMax), dur(f.Fluid.WaitMax))
	fmt.Fprintf(tw, "queue empty after\t%s\t%s\t\n", dur(f.Drain), dur(f.Fluid.Drain))
	tw.Flush()
	fmt.Fprintf(w, "\nbottleneck: %s", f.Bottleneck)
	if f.Bottleneck == "rate" {
		fmt.Fprintf(w, " (raise -new-per-minute to drain faster)\n")
	} else {
		fmt.Fprintf(w, " (more places on the site or shorter sessions drain faster)\n")
	}
	fmt.Fprintf(w, "admitted %d, gave up %d\n", f.Admitted, f.GaveUp)
	if rec != nil {
		fmt.Fprintf(w, "\nto keep every wait within %s:\n", dur(target))
		if rec.Feasible {
			fmt.Fprintf(w, "  NewUsersPerMinute %d, TotalActiveUsers %d (longest wait %s)\n",
				rec.NewUsersPerMinute, rec.TotalActiveUsers, dur(rec.Forecast.WaitMax))
		} else {
			fmt.Fprintf(w, "  no settings can: %s\n", rec.Reason)
		}
	}
}

func writeJSON(w io.Writer, s estimate.Scenario, f estimate.Forecast, rec *estimate.Recommendation, target time.Duration) error {
	out := output{
		Arrivals:            s.Arrivals,
		TotalActiveUsers:    s.TotalActiveUsers,
		NewUsersPerMinute:   s.NewUsersPerMinute,
		SessionMinutes:      s.Session.Minutes(),
		ThroughputPerMinute: round(f.Throughput),
		P50WaitMinutes:      round(f.WaitP50.Minutes()),
		P95WaitMinutes:      round(f.WaitP95.Minutes()),
		MaxWaitMinutes:      round(f.WaitMax.Minutes()),
		DrainMinutes:        round(f.Drain.Minutes()),
		Bottleneck:          f.Bottleneck,
		Admitted:            f.Admitted,
		GaveUp:              f.GaveUp,
		Fluid: fluidOutput{
			ThroughputPerMinute: round(f.Fluid.Throughput),
			P50WaitMinutes:      round(f.Fluid.WaitP50.Minutes()),
			P95WaitMinutes:      round(f.Fluid.WaitP95.Minutes()),
			MaxWaitMinutes:      round(f.Fluid.WaitMax.Minutes()),
			DrainMinutes:        round(f.Fluid.Drain.Minutes()),
		},
	}
	if rec != nil {
		out.Recommendation = &recommendJSON{
			TargetWaitMinutes: target.Minutes(),
			Feasible:          rec.Feasible,
			NewUsersPerMinute: rec.NewUsersPerMinute,
			TotalActiveUsers:  rec.TotalActiveUsers,
			Reason:            rec.Reason,
		}
		if rec.Feasible {
			out.Recommendation.MaxWaitMinutes = round(rec.Forecast.WaitMax.Minutes())
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func round(x float64) float64 { return float64(int64(x*100+0.5)) / 100 }

// dur writes a duration for people: "0s", "45s", "12m", "3h 05m", "2d 4h".
func dur(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Round(time.Minute).Minutes()))
	case d < 48*time.Hour:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	d = d.Round(time.Hour)
	return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
}
