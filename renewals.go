package waitingroom

import (
	"sync"
	"time"
)

// answers makes one store call serve many requests with the same key: requests that come
// while it is in flight wait for it, and those that come until its answer lapses take the
// answer. It serves the renewal of a session (renewals) and the poll of a ticket (polls).
// The zero value is ready to use.
type answers[V any] struct {
	mu    sync.Mutex
	m     map[renewKey]*answer[V]
	swept time.Time
}

// answer is one call's answer, ready once done is closed. Its leader sets v before finish.
type answer[V any] struct {
	done  chan struct{}
	over  bool      // done is closed
	until time.Time // the answer stands until then (room clock)
	v     V
}

// start returns the answer for k at now to wait for, or, when lead is true, a new one the
// caller makes and must finish. At most most answers are kept: past it, calls are not
// shared until the lapsed answers are swept (at most once a second).
func (as *answers[V]) start(k renewKey, now time.Time, most int) (a *answer[V], lead bool) {
	as.mu.Lock()
	defer as.mu.Unlock()
	if a := as.m[k]; a != nil {
		if !a.over || now.Before(a.until) {
			return a, false
		}
		delete(as.m, k)
	}
	a = &answer[V]{done: make(chan struct{})}
	if as.m == nil {
		as.m = make(map[renewKey]*answer[V])
	}
	if len(as.m) >= most && now.Sub(as.swept) >= time.Second {
		as.swept = now
		for k, a := range as.m {
			if a.over && !now.Before(a.until) {
				delete(as.m, k)
			}
		}
	}
	if len(as.m) < most {
		as.m[k] = a
	}
	return a, true
}

// finish publishes a's answer, standing until until.
func (as *answers[V]) finish(a *answer[V], until time.Time) {
	as.mu.Lock()
	a.over, a.until = true, until
	as.mu.Unlock()
	close(a.done)
}

// forget drops the answer for k.
func (as *answers[V]) forget(k renewKey) {
	as.mu.Lock()
	delete(as.m, k)
	as.mu.Unlock()
}

// renewals makes the renewal of one session one store call per process: requests that
// carry the same due pass at once (a page and its assets) wait for the first, and those
// that come until the new pass is due take its answer (a client that drops cookies keeps
// sending the old pass). After a failed renewal the session is not renewed again for
// renewRetry, so that during a store outage an admitted visitor does not wait out the
// store's deadline on every request. A released session's answer is forgotten.
type renewals struct{ answers[renewed] }

type renewKey struct{ epoch, session int64 }

// renewal is one renewal's answer.
type renewal = answer[renewed]

// renewed is what a renewal answers.
type renewed struct {
	visit  Visit // Admitted with the new pass, or with the old one and Degraded
	active bool  // false: released, expired or forgotten; each request joins
}

const (
	// maxRenewals bounds the answers a room keeps: about a minute of renewals of that many
	// sessions. Past it, renewals are not shared until the expired answers are swept.
	maxRenewals = 4096
	// renewRetry is how long a failed renewal stands before the store is asked again, at
	// most (never longer than RenewInterval).
	renewRetry = 5 * time.Second
)

// start returns the renewal of k at now to wait for, or, when lead is true, a new one the
// caller makes and must finish.
func (rs *renewals) start(k renewKey, now time.Time) (*renewal, bool) {
	return rs.answers.start(k, now, maxRenewals)
}
