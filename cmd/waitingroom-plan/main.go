// Command waitingroom-plan answers "if N people arrive at the opening, how long will they
// wait?" by running the waiting room's own admission rules in simulated time.
//
//	go run ./cmd/waitingroom-plan -arrivals 100000 -total-active 500 -new-per-minute 200 -session 5m
//
// With -target-wait it also recommends the smallest settings that keep every wait within
// the target; -json prints machine-readable output; -svg FILE draws the queue and the wait
// over time. It exits 0 on success (and for -h), 2 for bad flags, 1 when planning fails.
package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/waitingroom-go/waitingroom/estimate"
)

func main() {
	os.Exit(cli(os.Args[1:], os.Stdout, os.Stderr))
}

// cli runs the command and returns its exit status.
func cli(args []string, stdout, stderr io.Writer) int {
	err := run(args, stdout, stderr)
	var parse parseError
	var bad badFlags
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &parse):
		return 2 // the flag package has said what is wrong, and shown the usage
	case errors.As(err, &bad) || errors.Is(err, estimate.ErrScenario):
		fmt.Fprintln(stderr, "waitingroom-plan:", err)
		return 2
	}
	fmt.Fprintln(stderr, "waitingroom-plan:", err)
	return 1
}

// parseError is a flag the flag package could not parse; it has printed the error.
type parseError struct{ error }

// badFlags is a flag value the planner cannot use, in terms of the flags.
type badFlags string

func (e badFlags) Error() string { return string(e) }

func badf(format string, args ...any) error { return badFlags(fmt.Sprintf(format, args...)) }

// The room's defaults the command does not let one change, which bound -refresh.
const (
	queueHold  = 5 * time.Minute // waitingroom.Config.QueueHold's default
	maxRefresh = queueHold / 2   // the room wants QueueHold at least twice RefreshInterval
)

// output is the -json document. The forecast's figures are left out when the queue does
// not drain within the planning horizon (see planError).
type output struct {
	Arrivals             int     `json:"arrivals"`
	ArrivalSpreadMinutes float64 `json:"arrivalSpreadMinutes"`
	TotalActiveUsers     int     `json:"totalActiveUsers"`
	NewUsersPerMinute    int     `json:"newUsersPerMinute"`
	SessionMinutes       float64 `json:"sessionMinutes"`
	RefreshSeconds       float64 `json:"refreshSeconds"`
	Abandon              float64 `json:"abandon"`
	PatienceMinutes      float64 `json:"patienceMinutes"`
	*forecastJSON
	PlanError      string         `json:"planError,omitempty"`
	Recommendation *recommendJSON `json:"recommendation,omitempty"`
}

type forecastJSON struct {
	ThroughputPerMinute float64     `json:"throughputPerMinute"`
	P50WaitMinutes      float64     `json:"p50WaitMinutes"`
	P95WaitMinutes      float64     `json:"p95WaitMinutes"`
	MaxWaitMinutes      float64     `json:"maxWaitMinutes"`
	DrainMinutes        float64     `json:"drainMinutes"`
	Bottleneck          string      `json:"bottleneck"`
	Admitted            int         `json:"admitted"`
	GaveUp              int         `json:"gaveUp"`
	Fluid               fluidOutput `json:"closedForm"`
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
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: waitingroom-plan -arrivals N -total-active N -new-per-minute N [flags]")
		fmt.Fprintln(fs.Output(), "       waitingroom-plan -arrivals N -total-active N -target-wait DURATION [flags]")
		fmt.Fprintln(fs.Output(), "\nHow long a crowd waits in the waiting room, and what settings keep the wait short.")
		fmt.Fprintln(fs.Output(), "Flags:")
		fs.PrintDefaults()
	}
	var s estimate.Scenario
	fs.IntVar(&s.Arrivals, "arrivals", 0, fmt.Sprintf("visitors who come, 1 to %s (required)", thousands(estimate.MaxArrivals)))
	fs.IntVar(&s.TotalActiveUsers, "total-active", 0, "TotalActiveUsers: visitors on the site at once; with -target-wait, the most the origin can take (required)")
	fs.IntVar(&s.NewUsersPerMinute, "new-per-minute", 0, "NewUsersPerMinute: admissions in any 60 seconds (required unless -target-wait)")
	fs.DurationVar(&s.Session, "session", 5*time.Minute, "how long an admitted visitor stays on the site, on average, 1s to 24h; 0 means the default")
	fs.DurationVar(&s.SessionSpread, "session-spread", 0, "sessions vary uniformly by up to this much either way, at most -session")
	fs.DurationVar(&s.Spread, "arrival-spread", 0, "arrivals spread evenly over this period (0: all at once)")
	fs.Float64Var(&s.Abandon, "abandon", 0, "share of visitors who give up while waiting (0 to 1)")
	fs.DurationVar(&s.Patience, "patience", 10*time.Minute, "how long those who give up wait first, on average; 0 means the default")
	fs.DurationVar(&s.RefreshInterval, "refresh", 20*time.Second, "RefreshInterval of the waiting page, 1s to "+maxRefresh.String()+"; 0 means the default")
	fs.Uint64Var(&s.Seed, "seed", 1, "seed for the random draws")
	target := fs.Duration("target-wait", 0, "recommend the smallest settings that keep every wait within this")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	svg := fs.String("svg", "", "write a chart of the queue and the wait over time to this SVG file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return parseError{err}
	}
	if fs.NArg() > 0 {
		return badf("unexpected argument %q (flags only; see -h)", fs.Arg(0))
	}
	if err := checkFlags(s, *target); err != nil {
		return err
	}
	var rec *estimate.Recommendation
	if *target > 0 {
		r, err := estimate.Recommend(s, *target)
		if err != nil {
			return err
		}
		rec = &r
		if s.NewUsersPerMinute < 1 {
			// Plan the recommended settings, or the most the origin takes if none meet it.
			s.NewUsersPerMinute = s.TotalActiveUsers
			if r.Feasible {
				s.NewUsersPerMinute, s.TotalActiveUsers = r.NewUsersPerMinute, r.TotalActiveUsers
			}
		}
	}
	ran, err := s.WithDefaults() // what Plan runs: what the output shows
	if err != nil {
		return err
	}
	var f *estimate.Forecast
	switch plan, err := estimate.Plan(s); {
	case err == nil:
		f = &plan
	case errors.Is(err, estimate.ErrTooLong) && rec != nil:
		// No forecast to show; the recommendation says why.
	default:
		return err
	}
	if *svg != "" {
		if f == nil {
			fmt.Fprintf(stderr, "waitingroom-plan: no chart: %v\n", estimate.ErrTooLong)
		} else if err := os.WriteFile(*svg, []byte(chart(*f)), 0o644); err != nil {
			return err
		}
	}
	if *asJSON {
		return writeJSON(stdout, ran, f, rec, *target)
	}
	writeTable(stdout, ran, f, rec, *target)
	if *svg != "" && f != nil {
		fmt.Fprintf(stdout, "\nChart written to %s\n", *svg)
	}
	return nil
}

