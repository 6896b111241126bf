package middleware

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"math"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/estimate"
)

// Join guards: a join verifier (a CAPTCHA, a bot score) and a per-client join limit. Both
// look only at joins, requests that would take a new place in the queue: no cookie, or one
// that holds no valid ticket or pass (forged, for another room, or expired). A valid ticket
// or pass is never verified or limited again, and bypassed requests never reach the guards.
// A refused join costs no store call and gets no ticket.
//
// The room itself tells a join from the rest (waitingroom.BeforeJoin): the guards run just
// before it would take a new place, including for a pass whose session was released,
// revoked or forgotten, and valid tokens are parsed once, by the room, as without guards.

// Verdict is a JoinVerifier's answer.
type Verdict uint8

// Verdicts. Any other value, the zero Verdict included, counts as Challenge.
const (
	// Allow lets the request join as it would without a verifier: it takes a place in the
	// queue, or goes straight in while there is room.
	Allow Verdict = iota + 1
	// Challenge refuses the join for now: the request gets the challenge page
	// (WithChallengePage), which asks for proof (a CAPTCHA, say) that the verifier checks
	// on a later request. JSON clients get 403 with the status and "turnstile": true.
	Challenge
	// InfiniteQueue puts the request in a queue that never moves: it gets the waiting page
	// (JSON: "infiniteQueue": true) with nobody ahead and the wait unknown, for as long as it
	// keeps polling, and never reaches the site, even when there is room. It costs no
	// capacity and no store call. A cookie marks the visitor so that its polls stay there
	// without asking the verifier again.
	InfiniteQueue
)

// JoinVerifier decides whether a request may take a place in the queue. It runs only on
// joins (see above) and after the join limit, so it may be slow (a call to a CAPTCHA
// provider): the limit keeps floods away from it. It reads the CAPTCHA's answer from the
// request (a header, a query parameter, a form field: a body it consumes is gone for the
// site) and must not write the response. A failure to verify is a Challenge, not a panic.
type JoinVerifier interface {
	VerifyJoin(r *http.Request) Verdict
}

// JoinVerifierFunc is a function used as a JoinVerifier.
type JoinVerifierFunc func(r *http.Request) Verdict

// VerifyJoin returns f(r).
func (f JoinVerifierFunc) VerifyJoin(r *http.Request) Verdict { return f(r) }

// WithJoinVerifier asks v before each join. Default: none, every join is allowed.
//
// The infinite queue's marker is the room's cookie holding a fixed value rather than a
// token. It is not signed, because it can only harm its holder: whoever forges it puts
// themselves in a queue that never moves, and whoever drops it is a new join, verified again.
// Without a verifier the marker is ignored and its holder joins as anyone new.
func WithJoinVerifier(v JoinVerifier) Option {
	return func(m *handler) error { m.verifier = v; return nil }
}

// WithChallengePage sets the handler that answers a join the verifier challenged. It writes
// its own status code and may read the Status with StatusFromContext; Cache-Control:
// no-store is set. JSON clients get 403 with the status and "turnstile": true instead.
// Default: a plain 403 page saying the visit could not be verified, with no way to prove
// otherwise; a verifier that challenges should come with a page that lets people pass.
func WithChallengePage(h http.Handler) Option {
	return func(m *handler) error {
		if h != nil {
			m.challenge = h
		}
		return nil
	}
}

// JoinLimit limits how often one client may join, by a token bucket per client
// (golang.org/x/time/rate). A join over the limit is answered 429 with Retry-After.
// Zero fields take the stated defaults.
type JoinLimit struct {
	// PerMinute is the sustained rate of joins one client may make. Default 30. People
	// behind one address (an office, a carrier-grade NAT) share it: be generous, since a
	// visitor with a ticket or pass never counts against it.
	PerMinute float64
	// Burst is how many joins a client may make at once. Default PerMinute rounded up.
	Burst int
	// Key names the client. Default: the client's address (see TrustedProxies), an IPv6
	// address by its /64, which one subscriber usually holds whole. Requests with the same
	// key, "" included, share one limit.
	Key func(*http.Request) string
	// TrustedProxies are the proxies whose X-Forwarded-For the default Key believes: when
	// the connection (RemoteAddr) comes from one of them, the client is the right-most
	// address in X-Forwarded-For that is not one of them; addresses to its left may be
	// forged by the client and are never used. Default (nil): loopback and private
	// addresses (PrivateNetworks), where a reverse proxy or a cloud load balancer in front
	// of the app connects from and nobody on the Internet can. Behind a CDN, list its
	// ranges, or use a Key that reads its client header; an empty, non-nil list trusts
	// none. A custom Key ignores this. Where the default key knows no client (a Unix
	// socket, or a trusted proxy that sent no X-Forwarded-For), the join is not limited.
	TrustedProxies []netip.Prefix
	// MaxClients bounds the clients remembered; at least 2, default 100,000. A client is
	// remembered for at least the next MaxClients/2 new clients after its last join; one
	// forgotten starts again with a full burst, as does one whose bucket refilled. Each
	// costs about 140 bytes (measured: its *rate.Limiter, 80, its map slot, about 35, and
	// the key, 16 for IPv4 and 24 for an IPv6 /64), so the default bounds the limit's
	// memory to about 14 MB.
	MaxClients int
}

