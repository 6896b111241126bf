package waitingroom

import (
	"sync"
	"time"
)

// renewals makes the renewal of one session one store call per process: requests that
// carry the same due pass at once (a page and its assets) wait for the first, and those
// that come until the new pass is due take its answer (a client that drops cookies keeps
// sending the old pass). After a failed renewal the session is not renewed again for
// renewRetry, so that during a store outage an admitted visitor does not wait out the
// store's deadline on every request.
type renewals struct {
	mu    sync.Mutex
	m     map[renewKey]*renewal
	swept time.Time
}

type renewKey struct{ epoch, session int64 }

// renewal is one renewal's answer, ready once done is closed.
type renewal struct {
	done   chan struct{}
	over   bool      // done is closed
	until  time.Time // the answer stands until then (room clock)
	visit  Visit     // Admitted with the new pass, or with the old one and Degraded
	active bool      // false: released, expired or forgotten; each request joins
}

const (
	// maxRenewals bounds the answers a room keeps: about a minute of renewals of that many
	// sessions. Past it, renewals are not shared until the expired answers are swept.
	maxRenewals = 4096
	// renewRetry is how long a failed renewal stands before the store is asked again.
	renewRetry = 5 * time.Second
)

// start returns the renewal of k at now to wait for, or, when lead is true, a new one the
// caller makes and must finish.
func (rs *renewals) start(k renewKey, now time.Time) (c *renewal, lead bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if c := rs.m[k]; c != nil {
		if !c.over || now.Before(c.until) {
			return c, false
		}
		delete(rs.m, k)
	}
	c = &renewal{done: make(chan struct{})}
	if rs.m == nil {
		rs.m = make(map[renewKey]*renewal)
	}
	if len(rs.m) >= maxRenewals && now.Sub(rs.swept) >= time.Second {
		rs.swept = now
		for k, c := range rs.m {
			if c.over && !now.Before(c.until) {
				delete(rs.m, k)
			}
		}
	}
	if len(rs.m) < maxRenewals {
		rs.m[k] = c
	}
	return c, true
}

// finish publishes c's answer, standing until until.
func (rs *renewals) finish(c *renewal, until time.Time) {
	rs.mu.Lock()
	c.over, c.until = true, until
	rs.mu.Unlock()
	close(c.done)
}

// forget drops the answer for k: its session was released.
func (rs *renewals) forget(k renewKey) {
	rs.mu.Lock()
	delete(rs.m, k)
	rs.mu.Unlock()
}
