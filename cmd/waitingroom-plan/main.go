// Command waitingroom-plan answers "if N people arrive at the opening, how long will they
// wait?" by running the waiting room's own admission rules in simulated time.
//
//	go run ./cmd/waitingroom-plan -arrivals 100000 -total-active 500 -new-per-minute 200 -session 5m
//
// With -target-wait it also recommends the smallest settings that keep every wait within
// the target; -json prints machine-readable output; -svg FILE draws the queue and the wait
// over time. Durations are read and written as Go writes them (90s, 5m, 1h30m).
//
// It exits 0 on success and for -h (the usage goes to stdout), 2 for bad input (one line on
// stderr naming the flag), 1 when planning fails.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
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
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "waitingroom-plan:", err)
	var bad badFlags
	if errors.As(err, &bad) || errors.Is(err, estimate.ErrScenario) {
		return 2
	}
	return 1
}

// badFlags is input the planner cannot use, in terms of the flags.
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
	// The flag package would print its error and the whole usage; the caller prints one
	// line instead, and -h prints the usage to stdout.
	fs.SetOutput(io.Discard)
	s := estimate.Scenario{Session: 5 * time.Minute, Patience: 10 * time.Minute, RefreshInterval: 20 * time.Second, Seed: 1}
	var (
		target        time.Duration
		asJSON, above bool
		svg           string
	)
	fs.Var(intFlag{&s.Arrivals}, "arrivals", fmt.Sprintf("visitors who come, a `number` from 1 to %s (required)", thousands(estimate.MaxArrivals)))
	fs.Var(intFlag{&s.TotalActiveUsers}, "total-active", "TotalActiveUsers: visitors on the site at once, a `number`; with -target-wait, the most the origin can take (required)")
	fs.Var(intFlag{&s.NewUsersPerMinute}, "new-per-minute", "NewUsersPerMinute: admissions in any 60 seconds, a `number` up to -total-active (required unless -target-wait)")
	fs.Var(boolFlag{&above}, "allow-rate-above-capacity", "AllowRateAboveCapacity: let -new-per-minute exceed -total-active (sensible when the host releases visitors within a minute)")
	fs.Var(durationFlag{&s.Session}, "session", "how long an admitted visitor stays on the site, on average, a `duration` from 1s to 24h")
	fs.Var(durationFlag{&s.SessionSpread}, "session-spread", "sessions vary uniformly by up to this `duration` either way, at most -session")
	fs.Var(durationFlag{&s.Spread}, "arrival-spread", "arrivals spread evenly over this `duration` (0s: all at once)")
	fs.Var(floatFlag{&s.Abandon}, "abandon", "share of visitors who give up while waiting, a `number` from 0 to 1")
	fs.Var(durationFlag{&s.Patience}, "patience", "how long those who give up wait first, on average, a positive `duration`")
	fs.Var(durationFlag{&s.RefreshInterval}, "refresh", "RefreshInterval of the waiting page, a `duration` from 1s to "+setting(maxRefresh))
	fs.Var(uintFlag{&s.Seed}, "seed", "seed for the random draws, a `number` from 0 up")
	fs.Var(durationFlag{&target}, "target-wait", "recommend the smallest settings that keep every wait within this positive `duration`")
	fs.Var(boolFlag{&asJSON}, "json", "print JSON instead of a table")
	fs.StringVar(&svg, "svg", "", "write a chart of the queue and the wait over time to this SVG `file`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(fs, stdout)
			return nil
		}
		return badf("%v (see -h)", err)
	}
	if fs.NArg() > 0 {
		return badf("unexpected argument %q (flags only; see -h)", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if err := checkFlags(s, target, given, above); err != nil {
		return err
	}
	var rec *estimate.Recommendation
	if given["target-wait"] {
		r, err := estimate.Recommend(s, target)
		if err != nil {
			return err
		}
		rec = &r
		if !given["new-per-minute"] {
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
	if svg != "" {
		if f == nil {
			fmt.Fprintf(stderr, "waitingroom-plan: no chart: %v\n", estimate.ErrTooLong)
		} else if err := os.WriteFile(svg, []byte(chart(*f)), 0o644); err != nil {
			return badf("-svg: %v", err)
		}
	}
	if asJSON {
		return writeJSON(stdout, ran, f, rec, target)
	}
	writeTable(stdout, ran, f, rec, target)
	if svg != "" && f != nil {
		fmt.Fprintf(stdout, "\nChart written to %s\n", svg)
	}
	return nil
}

// usage prints the command's help.
func usage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintln(w, "usage: waitingroom-plan -arrivals N -total-active N -new-per-minute N [flags]")
	fmt.Fprintln(w, "       waitingroom-plan -arrivals N -total-active N -target-wait DURATION [flags]")
	fmt.Fprintln(w, "\nHow long a crowd waits in the waiting room, and what settings keep the wait short.")
	fmt.Fprintln(w, "Durations are written as in Go: 90s, 5m, 1h30m.")
	fmt.Fprintln(w, "\nFlags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// checkFlags says what is wrong with the flags, in their terms, before the planner does.
// given holds the names of the flags on the command line.
func checkFlags(s estimate.Scenario, target time.Duration, given map[string]bool, allowRateAboveCapacity bool) error {
	maxArrivals := thousands(estimate.MaxArrivals)
	switch {
	case !given["arrivals"]:
		return badf("-arrivals is required: how many visitors come, 1 to %s", maxArrivals)
	case s.Arrivals < 1 || s.Arrivals > estimate.MaxArrivals:
		return badf("-arrivals must be from 1 to %s, got %s", maxArrivals, thousands(s.Arrivals))
	case !given["total-active"]:
		return badf("-total-active is required: how many visitors the site takes at once")
	case s.TotalActiveUsers < 1:
		return badf("-total-active must be at least 1, got %d", s.TotalActiveUsers)
	case !given["new-per-minute"] && !given["target-wait"]:
		return badf("-new-per-minute is required (how many are let in a minute), or give -target-wait to be told")
	case given["new-per-minute"] && s.NewUsersPerMinute < 1:
		return badf("-new-per-minute must be at least 1, got %d", s.NewUsersPerMinute)
	case s.NewUsersPerMinute > s.TotalActiveUsers && !allowRateAboveCapacity:
		// As waitingroom.Config refuses it: a likely typo.
		return badf("-new-per-minute (%d) exceeds -total-active (%d), which the room refuses as a likely typo; "+
			"give -allow-rate-above-capacity if sessions end within a minute", s.NewUsersPerMinute, s.TotalActiveUsers)
	case given["target-wait"] && target <= 0:
		return badf("-target-wait must be positive, got %s", setting(target))
	case s.Session < time.Second || s.Session > 24*time.Hour:
		return badf("-session must be from 1s to 24h, got %s", setting(s.Session))
	case s.SessionSpread < 0 || s.SessionSpread > s.Session:
		return badf("-session-spread must be from 0s to -session (%s), got %s", setting(s.Session), setting(s.SessionSpread))
	case s.Spread < 0:
		return badf("-arrival-spread must not be negative, got %s", setting(s.Spread))
	case !(s.Abandon >= 0 && s.Abandon <= 1):
		return badf("-abandon must be a share from 0 to 1, got %v", s.Abandon)
	case s.Patience <= 0:
		return badf("-patience must be positive, got %s", setting(s.Patience))
	case s.RefreshInterval < time.Second || s.RefreshInterval > maxRefresh:
		return badf("-refresh must be from 1s to %s, got %s: the room keeps a waiter's place for %s "+
			"(its QueueHold default) after the last poll, and wants at least two polls in that time",
			setting(maxRefresh), setting(s.RefreshInterval), setting(queueHold))
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
		fmt.Fprintf(w, "admitted %s, gave up %s\n", thousands(f.Admitted), thousands(f.GaveUp))
	}
	if rec != nil {
		fmt.Fprintf(w, "\nto keep every wait within %s:\n", setting(target))
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
	out := fmt.Sprintf("%s visitors arriving %s; %s on the site at once, %s admitted a minute, sessions of %s, refresh every %s",
		thousands(s.Arrivals), arrive, thousands(s.TotalActiveUsers), thousands(s.NewUsersPerMinute), session, setting(s.RefreshInterval))
	if s.Abandon > 0 {
		out += fmt.Sprintf("; %.0f%% give up after about %s", 100*s.Abandon, setting(s.Patience))
	}
	return out
}

// setting writes a duration as Go reads it back, without the zero tails: "5m", "1m30s",
// "20s", "1h", "-5m".
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

// dur writes a forecast's duration as it would be typed, rounded for people: "45s" to the
// second under a minute, "3h5m" to the minute under two days, "150h" to the hour beyond.
func dur(d time.Duration) string {
	switch {
	case d < time.Minute:
		return setting(d.Round(time.Second))
	case d < 48*time.Hour:
		return setting(d.Round(time.Minute))
	}
	return setting(d.Round(time.Hour))
}

// The flags' values: their errors say what the flag wants (the flag package adds its name),
// and durations print as they are typed.
type (
	intFlag      struct{ p *int }
	uintFlag     struct{ p *uint64 }
	floatFlag    struct{ p *float64 }
	boolFlag     struct{ p *bool }
	durationFlag struct{ p *time.Duration }
)

func (f intFlag) String() string {
	if f.p == nil {
		return "0"
	}
	return strconv.Itoa(*f.p)
}

func (f intFlag) Set(s string) error {
	v, err := strconv.ParseInt(s, 10, strconv.IntSize)
	if err != nil {
		return errors.New("want a whole number, such as 500")
	}
	*f.p = int(v)
	return nil
}

func (f uintFlag) String() string {
	if f.p == nil {
		return "0"
	}
	return strconv.FormatUint(*f.p, 10)
}

func (f uintFlag) Set(s string) error {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return errors.New("want a whole number from 0 to 18446744073709551615")
	}
	*f.p = v
	return nil
}

func (f floatFlag) String() string {
	if f.p == nil {
		return "0"
	}
	return strconv.FormatFloat(*f.p, 'g', -1, 64)
}

func (f floatFlag) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return errors.New("want a number, such as 0.1")
	}
	*f.p = v
	return nil
}

func (f boolFlag) String() string { return strconv.FormatBool(f.p != nil && *f.p) }

func (f boolFlag) IsBoolFlag() bool { return true }

func (f boolFlag) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("want true or false")
	}
	*f.p = v
	return nil
}

func (f durationFlag) String() string {
	if f.p == nil {
		return "0s"
	}
	return setting(*f.p)
}

func (f durationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("want a duration such as 90s, 5m or 1h30m")
	}
	*f.p = d
	return nil
}