// ErrJoinLimit is returned by JoinLimit.Validate.
var ErrJoinLimit = errors.New("middleware: invalid join limit")

// Validate reports whether l makes sense: PerMinute and Burst not negative, PerMinute
// finite, MaxClients 0 (the default) or at least 2.
func (l JoinLimit) Validate() error {
	switch {
	case l.PerMinute < 0 || math.IsNaN(l.PerMinute) || math.IsInf(l.PerMinute, 0):
		return fmt.Errorf("%w: PerMinute must be positive and finite, got %v", ErrJoinLimit, l.PerMinute)
	case l.Burst < 0:
		return fmt.Errorf("%w: Burst must not be negative, got %d", ErrJoinLimit, l.Burst)
	case l.MaxClients < 0 || l.MaxClients == 1:
		return fmt.Errorf("%w: MaxClients must be at least 2, got %d", ErrJoinLimit, l.MaxClients)
	}
	return nil
}

// PrivateNetworks are loopback, private (RFC 1918, RFC 4193) and link-local addresses:
// JoinLimit's default TrustedProxies.
var PrivateNetworks = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"), netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fc00::/7"), netip.MustParsePrefix("fe80::/10"),
}

// WithJoinLimit limits joins per client. Zero fields take their defaults; a value out of
// range (see Validate) is refused. Default: JoinLimit{}, that is 30 joins a minute per
// client address, 30 at once, behind proxies on private addresses (see TrustedProxies).
// A script that sends 1,000 requests a second without cookies then takes 30 places, and
// one more every 2 s (see the README for what that does to a real visitor's wait).
// WithoutJoinLimit turns it off.
func WithJoinLimit(l JoinLimit) Option {
	return func(m *handler) error {
		if err := l.Validate(); err != nil {
			return fmt.Errorf("%w: WithJoinLimit: %w", ErrOption, err)
		}
		if l.PerMinute == 0 {
			l.PerMinute = 30
		}
		if l.TrustedProxies == nil {
			l.TrustedProxies = PrivateNetworks
		}
		if l.MaxClients == 0 {
			l.MaxClients = 100_000
		}
		if l.Burst == 0 {
			l.Burst = int(min(math.Ceil(l.PerMinute), math.MaxInt32))
		}
		key, anonymous := l.Key, false
		if key == nil {
			trusted := slices.Clone(l.TrustedProxies)
			key = func(r *http.Request) string {
				if a, ok := parseAddr(r.RemoteAddr); ok && isTrusted(a, trusted) && len(r.Header.Values("X-Forwarded-For")) == 0 {
					// A proxy we trust that names no client (an L4 balancer rewriting the
					// source, say): every visitor would share one limit.
					return ""
				}
				return clientKey(clientAddr(r, trusted))
			}
			anonymous = true // "" means no client known: not limited
		}
		// Each handler gets its own clients, even when two share this Option.
		m.limits = &clientLimits{
			anonymous: anonymous,
			limit:     rate.Limit(l.PerMinute / 60),
			burst:     l.Burst,
			key:       key,
			half:      l.MaxClients / 2,
			cur:       map[string]*rate.Limiter{},
		}
		return nil
	}
}

// WithoutJoinLimit turns off the join limit: any client may join as often as it likes (a
// site that limits requests per client before the room, say).
func WithoutJoinLimit() Option {
	return func(m *handler) error { m.limits, m.noJoinLimit = nil, true; return nil }
}

// WithClock sets the middleware's clock: the join limit's buckets, the choice among several
// cookies of the room's name (see WithCookie), and the infinite queue's lastUpdated. Give it
// the room's clock (waitingroom.WithClock). Default (and nil): time.Now.
func WithClock(now func() time.Time) Option {
	return func(m *handler) error {
		if now != nil {
			m.clock = now
		}
		return nil
	}
}

