package middleware

import (
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/token"
)

// A pass is a bearer token: whoever holds it is admitted, and copies share one session. Two
// defences, both opt-in: binding (a pass works only for the client it was issued to) and
// sharing detection (a pass seen from many clients at once is counted, reported, and
// optionally limited).

// WithPassBinding ties each visitor's ticket and pass to key(r) (waitingroom.BindTo): a
// value that stays the same for one client and differs between clients. A token used by
// another client is not valid there: that client queues as anyone new, so a pass handed to
// a thousand clients admits one. Choose the value with its cost in mind: a client address
// changes when a phone moves between networks (its visitor then queues again), a device
// cookie set by the site does not. Default: none.
func WithPassBinding(key func(*http.Request) string) Option {
	return func(m *handler) error { m.bind = key; return nil }
}

// PassSharing counts passes used by several clients at once (see WithPassSharing).
type PassSharing struct {
	// Client names a request's client. Default: its address, an IPv6 client by its /64,
	// X-Forwarded-For only from TrustedProxies (as JoinLimit does).
	Client         func(*http.Request) string
	TrustedProxies []netip.Prefix
	// Limit, above 0, is how many clients may use one pass within Window; a further
	// client queues as a new visitor. Default 0: count and report only.
	Limit int
	// Window is how long a client counts as using a pass after its last request. Default
	// one minute.
	Window time.Duration
	// OnShared is told of a pass seen from more than one client: at each client from its
	// second on (refused true past Limit), with the number of clients in the window.
	// It must be quick; a metric counts here. Default: none.
	OnShared func(r *http.Request, p token.Pass, clients int, refused bool)
}

// maxSharedPasses bounds the passes tracked at once (about 50 bytes and a client set each).
const maxSharedPasses = 100_000

// WithPassSharing counts, per room, the passes used from more than one client at once,
// reports them to s.OnShared, and with s.Limit refuses a pass to clients past the limit.
// Mobile clients change addresses and browsers behind one NAT share them: with an address
// as the client, a Limit of 2 or 3 refuses few real visitors. Default: off.
func WithPassSharing(s PassSharing) Option {
	return func(m *handler) error {
		if s.Window <= 0 {
			s.Window = time.Minute
		}
		if s.Client == nil {
			trusted := s.TrustedProxies
			s.Client = func(r *http.Request) string { return clientKey(clientAddr(r, trusted)) }
		}
		m.sharing = &sharing{cfg: s, m: make(map[passKey]*passUse)}
		return nil
	}
}

type passKey struct{ epoch, session int64 }

// passUse is the clients of one pass seen within the window, and when.
type passUse struct {
	clients map[string]time.Time
}

type sharing struct {
	cfg   PassSharing
	mu    sync.Mutex
	m     map[passKey]*passUse
	swept time.Time
}

// see counts a request of client for pass p at now and returns how many clients used it
// within the window, whether this client is new to it, and whether it is one too many.
func (s *sharing) see(client string, p token.Pass, now time.Time) (clients int, added, over bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := passKey{p.Epoch, p.Session}
	u := s.m[k]
	if u == nil {
		if len(s.m) >= maxSharedPasses {
			s.sweep(now)
			if len(s.m) >= maxSharedPasses {
				return 1, false, false // too many to track: count none rather than grow
			}
		}
		u = &passUse{clients: make(map[string]time.Time, 1)}
		s.m[k] = u
	}
	_, seen := u.clients[client]
	if !seen {
		for c, at := range u.clients {
			if now.Sub(at) >= s.cfg.Window {
				delete(u.clients, c)
			}
		}
		if s.cfg.Limit > 0 && len(u.clients) >= s.cfg.Limit {
			return len(u.clients) + 1, true, true // not kept: it is refused
		}
	}
	u.clients[client] = now
	return len(u.clients), !seen, false
}

// sweep drops passes no client used within the window; s.mu is held.
func (s *sharing) sweep(now time.Time) {
	if now.Sub(s.swept) < time.Second {
		return
	}
	s.swept = now
	for k, u := range s.m {
		idle := true
		for _, at := range u.clients {
			if now.Sub(at) < s.cfg.Window {
				idle = false
				break
			}
		}
		if idle {
			delete(s.m, k)
		}
	}
}

// shared counts an admitted visit v of r, reports sharing, and reports whether r's client
// is one too many for v's pass.
func (m *handler) shared(r *http.Request, v waitingroom.Visit) bool {
	if m.sharing == nil || v.Outcome != waitingroom.Admitted {
		return false
	}
	clients, added, over := m.sharing.see(m.sharing.cfg.Client(r), v.Pass, m.clock())
	if added && clients >= 2 && m.sharing.cfg.OnShared != nil {
		m.sharing.cfg.OnShared(r, v.Pass, clients, over)
	}
	return over
}

// enterOptions are the options of r's Enter calls: its binding.
func (m *handler) enterOptions(r *http.Request, opts ...waitingroom.EnterOption) []waitingroom.EnterOption {
	if m.bind != nil {
		opts = append(opts, waitingroom.BindTo(m.bind(r)))
	}
	return opts
}
