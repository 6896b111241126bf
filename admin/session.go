package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// The dashboard's sessions: a browser trades a token's secret for a random session ID in
// a cookie once, so the secret is typed once and never kept by the browser. Sessions live
// in this process only: behind a load balancer, send an operator to one instance.

const (
	sessionCookie = "wr_dashboard"
	// sessionIdle ends a session not used for this long.
	sessionIdle = 12 * time.Hour
	// maxSessions bounds the sessions kept; a login beyond it ends the idlest.
	maxSessions = 1000
)

// session is a logged-in browser: whose token it was traded for, and when it was last used.
type session struct {
	cred *credential
	seen time.Time
}

// sessions maps digests of session IDs to sessions: a copy of the map (a heap dump, say)
// holds no cookie that would log anyone in. Safe for concurrent use.
type sessions struct {
	mu sync.Mutex
	by map[[sha256.Size]byte]*session
}

// start makes a session for cred at now and returns its ID, or an error if the system's
// randomness fails.
func (s *sessions) start(cred *credential, now time.Time) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	id := base64.RawURLEncoding.EncodeToString(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.by == nil {
		s.by = map[[sha256.Size]byte]*session{}
	}
	if len(s.by) >= maxSessions {
		s.prune(now)
	}
	if len(s.by) >= maxSessions {
		var idlest [sha256.Size]byte
		var seen time.Time
		for k, v := range s.by {
			if seen.IsZero() || v.seen.Before(seen) {
				idlest, seen = k, v.seen
			}
		}
		delete(s.by, idlest)
	}
	s.by[sha256.Sum256([]byte(id))] = &session{cred: cred, seen: now}
	return id, nil
}

// get returns the credential of session id at now, and marks the session used; nil for
// an unknown or expired one.
func (s *sessions) get(id string, now time.Time) *credential {
	if id == "" {
		return nil
	}
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.by[k]
	switch {
	case !ok:
		return nil
	case now.Sub(v.seen) >= sessionIdle:
		delete(s.by, k)
		return nil
	}
	v.seen = now
	return v.cred
}

// end ends session id.
func (s *sessions) end(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.by, sha256.Sum256([]byte(id)))
}

// prune drops the sessions idle too long; s.mu is held.
func (s *sessions) prune(now time.Time) {
	for k, v := range s.by {
		if now.Sub(v.seen) >= sessionIdle {
			delete(s.by, k)
		}
	}
}

// len is how many sessions are kept.
func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.by)
}

// Failed logins are limited per client (an IPv4 address, an IPv6 /64: one host's
// addresses): loginBurst at once, then one per loginEvery. A secret of MinSecretLen random
// bytes cannot be guessed at any rate; the limit keeps a guesser from filling the log and
// the CPU. Behind a proxy every client has the proxy's address, and the limit is the
// proxy's. Past maxLimiters clients failing at once, a new one is not limited: sharing one
// limiter among them would let a guesser with many addresses lock every operator out.
const (
	loginBurst  = 10
	loginEvery  = 6 * time.Second
	maxLimiters = 10000
)

// loginLimiter counts failed logins by client. Safe for concurrent use.
type loginLimiter struct {
	mu sync.Mutex
	by map[string]*rate.Limiter
}

// allowed reports whether a login from r's client may be tried at now.
func (l *loginLimiter) allowed(r *http.Request, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.by[clientAddr(r)]
	return lim == nil || lim.TokensAt(now) >= 1
}

// failed counts a failed login from r's client at now.
func (l *loginLimiter) failed(r *http.Request, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	addr := clientAddr(r)
	lim := l.by[addr]
	if lim == nil {
		if l.by == nil {
			l.by = map[string]*rate.Limiter{}
		}
		if len(l.by) >= maxLimiters {
			// Forget the clients that have not failed lately.
			for a, x := range l.by {
				if x.TokensAt(now) >= loginBurst {
					delete(l.by, a)
				}
			}
		}
		if len(l.by) >= maxLimiters {
			return // not limited (see maxLimiters)
		}
		lim = rate.NewLimiter(rate.Every(loginEvery), loginBurst)
		l.by[addr] = lim
	}
	lim.AllowN(now, 1)
}

// clientAddr is the client r came from: its address without the port, an IPv6 one cut to
// its /64.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	if a = a.Unmap(); a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