// clientAddr returns the address of the client making r: the connection's (RemoteAddr),
// unless that is one of trusted, in which case X-Forwarded-For is read from the right, past
// the trusted proxies, to the first address that is not one. It returns the zero Addr when
// RemoteAddr holds no address (a Unix socket, say).
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	addr, ok := parseAddr(r.RemoteAddr)
	if !ok || !isTrusted(addr, trusted) {
		return addr
	}
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		list := values[i]
		for list != "" {
			var entry string
			if j := strings.LastIndexByte(list, ','); j >= 0 {
				list, entry = list[:j], list[j+1:]
			} else {
				list, entry = "", list
			}
			if entry = strings.TrimSpace(entry); entry == "" {
				continue
			}
			next, ok := parseAddr(entry)
			if !ok {
				// A trusted proxy writes addresses; whatever wrote this did not, so the
				// last hop we trust is as far as anyone vouches for.
				return addr
			}
			addr = next
			if !isTrusted(addr, trusted) {
				return addr
			}
		}
	}
	return addr // every hop was a trusted proxy: the first of them is the client
}

// joinGuarded reports whether the middleware needs to tell joins from other requests.
func (m *handler) joinGuarded() bool {
	return m.verifier != nil || m.limits != nil || m.crossOrigin != nil
}

// errCrossOrigin refuses a join WithCrossOriginProtection's check refuses.
var errCrossOrigin = errors.New("middleware: a cross-origin request takes no place")

// inInfiniteQueue answers a visitor the verifier sent to the infinite queue, and reports
// whether it did. The room runs no guard, and takes no place, while suspended or rejecting.
func (m *handler) inInfiniteQueue(w http.ResponseWriter, r *http.Request, raw string) bool {
	if raw != infiniteQueueMarker || m.verifier == nil {
		return false
	}
	cfg := m.room.Config()
	if !takesPlaces(cfg) {
		return false
	}
	m.serveInfiniteQueue(w, r, cfg, m.clock())
	return true
}

// checkJoin runs the join guards on a request the room is about to give a new place (the
// room calls it through waitingroom.BeforeJoin, so valid tokens never get here and are not
// parsed twice) and returns why they refuse it, or nil. It writes nothing: refuse does,
// once Enter has returned.
func (m *handler) checkJoin(r *http.Request) error {
	if m.crossOrigin != nil && m.crossOrigin.Check(r) != nil {
		return errCrossOrigin
	}
	now := m.clock()
	if m.limits != nil {
		if k := m.limits.key(r); k != "" || !m.limits.anonymous {
			if ok, retry := m.limits.allow(k, now); !ok {
				return &joinRefusal{retry: retry, at: now}
			}
		}
	}
	if m.verifier == nil {
		return nil
	}
	switch v := m.verifier.VerifyJoin(r); v {
	case Allow:
		return nil
	case InfiniteQueue:
		return &joinRefusal{verdict: InfiniteQueue, at: now}
	default:
		return &joinRefusal{verdict: Challenge, at: now}
	}
}

// joinRefusal is why the join guards turned a request away: over the join limit (retry
// after), or the verifier's verdict.
type joinRefusal struct {
	verdict Verdict // 0: over the join limit
	retry   time.Duration
	at      time.Time
}

func (j *joinRefusal) Error() string {
	switch j.verdict {
	case 0:
		return "middleware: too many joins from this client"
	case InfiniteQueue:
		return "middleware: the join verifier sent the request to the infinite queue"
	}
	return "middleware: the join verifier challenged the request"
}

// refuse answers a request the join guards refused.
func (m *handler) refuse(w http.ResponseWriter, r *http.Request, err error) {
	if err == errCrossOrigin {
		// No cookie, no place: the visitor's own cookie, if any, stays as it is.
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "This was sent from another site, and takes no place in the queue: open the page to join it.", http.StatusForbidden)
		return
	}
	if err == errPlaceless {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Retry-After", retryAfter(m.room.Config().RefreshInterval))
		w.WriteHeader(http.StatusServiceUnavailable)
		if r.Method != http.MethodHead {
			io.WriteString(w, "This request takes no place in the queue: open the page to join it.\n")
		}
		return
	}
	j, ok := err.(*joinRefusal)
	if !ok {
		j = &joinRefusal{verdict: Challenge, at: m.clock()}
	}
	cfg := m.room.Config()
	switch j.verdict {
	case 0:
		tooManyJoins(w, j.retry)
	case InfiniteQueue:
		m.serveInfiniteQueue(w, r, cfg, j.at)
	default:
		m.serveChallenge(w, r, cfg, j.at)
	}
}

// infiniteQueueMarker is the cookie value of a visitor in the infinite queue; no token
// looks like it (a JWT has dots).
const infiniteQueueMarker = "iq"

