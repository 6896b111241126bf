package admin

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/estimate"
)

// The planner's forecast of the queue under the settings of the form.

// maxSimulated is the largest queue the forecast simulates (estimate.Plan, under 0.2 s on
// a small VM at typical limits); longer ones take the closed form (estimate.FluidPlan),
// exact for this scenario when the room's waves repeat (see estimate.Fluid) and close
// otherwise, at no cost whatever the length.
var maxSimulated = 20_000

// forecastView is what the settings would do to the queue now.
type forecastView struct {
	Problem string // no forecast, and why
	Field   string // the setting that is wrong, for the JSON

	Waiting, Active     int64
	Capacity, Rate      int
	Session             time.Duration
	SessionFrom         string
	Simulated, TooLong  bool
	Drain, P50, Max     time.Duration
	Throughput          float64
	Bottleneck          string
	Suspended, QueueAll bool
	Limit               int // maxSimulated
}

// Full reports whether the sessions active now fill the capacity planned.
func (f forecastView) Full() bool { return f.Waiting > 0 && f.Active >= int64(f.Capacity) }

// forecast runs the planner on the room's queue now under cfg's limits. It counts those
// waiting now (not who comes next), all there from the start and none giving up; each
// admitted visitor stays cfg's TypicalSession, or its SessionDuration when that is not
// set. The places start free: the sessions active now are not in the plan (the page says
// so, and how much later that can make it).
func (d *dashboard) forecast(ctx context.Context, cfg waitingroom.Config, st statsResult) forecastView {
	f := forecastView{Capacity: cfg.TotalActiveUsers, Rate: cfg.NewUsersPerMinute,
		Suspended: cfg.Suspended, QueueAll: cfg.QueueAll, Session: cfg.TypicalSession, SessionFrom: "typical stay",
		Limit: maxSimulated}
	if f.Session <= 0 {
		f.Session, f.SessionFrom = cfg.SessionDuration, "session"
	}
	if st.err != nil {
		f.Problem = "No forecast: the room's counters could not be read."
		return f
	}
	f.Waiting, f.Active = st.snap.Waiting, st.snap.Active
	if f.Waiting == 0 {
		return f
	}
	s, err := estimate.Scenario{
		Arrivals: int(min(f.Waiting, estimate.MaxArrivals)), Session: f.Session,
		TotalActiveUsers: cfg.TotalActiveUsers, NewUsersPerMinute: cfg.NewUsersPerMinute,
		RefreshInterval: cfg.RefreshInterval, QueueHold: cfg.QueueHold, ArrivalGrace: cfg.ArrivalGrace,
	}.WithDefaults()
	if err != nil { // the settings were validated: a gap between the two checks
		d.h.log.Warn("admin: forecast failed", "err", err)
		f.Problem = "No forecast for these settings."
		return f
	}
	f.Session = s.Session // a session left at 0 is the default, as the plan takes it
	if f.Waiting > int64(maxSimulated) {
		fl := estimate.FluidPlan(s)
		f.Drain, f.P50, f.Max, f.Throughput = fl.Drain, fl.WaitP50, fl.WaitMax, fl.Throughput
		f.TooLong = fl.Drain > estimate.MaxHorizon
		return f
	}
	select {
	case d.plans <- struct{}{}:
		defer func() { <-d.plans }()
	case <-ctx.Done():
		f.Problem = "No forecast: the request ended first."
		return f
	}
	p, err := estimate.Plan(s)
	f.Simulated = true
	switch {
	case errors.Is(err, estimate.ErrTooLong):
		f.TooLong = true
	case err != nil:
		d.h.log.Warn("admin: forecast failed", "err", err)
		f.Problem = "No forecast for these settings."
	default:
		f.Drain, f.P50, f.Max, f.Throughput, f.Bottleneck = p.Drain, p.WaitP50, p.WaitMax, p.Throughput, p.Bottleneck
	}
	return f
}

// forecastJSON answers GET /dashboard/rooms/{id}/forecast?total_active_users=...: the
// forecast of the settings in the query (the others as they are) as JSON, with the HTML
// the page shows; 422 naming the field for an invalid value.
func (d *dashboard) forecastJSON(w http.ResponseWriter, r *http.Request, cred *credential) {
	rm, ok := d.roomOf(w, r, nil)
	if !ok {
		return
	}
	q := r.URL.Query()
	q.Del("version")
	form := d.formFrom(rm, q)
	var f forecastView
	status := http.StatusOK
	if form.invalid() {
		status = http.StatusUnprocessableEntity
		for _, x := range form.Fields {
			if x.Problem != "" {
				f.Field, f.Problem = x.Name, x.Label+": "+x.Problem
				break
			}
		}
		if f.Problem == "" {
			f.Problem = form.Problem
		}
	} else {
		f = d.forecast(r.Context(), *form.cfg, d.h.snapshot(r.Context(), rm))
	}
	var html strings.Builder
	if err := pages["room"].ExecuteTemplate(&html, "forecast", f); err != nil {
		d.h.log.Error("admin: rendering a forecast failed", "err", err)
	}
	type out struct {
		Waiting    int64     `json:"waiting"`
		Active     int64     `json:"active"`
		Method     string    `json:"method,omitempty"` // "simulation" (estimate.Plan) or "closed form" (estimate.FluidPlan)
		DrainSecs  float64   `json:"drain_seconds"`
		P50Secs    float64   `json:"wait_p50_seconds"`
		MaxSecs    float64   `json:"wait_max_seconds"`
		PerMinute  float64   `json:"throughput_per_minute"`
		Bottleneck string    `json:"bottleneck,omitempty"`
		TooLong    bool      `json:"too_long,omitempty"`
		Error      *apiError `json:"error,omitempty"`
		HTML       string    `json:"html"`
	}
	o := out{Waiting: f.Waiting, Active: f.Active, DrainSecs: f.Drain.Seconds(), P50Secs: f.P50.Seconds(),
		MaxSecs: f.Max.Seconds(), PerMinute: f.Throughput, Bottleneck: f.Bottleneck, TooLong: f.TooLong, HTML: html.String()}
	switch {
	case f.Problem != "":
		o.Error = &apiError{Code: "invalid_settings", Field: f.Field, Message: f.Problem}
		if status == http.StatusOK {
			o.Error.Code = "no_forecast"
		}
	case f.Waiting == 0:
	case f.Simulated:
		o.Method = "simulation"
	default:
		o.Method = "closed form"
	}
	writeJSON(w, status, o)
}
