package admin

import "time"

// SetDashboardClock sets the clock of h's dashboard sessions and login limiter.
func SetDashboardClock(h *Handler, now func() time.Time) { h.dash.now = now }

// DashboardSessions is how many sessions h's dashboard keeps.
func DashboardSessions(h *Handler) int { return h.dash.sessions.len() }

// SetMaxSimulated sets the largest queue the forecast simulates, until the test ends.
func SetMaxSimulated(n int) (restore func()) {
	old := maxSimulated
	maxSimulated = n
	return func() { maxSimulated = old }
}

const (
	MaxSessions = maxSessions
	SessionIdle = sessionIdle
	LoginBurst  = loginBurst
	LoginEvery  = loginEvery
	MaxLimiters = maxLimiters
)