// takesPlaces reports whether Enter may take a place in the queue: not while the room is
// suspended (everyone passes) or rejects everyone (the closed page).
func takesPlaces(cfg waitingroom.Config) bool {
	return !cfg.Suspended && cfg.QueueingMethod != waitingroom.Reject
}

func (m *handler) serveInfiniteQueue(w http.ResponseWriter, r *http.Request, cfg waitingroom.Config, now time.Time) {
	m.setCookie(w, r, infiniteQueueMarker, cfg.QueueHold)
	st := guardStatus(m.room.ID(), cfg, now)
	st.Wait = estimate.Unknown("infinite queue")
	m.serveWaiting(w, r, &st, true)
}

func (m *handler) serveChallenge(w http.ResponseWriter, r *http.Request, cfg waitingroom.Config, now time.Time) {
	st := guardStatus(m.room.ID(), cfg, now)
	st.Wait = estimate.Unknown("challenge")
	w.Header().Set("Cache-Control", "no-store")
	if wantsJSON(r) {
		c := NewCloudflareStatus(st)
		c.Turnstile = true
		writeJSON(w, http.StatusForbidden, pageJSON{Room: c})
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), statusKey{}, &st))
	m.challenge.ServeHTTP(w, r)
}

// guardStatus is the Status of a visitor the guards hold outside the queue: nobody ahead,
// the wait unknown, as of now.
func guardStatus(room string, cfg waitingroom.Config, now time.Time) waitingroom.Status {
	return waitingroom.Status{
		Room:            room,
		Method:          cfg.QueueingMethod,
		QueueAll:        cfg.QueueAll,
		LastUpdated:     now,
		RefreshInterval: cfg.RefreshInterval,
	}
}

func tooManyJoins(w http.ResponseWriter, retry time.Duration) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Retry-After", strconv.FormatInt(max(1, int64(math.Ceil(retry.Seconds()))), 10))
	http.Error(w, "Too many attempts to join the queue, please try again shortly.", http.StatusTooManyRequests)
}

var defaultChallengePage = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusForbidden)
	challengeTemplate.Execute(w, nil)
})

var challengeTemplate = template.Must(template.New("challenge").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Not verified</title></head>
<body style="font-family:sans-serif;max-width:36em;margin:4em auto">
<h1>We could not verify this visit</h1><p>Please try again later.</p>
</body></html>
`))

// clientLimits holds a token bucket per client, at most 2*half of them: two generations of
// at most half each. A client found in the old generation moves to the current one; when
// the current one is full it becomes the old one and the old one is dropped. That forgets
// only clients not seen for half new clients, with no per-entry links (an LRU list would
// add a 48-byte list element a client) and no sweeper. Forgetting a client whose bucket
// has refilled changes nothing. It is safe for concurrent use.
type clientLimits struct {
	limit rate.Limit // per second
	burst int
	key   func(*http.Request) string
	half  int
	// anonymous: the default key, whose "" means no client is known (a Unix socket, a
	// trusted proxy that names none): such joins are not limited, rather than all sharing
	// one bucket.
	anonymous bool

	mu        sync.Mutex
	cur, prev map[string]*rate.Limiter
}

// allow takes a join from key's bucket at now, or reports how long until one is there.
func (c *clientLimits) allow(key string, now time.Time) (bool, time.Duration) {
	l := c.limiter(key)
	if l.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - l.TokensAt(now)
	return false, time.Duration(missing / float64(c.limit) * float64(time.Second))
}

func (c *clientLimits) limiter(key string) *rate.Limiter {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.cur[key]; ok {
		return l
	}
	l, ok := c.prev[key]
	if ok {
		delete(c.prev, key)
	} else {
		l = rate.NewLimiter(c.limit, c.burst)
	}
	if len(c.cur) >= c.half {
		c.prev, c.cur = c.cur, make(map[string]*rate.Limiter, len(c.cur))
	}
	c.cur[key] = l
	return l
}

// clients returns how many clients are remembered.
func (c *clientLimits) clients() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.prev)
}

// clientKey is the default join-limit key of addr: an IPv4 address, or an IPv6 address's /64.
func clientKey(addr netip.Addr) string {
	if !addr.IsValid() {
		return ""
	}
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

// parseAddr reads "addr", "addr:port" or "[addr]:port", unmapping IPv4-in-IPv6.
func parseAddr(s string) (netip.Addr, bool) {
	// RemoteAddr has a port: tried first, so that the common case makes no error value.
	var a netip.Addr
	if ap, err := netip.ParseAddrPort(s); err == nil {
		a = ap.Addr()
	} else if a, err = netip.ParseAddr(s); err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

func isTrusted(addr netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