// checkFlags says what is wrong with the flags, in their terms, before the planner does.
func checkFlags(s estimate.Scenario, target time.Duration) error {
	switch {
	case s.Arrivals < 1:
		return badf("-arrivals is required (a positive number)")
	case s.Arrivals > estimate.MaxArrivals:
		return badf("-arrivals must be at most %s, got %s", thousands(estimate.MaxArrivals), thousands(s.Arrivals))
	case s.TotalActiveUsers < 1:
		return badf("-total-active is required (a positive number)")
	case s.NewUsersPerMinute < 1 && target <= 0:
		return badf("-new-per-minute is required (a positive number), or give -target-wait")
	case target < 0:
		return badf("-target-wait must be positive, got %v", target)
	case s.Session != 0 && (s.Session < time.Second || s.Session > 24*time.Hour):
		return badf("-session must be from 1s to 24h, got %v", s.Session)
	case s.SessionSpread < 0 || s.SessionSpread > cmp.Or(s.Session, 5*time.Minute):
		return badf("-session-spread must be from 0 to -session, got %v", s.SessionSpread)
	case s.Spread < 0:
		return badf("-arrival-spread must not be negative, got %v", s.Spread)
	case !(s.Abandon >= 0 && s.Abandon <= 1):
		return badf("-abandon must be a share from 0 to 1, got %v", s.Abandon)
	case s.Patience < 0:
		return badf("-patience must not be negative, got %v", s.Patience)
	case s.RefreshInterval != 0 && (s.RefreshInterval < time.Second || s.RefreshInterval > maxRefresh):
		return badf("-refresh must be from 1s to %v, got %v: the room keeps a waiter's place for %v "+
			"(its QueueHold default) after the last poll, and wants at least two polls in that time",
			maxRefresh, s.RefreshInterval, queueHold)
	}
	return nil
}

// writeTable writes the scenario s as planned, its forecast f (nil if the queue does not
// drain within the planning horizon) and the recommendation, if any.
func writeTable(w io.Writer, s estimate.Scenario, f *estimate.Forecast, rec *estimate.Recommendation, target time.Duration) {
	fmt.Fprintln(w, describe(s))
	fmt.Fprintln(w)
	if f == nil {
		fmt.Fprintf(w, "the queue does not empty within %d days (the planning horizon)\n", estimate.MaxHorizon/(24*time.Hour))
	} else {
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
	}
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

// describe is the scenario in a sentence.
func describe(s estimate.Scenario) string {
	arrive := "all at once"
	if s.Spread > 0 {
		arrive = "over " + setting(s.Spread)
	}
	session := setting(s.Session)
	if s.SessionSpread > 0 {
		session += " ± " + setting(s.SessionSpread)
	}
	out := fmt.Sprintf("%s visitors arriving %s; %d on the site at once, %d admitted a minute, sessions of %s, refresh every %s",
		thousands(s.Arrivals), arrive, s.TotalActiveUsers, s.NewUsersPerMinute, session, setting(s.RefreshInterval))
	if s.Abandon > 0 {
		out += fmt.Sprintf("; %.0f%% give up after about %s", 100*s.Abandon, setting(s.Patience))
	}
	return out
}

// setting writes a duration someone chose, exactly as Go reads it back but without the
// zero tails: "5m", "1m30s", "20s", "1h".
func setting(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func writeJSON(w io.Writer, s estimate.Scenario, f *estimate.Forecast, rec *estimate.Recommendation, target time.Duration) error {
	out := output{
		Arrivals:             s.Arrivals,
		ArrivalSpreadMinutes: round(s.Spread.Minutes()),
		TotalActiveUsers:     s.TotalActiveUsers,
		NewUsersPerMinute:    s.NewUsersPerMinute,
		SessionMinutes:       round(s.Session.Minutes()),
		RefreshSeconds:       round(s.RefreshInterval.Seconds()),
		Abandon:              s.Abandon,
		PatienceMinutes:      round(s.Patience.Minutes()),
	}
	if f == nil {
		out.PlanError = estimate.ErrTooLong.Error()
	} else {
		out.forecastJSON = &forecastJSON{
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
