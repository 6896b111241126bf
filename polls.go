package waitingroom

import "time"

// polls makes the polls of one ticket one store call per process and refresh: requests
// that carry the same ticket at once wait for the first, and those that come until the
// answer's next poll take its answer. A ticket replayed by many clients (a script, or a
// page open in many tabs) therefore costs the store what one waiter costs, while the
// ticket's own early polls are answered from the ticket as before. Admissions are not
// kept: the next poll of an admitted ticket asks the store.
type polls struct{ answers[polled] }

// polled is what a poll answers.
type polled struct {
	visit Visit
	err   error
}

// maxPolls bounds the answers a room keeps (about a refresh interval of that many waiters'
// polls); past it, polls are not shared until the lapsed answers are swept.
const maxPolls = 65536

// start returns the poll of ticket k at now to wait for, or, when lead is true, a new one
// the caller makes and must finish.
func (ps *polls) start(k renewKey, now time.Time) (*answer[polled], bool) {
	return ps.answers.start(k, now, maxPolls)
}
