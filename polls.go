package waitingroom

import (
	"sync"
	"time"
)

// polls makes the polls of one ticket one store call per process and refresh: requests
// that carry the same ticket at once wait for the first, and those that come until the
// answer's next poll take its answer. A ticket replayed by many clients (a script, or a
// page open in many tabs) therefore costs the store what one waiter costs, while the
// ticket's own early polls are answered from the ticket as before. Admissions are not
// kept: the next poll of an admitted ticket asks the store.
type polls struct {
	mu    sync.Mutex
	m     map[renewKey]*pollAnswer
	swept time.Time
}

// pollAnswer is one poll's answer, ready once done is closed.
type pollAnswer struct {
	done  chan struct{}
	over  bool
	until time.Time // the answer stands until then (room clock)
	visit Visit
	err   error
}

// maxPolls bounds the answers a room keeps (about a refresh interval of that many waiters'
// polls); past it, polls are not shared until the lapsed answers are swept.
const maxPolls = 65536

// start returns the answer for ticket k at now to wait for, or, when lead is true, a new
// one the caller makes and must finish.
func (ps *polls) start(k renewKey, now time.Time) (a *pollAnswer, lead bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if a := ps.m[k]; a != nil {
		if !a.over || now.Before(a.until) {
			return a, false
		}
		delete(ps.m, k)
	}
	a = &pollAnswer{done: make(chan struct{})}
	if ps.m == nil {
		ps.m = make(map[renewKey]*pollAnswer)
	}
	if len(ps.m) >= maxPolls && now.Sub(ps.swept) >= time.Second {
		ps.swept = now
		for k, a := range ps.m {
			if a.over && !now.Before(a.until) {
				delete(ps.m, k)
			}
		}
	}
	if len(ps.m) < maxPolls {
		ps.m[k] = a
	}
	return a, true
}

// finish publishes a's answer, standing until until (now: for those waiting on it only).
func (ps *polls) finish(a *pollAnswer, v Visit, err error, until time.Time) {
	ps.mu.Lock()
	a.over, a.until, a.visit, a.err = true, until, v, err
	ps.mu.Unlock()
	close(a.done)
}
