// Package middleware puts a waitingroom.Room in front of a net/http handler.
//
//	room, err := waitingroom.New("booking", memory.New(), waitingroom.Config{
//		TotalActiveUsers: 200, NewUsersPerMinute: 100,
//	})
//	if err != nil {
//		log.Fatal(err)
//	}
//	log.Fatal(http.ListenAndServe(addr, middleware.Protect(room, app)))
//
// Admitted visitors reach the handler; the others get the waiting page, or JSON in the
// hosted rooms' format when they ask with Accept: application/json. The waiting, closed
// and outage pages are built in (accessible, in several languages, updated in place: see
// Pages) and each may be replaced by the host's http.Handler, which reads the Status with
// StatusFromContext. The ticket or pass lives in an HttpOnly cookie named after the room.
//
// A form sent after the visitor's session ended is not lost silently: see WithPostGrace,
// WithKeep, WithKeepalive and PassFromContext.
package middleware

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/text/language"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/estimate"
	"github.com/waitingroom-go/waitingroom/token"
)

// CommandHeader is the response header through which the protected handler ends the
// visitor's session: "Waiting-Room-Command: revoke". The middleware removes it from every
// response of the handler, and acts on it only for a request admitted through the room:
// a bypassed request, and every request while the room is suspended or failing open, has
// no session to end.
const CommandHeader = "Waiting-Room-Command"

// Option configures the middleware.
type Option func(*handler) error

// WithWaitingPage sets the handler that renders the waiting page, the pre-queue's included;
// it reads the Status with StatusFromContext (and InterruptionFromContext, for a form that
// was not sent). Its status code 200 is replaced by the room's QueueingStatusCode, and
// Cache-Control: no-store is set. Default (and nil): the built-in page (see Pages).
func WithWaitingPage(h http.Handler) Option {
	return func(m *handler) error {
		if h != nil {
			m.waiting = h
		}
		return nil
	}
}

// WithClosedPage sets the page shown when the room rejects everyone (QueueingMethod Reject).
// Its status code 200 is replaced by 503, with Retry-After: the time until the next event
// opens its pre-queue or starts, else 5 minutes. Default (and nil): the built-in page,
// which says when the next event opens and reloads itself then.
func WithClosedPage(h http.Handler) Option {
	return func(m *handler) error {
		if h != nil {
			m.closed = h
		}
		return nil
	}
}

// WithBypass lets requests for which f returns true skip the room, uncounted: health checks,
// static assets, staff. Default: none.
func WithBypass(f func(*http.Request) bool) Option {
	return func(m *handler) error { m.bypass = f; return nil }
}

// WithErrorHandler is called with every store failure (after the room's deadline). Default:
// logs with slog.Default at level Error. It must not write the response.
func WithErrorHandler(f func(*http.Request, error)) Option {
	return func(m *handler) error { m.onError = f; return nil }
}

// WithPlaceless names the requests that never take a place in the queue: ones that cannot
// carry the room's cookie back to a visitor. Such a request without a valid ticket or pass
// is answered 503 with Retry-After and nothing cached (no body for HEAD), instead of
// joining; with one, it is served as any other. Default: Placeless (OPTIONS, HEAD and
// prefetches). Nil lets every request join. A CORS preflight never carries cookies: to
// let preflights reach a protected API, add them to WithBypass.
func WithPlaceless(f func(*http.Request) bool) Option {
	return func(m *handler) error { m.placeless = f; return nil }
}

// Placeless reports whether r is a CORS preflight or other OPTIONS request, a HEAD request,
// or a prefetch (Sec-Purpose or Purpose "prefetch", X-Moz "prefetch"): requests whose
// response no person reads, so that a script or a browser's speculation cannot queue
// places that nobody holds.
func Placeless(r *http.Request) bool {
	switch r.Method {
	case http.MethodOptions, http.MethodHead:
		return true
	}
	h := r.Header
	for _, k := range [...]string{"Sec-Purpose", "Purpose", "X-Moz"} {
		if v := h[k]; len(v) > 0 && strings.Contains(strings.ToLower(v[0]), "prefetch") {
			return true
		}
	}
	return false
}

// errPlaceless refuses a join to a request WithPlaceless names.
var errPlaceless = errors.New("middleware: this request takes no place")

// guardedEnter enters r with raw, running the join guards (or refusing a placeless request)
// only where the room would give it a new place: the room answers Joining first, so a
// request holding a valid ticket or pass costs no check and no closure.
func (m *handler) guardedEnter(r *http.Request, raw string, placeless bool) (waitingroom.Visit, error) {
	v, err := m.room.Enter(r.Context(), raw, m.enterOptions(r, waitingroom.AskBeforeJoin())...)
	if err != nil || v.Outcome != waitingroom.Joining {
		return v, err
	}
	check := errPlaceless // no guard runs for a request that never joins: it is refused
	if !placeless {
		check = m.checkJoin(r)
	}
	if check != nil {
		return waitingroom.Visit{Outcome: waitingroom.Refused, Refusal: check}, nil
	}
	return m.room.Enter(r.Context(), "", m.enterOptions(r)...)
}

// WithCrossOriginProtection sets the check that refuses (403, no cookie, no place) a
// cross-origin request with an unsafe method that would take a place, such as a form
// another site posts: it carries none of the room's cookies (they are SameSite=Lax), so it
// would join, and its Set-Cookie would replace the visitor's. Requests with a valid ticket
// or pass are not checked. Configure c's trusted origins and bypass patterns for endpoints
// that take cross-site posts (a payment provider's return), or pass nil to check nothing.
// Default: http.NewCrossOriginProtection().
func WithCrossOriginProtection(c *http.CrossOriginProtection) Option {
	return func(m *handler) error { m.crossOrigin = c; return nil }
}

// WithFailOpen lets visitors through, uncounted, when the store fails (ErrStore; not when the
// room refuses to serve, as on ErrKeyMismatch). Default: fail closed,
// answering 503 with the outage page (WithOutagePage) and Retry-After (the admitted keep
// going on their passes). A room with waitingroom.WithFallback decides alone instead, and
// neither happens to its joins and polls.
func WithFailOpen(open bool) Option {
	return func(m *handler) error { m.failOpen = open; return nil }
}

// Cookie sets how the visitor's ticket or pass is stored.
type Cookie struct {
	Name   string // default "wr_" + room ID
	Path   string // default "/"
	Domain string // default none (host-only)
	Secure bool   // always Secure; by default only when the request is known to be HTTPS
	// HostPrefix names the cookie "__Host-" + Name. Browsers keep such a cookie only if it
	// is Secure, host-only and for Path "/", so no sibling subdomain can set or shadow it.
	// It implies Secure (the site must be served over HTTPS), and WithCookie refuses it with
	// a Domain or a Path other than "/". Default: false.
	HostPrefix bool
	// TrustedProxies are the proxies (by RemoteAddr) that end TLS for the site: a request
	// from one of them with X-Forwarded-Proto: https is known to be HTTPS, so its cookies
	// are Secure. Default: none (only a request over TLS to this server is known to be).
	TrustedProxies []netip.Prefix
}

// secure reports whether the cookies set for r are Secure: always with Secure (or
// HostPrefix), else when r came over TLS or, from a trusted proxy, as https.
func (c *Cookie) secure(r *http.Request) bool {
	if c.Secure || r.TLS != nil {
		return true
	}
	if len(c.TrustedProxies) == 0 {
		return false
	}
	addr, ok := parseAddr(r.RemoteAddr)
	if !ok || !isTrusted(addr, c.TrustedProxies) {
		return false
	}
	// The last value is the one the nearest proxy wrote.
	v := r.Header.Values("X-Forwarded-Proto")
	if len(v) == 0 {
		return false
	}
	last := v[len(v)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	return strings.EqualFold(strings.TrimSpace(last), "https")
}

// WithCookie sets the cookie's name and scope. It is always HttpOnly and SameSite=Lax.
//
// A request may carry several cookies of the name, when the browser still holds one of an
// earlier Path or Domain (or a sibling subdomain set some: HostPrefix stops that). The
// middleware passes over values that cannot be a token, looks at the first four others and
// uses the first that holds a valid pass, else a valid ticket, else an expired one (the
// room's clock, corrected by the store's, may disagree with WithClock's), else the first.
func WithCookie(c Cookie) Option {
	return func(m *handler) error {
		if c.HostPrefix && (c.Domain != "" || c.Path != "" && c.Path != "/") {
			return fmt.Errorf("%w: WithCookie: HostPrefix needs no Domain and the Path \"/\"", ErrOption)
		}
		for _, p := range c.TrustedProxies {
			if !p.IsValid() {
				return fmt.Errorf("%w: WithCookie: an invalid trusted proxy prefix", ErrOption)
			}
		}
		c.TrustedProxies = slices.Clone(c.TrustedProxies)
		m.cookie = c
		return nil
	}
}

// New returns the room's middleware in the shape routers and chains take,
// func(http.Handler) http.Handler: chi's Use, alice.New, or a call by hand. Each handler it
// wraps is served as Protect serves next, except that all of them share one join limit
// (WithJoinLimit): a client's joins count against one bucket whichever of the wrapped
// handlers they reach. It returns the error of the first option that refuses its value.
func New(room *waitingroom.Room, opts ...Option) (func(http.Handler) http.Handler, error) {
	shared, err := build(room, nil, opts)
	if err != nil {
		return nil, err
	}
	return func(next http.Handler) http.Handler {
		h := *shared
		h.next = next
		return &h
	}, nil
}

// Protect returns next behind room. It is New for one handler, for options written in the
// program: it panics if one refuses its value (as regexp.MustCompile does with a bad
// expression), so that a misconfigured server stops at its start. Use New for options that
// come from configuration.
func Protect(room *waitingroom.Room, next http.Handler, opts ...Option) http.Handler {
	h, err := build(room, next, opts)
	if err != nil {
		panic(err)
	}
	return h
}

// ErrOption wraps the error of an option that refuses its value.
var ErrOption = errors.New("middleware: invalid option")

func build(room *waitingroom.Room, next http.Handler, opts []Option) (*handler, error) {
	if room == nil {
		return nil, fmt.Errorf("%w: nil room", ErrOption)
	}
	m := &handler{room: room, next: next, challenge: defaultChallengePage, clock: time.Now, revive: room.Revive, placeless: Placeless,
		crossOrigin: http.NewCrossOriginProtection()}
	for _, o := range opts {
		if err := o(m); err != nil {
			return nil, err
		}
	}
	if m.pages == nil {
		WithPages(Pages{})(m)
	}
	if m.limits == nil && !m.noJoinLimit {
		if err := WithJoinLimit(JoinLimit{})(m); err != nil {
			return nil, err
		}
	}
	if m.cookie.Name == "" {
		m.cookie.Name = "wr_" + room.ID()
	}
	if m.cookie.Path == "" {
		m.cookie.Path = "/"
	}
	if m.cookie.HostPrefix {
		m.cookie.Name, m.cookie.Secure = "__Host-"+m.cookie.Name, true
	}
	page := m.pages.page(m.cookie)
	for _, h := range []*http.Handler{&m.waiting, &m.closed, &m.outage} {
		if *h == nil {
			*h = page
		}
	}
	if m.onError == nil {
		m.onError = func(r *http.Request, err error) {
			slog.Default().ErrorContext(r.Context(), "waiting room store failure", "room", room.ID(), "err", err)
		}
	}
	return m, nil
}

// StatusFromContext returns the Status of a waiting, rejected or challenged visitor, for the
// waiting, closed or challenge page.
func StatusFromContext(ctx context.Context) (waitingroom.Status, bool) {
	st, ok := ctx.Value(statusKey{}).(*waitingroom.Status)
	if !ok {
		return waitingroom.Status{}, false
	}
	return *st, true
}

// Release ends the session of the admitted visitor making r, at once (after a booking is
// submitted, say). The cookie is cleared if the response has not been written yet. Calling it
// again, or on a request that was not admitted through the room, does nothing.
func Release(r *http.Request) error {
	a, ok := r.Context().Value(admittedKey{}).(*admittance)
	if !ok {
		return nil
	}
	return a.release(r.Context())
}

type handler struct {
	room    *waitingroom.Room
	next    http.Handler
	waiting http.Handler
	closed  http.Handler
	outage  http.Handler
	pages   *Pages
	bypass  func(*http.Request) bool
	// crossOrigin refuses cross-origin unsafe requests (WithCrossOriginProtection).
	crossOrigin *http.CrossOriginProtection
	onError     func(*http.Request, error)
	failOpen    bool
	// placeless names requests that never join (WithPlaceless).
	placeless func(*http.Request) bool
	cookie    Cookie

	// Shared passes (sharing.go).
	bind    func(*http.Request) string
	sharing *sharing

	// Join guards (abuse.go).
	verifier  JoinVerifier
	challenge http.Handler
	limits    *clientLimits
	// noJoinLimit: WithoutJoinLimit (the default is WithJoinLimit(JoinLimit{})).
	noJoinLimit bool
	clock       func() time.Time

	// Forms (session.go).
	keep      KeepFunc
	grace     time.Duration
	keepalive string
	// revive brings back the session of a pass that expired less than the grace ago, when
	// capacity allows: the visit with a new pass, Admitted, when it did (room.Revive; tests
	// put a stand-in here).
	revive func(ctx context.Context, p token.Pass, opts ...waitingroom.EnterOption) (waitingroom.Visit, error)
}

type statusKey struct{}
type admittedKey struct{}

func (m *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if m.bypass != nil && m.bypass(r) {
		// Uncounted: the cookie is not read, so there is no session a revoke could end, and
		// finding one would cost a token check on every health check and asset.
		m.serveNext(&responseWriter{ResponseWriter: w}, r)
		return
	}
	if cookiesTooLarge(r) {
		// Before the cookies are parsed: a request stuffed with them would cost more than
		// every other check together.
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "Request cookies too large", http.StatusRequestHeaderFieldsTooLarge)
		return
	}
	if m.keepalive != "" && r.URL.Path == m.keepalive {
		m.serveKeepalive(w, r)
		return
	}
	raw := m.token(r)
	if sendsData(r) {
		if v, ok := m.tryRevive(r, raw); ok {
			if v.Token != "" {
				m.setCookie(w, r, v.Token, m.cookieAge(v))
			}
			m.serveAdmitted(w, r, v.Pass)
			return
		}
	}
	var v waitingroom.Visit
	var err error
	placeless := m.placeless != nil && m.placeless(r)
	if m.joinGuarded() || placeless {
		if m.inInfiniteQueue(w, r, raw) {
			return
		}
		v, err = m.guardedEnter(r, raw, placeless)
	} else {
		v, err = m.room.Enter(r.Context(), raw, m.enterOptions(r)...)
	}
	if err == nil && m.shared(r, v) {
		// One client too many on this pass: this one comes in as anyone new would.
		v, err = m.guardedEnter(r, "", false)
	}
	if err != nil {
		if errors.Is(err, waitingroom.ErrCanceled) {
			clientGone(w)
			return
		}
		m.onError(r, err)
		if m.failOpen && errors.Is(err, waitingroom.ErrStore) {
			// Only a store outage opens the gate: a room that refuses to serve (its keys
			// do not match the others') stays shut. No valid pass here (a pass holder is
			// admitted even when its renewal fails), so there is no session to revoke.
			m.serveNext(&responseWriter{ResponseWriter: w}, r)
			return
		}
		m.serveOutage(w, r)
		return
	}
	if v.Degraded != nil {
		m.onError(r, v.Degraded)
	}
	if v.Token != "" {
		m.setCookie(w, r, v.Token, m.cookieAge(v))
	}
	switch v.Outcome {
	case waitingroom.Refused: // a join guard said no
		m.refuse(w, r, v.Refusal)
	case waitingroom.Suspended:
		// The room is off and touches no cookies: a revoke is removed, not acted on.
		m.serveNext(&responseWriter{ResponseWriter: w}, r)
	case waitingroom.Admitted:
		m.serveAdmitted(w, r, v.Pass)
	default:
		m.serveWaiting(w, r, &v.Status, false)
	}
}

// clientGone answers a request whose own context ended before the room could decide it (the
// client went away or half-closed its connection): not a store failure, so nothing is
// reported and nobody is let in, fail-open or not. 499 is the code proxies log for a client
// that closed its request.
func clientGone(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	http.Error(w, "request canceled", statusClientClosed)
}

// statusClientClosed is nginx's 499, Client Closed Request.
const statusClientClosed = 499

func (m *handler) serveAdmitted(w http.ResponseWriter, r *http.Request, p token.Pass) {
	a := &admittance{m: m, pass: p, w: w, r: r}
	a.rw = responseWriter{ResponseWriter: w, a: a}
	r = r.WithContext(context.WithValue(r.Context(), admittedKey{}, a))
	a.r = r
	m.serveNext(&a.rw, r)
}

// serveNext runs the protected handler through rw, which removes the command header (and
// acts on it, for an admitted request) whenever the handler sends its header.
func (m *handler) serveNext(rw *responseWriter, r *http.Request) {
	m.next.ServeHTTP(rw, r)
	if !rw.wrote {
		// The handler wrote nothing; net/http will send an empty 200. Act on a revoke first.
		rw.command()
	}
}

// maxCookies bounds the cookies of the room's name whose tokens are checked, so that a
// request stuffed with them costs at most a few token checks. Values that cannot be a token
// (not three base64url parts) are passed over without counting: junk cookies set by a
// sibling subdomain do not push a real pass out of reach.
const maxCookies = 4

// MaxCookieHeader is the most the Cookie header may hold, in bytes, all lines together; a
// request with more is answered 431 before its cookies are parsed. Browsers send a few
// kilobytes; 32 KiB leaves room for many.
const MaxCookieHeader = 32 << 10

func cookiesTooLarge(r *http.Request) bool {
	n := 0
	for _, line := range r.Header["Cookie"] {
		if n += len(line); n > MaxCookieHeader {
			return true
		}
	}
	return false
}

// jwtShaped reports whether s has the shape of a compact JWT: three non-empty base64url
// parts. It does no decoding.
func jwtShaped(s string) bool {
	dots, run := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.':
			if run == 0 {
				return false
			}
			dots, run = dots+1, 0
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
			run++
		default:
			return false
		}
	}
	return dots == 2 && run > 0
}

// token returns the visitor's ticket or pass from the room's cookie, or "" for none. Of
// several cookies of that name (see WithCookie) it prefers a pass to a ticket: a visitor
// holds a ticket before its pass, and polling with a ticket whose place became a session
// would put the visitor at the back.
func (m *handler) token(r *http.Request) string {
	cookies := r.CookiesNamed(m.cookie.Name)
	if len(cookies) == 1 {
		// The usual case: the room checks the one value (and refuses junk) by itself.
		if v := cookies[0].Value; len(v) <= token.MaxSize {
			return v
		}
		return ""
	}
	var values [maxCookies]string
	n := 0
	for _, c := range cookies {
		if c.Value == "" || len(c.Value) > token.MaxSize || c.Value != infiniteQueueMarker && !jwtShaped(c.Value) {
			continue
		}
		values[n] = c.Value
		if n++; n == maxCookies {
			break
		}
	}
	if n <= 1 {
		return values[0] // the room parses it once, as with no duplicates
	}
	codec, room, now := m.room.Codec(), m.room.ID(), m.clock()
	ticket, authentic := -1, -1
	for i, v := range values[:n] {
		// Each value is verified once, as the kind its header names.
		var err error
		if token.LooksLikeTicket(v) {
			if ticket >= 0 {
				continue // only a pass comes before it
			}
			if _, err = codec.ParseTicket(room, v, now); err == nil {
				ticket = i
				continue
			}
		} else if _, err = codec.ParsePass(room, v, now); err == nil {
			return v
		}
		if authentic < 0 && errors.Is(err, token.ErrExpired) {
			authentic = i
		}
	}
	switch {
	case ticket >= 0:
		return values[ticket]
	case authentic >= 0:
		return values[authentic]
	}
	return values[0]
}

// cookieAge is how long the cookie of v's token lasts: a pass's outlives the pass (see
// WithPostGrace).
func (m *handler) cookieAge(v waitingroom.Visit) time.Duration {
	if v.Outcome == waitingroom.Admitted {
		return v.MaxAge + max(m.grace, passCookieLinger)
	}
	return v.MaxAge
}

func (m *handler) serveWaiting(w http.ResponseWriter, r *http.Request, st *waitingroom.Status, infiniteQueue bool) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	cfg := m.room.Config()
	code := cfg.QueueingStatusCode
	page := m.waiting
	info := &pageInfo{interrupt: m.interruption(w, r)}
	info.announce, info.msgLang = m.announcement(r, st)
	if st.Method == waitingroom.Reject || st.SoldOut {
		// Closed, or sold out: no place was taken. 503 with Retry-After, as a closed room's
		// answer: the booking is not there to be had now (crawlers keep the page they
		// knew), and places may come back.
		code, page, info.kind = http.StatusServiceUnavailable, m.closed, closedKind
		if !st.SoldOut {
			info.opens = nextOpening(cfg.Events, st.LastUpdated)
		}
		retry := closedRetry
		if !info.opens.IsZero() {
			retry = info.opens.Sub(st.LastUpdated)
		}
		h.Set("Retry-After", retryAfter(retry))
	}
	if wantsJSON(r) {
		c := NewCloudflareStatus(*st)
		c.InfiniteQueue = infiniteQueue
		m.answerJSON(w, r, code, st, info, c)
		return
	}
	r = withPageInfo(r, st, info)
	sw := &statusWriter{ResponseWriter: w, code: code}
	page.ServeHTTP(sw, r)
	if !sw.wrote {
		sw.WriteHeader(http.StatusOK) // an empty page still gets the room's status code
	}
}

// announcement is what r is told beside the queue, as Pages.Announce says: the host's
// announcement where it says something, else the room's own message (in the page's
// language, else English, else the first) and count of slots. It returns the message's
// language when the message is the room's (else language.Und).
func (m *handler) announcement(r *http.Request, st *waitingroom.Status) (Announcement, language.Tag) {
	var a Announcement
	if m.pages.Announce != nil {
		a = m.pages.Announce(r)
	}
	lang := language.Und
	if a.Message == "" && st.Message.Len() > 0 {
		a.Message, lang = st.Message.In(m.pages.Catalog.Pick(r).Tag)
	}
	if !a.ShowSlots && st.SlotsCounted {
		a.SlotsLeft, a.ShowSlots = st.Slots, true
	}
	return a, lang
}

func (m *handler) setCookie(w http.ResponseWriter, r *http.Request, value string, maxAge time.Duration) {
	c := &http.Cookie{
		Name:     m.cookie.Name,
		Value:    value,
		Path:     m.cookie.Path,
		Domain:   m.cookie.Domain,
		HttpOnly: true,
		Secure:   m.cookie.secure(r),
		SameSite: http.SameSiteLaxMode,
	}
	if maxAge > 0 {
		c.MaxAge = int((maxAge + time.Second - 1) / time.Second)
	} else {
		c.MaxAge = -1
	}
	// One Set-Cookie per name (RFC 6265 4.1.1): a revoke on the admitting request replaces
	// the pass it was just given.
	h := w.Header()
	prefix := m.cookie.Name + "="
	kept := h["Set-Cookie"][:0]
	for _, v := range h["Set-Cookie"] {
		if !strings.HasPrefix(v, prefix) {
			kept = append(kept, v)
		}
	}
	h["Set-Cookie"] = append(kept, c.String())
}

// admittance is an admitted request's link back to the room, for Release and revoke.
type admittance struct {
	m    *handler
	pass token.Pass
	w    http.ResponseWriter
	r    *http.Request
	rw   responseWriter

	mu       sync.Mutex
	released bool
	err      error
}

func (a *admittance) release(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.released {
		return a.err
	}
	a.released = true
	a.err = a.m.room.Release(context.WithoutCancel(ctx), a.pass)
	if !a.rw.wrote {
		a.m.setCookie(a.w, a.r, "", 0)
	}
	return a.err
}

// responseWriter removes the command header when the handler sends its header, and acts on
// a revoke when the request was admitted (a is nil otherwise).
type responseWriter struct {
	http.ResponseWriter
	a     *admittance
	wrote bool
}

func (w *responseWriter) WriteHeader(code int) {
	if !w.wrote {
		w.command()
		// An informational header (103 Early Hints, say) is sent at once, with the header
		// map, and the final one follows: watch for the command until then.
		w.wrote = code < 100 || code > 199 || code == http.StatusSwitchingProtocols
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Flush implements http.Flusher when the underlying writer does.
func (w *responseWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// ReadFrom keeps the underlying writer's io.ReaderFrom (sendfile for http.ServeFile) in
// reach of io.Copy.
func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(struct{ io.Writer }{w.ResponseWriter}, src)
}

// Hijack implements http.Hijacker for handlers that assert it rather than use
// http.ResponseController (WebSocket libraries, say); it fails with http.ErrNotSupported
// when no writer underneath can hijack. The handler's header is never sent, but a revoke
// in it is still acted on.
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, buf, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && !w.wrote {
		w.command()
		w.wrote = true
	}
	return conn, buf, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *responseWriter) command() {
	h := w.ResponseWriter.Header()
	cmd := h.Get(CommandHeader)
	if cmd == "" {
		return
	}
	h.Del(CommandHeader)
	if w.a != nil && strings.EqualFold(strings.TrimSpace(cmd), "revoke") {
		if err := w.a.release(w.a.r.Context()); err != nil {
			w.a.m.onError(w.a.r, err)
		}
	}
}

// statusWriter gives the waiting page the room's status code in place of 200.
type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	if code == http.StatusOK {
		code = w.code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Flush implements http.Flusher, sending the room's status code first.
func (w *statusWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// wantsJSON reports whether the Accept header lists application/json with a non-zero q.
func wantsJSON(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	for accept != "" {
		var part string
		part, accept, _ = strings.Cut(accept, ",")
		mediaType, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(mediaType), "application/json") {
			continue
		}
		for params != "" {
			var p string
			p, params, _ = strings.Cut(params, ";")
			if k, v, _ := strings.Cut(p, "="); strings.TrimSpace(k) == "q" {
				if q, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && q == 0 {
					return false
				}
			}
		}
		return true
	}
	return false
}

// serveOutage answers a request the room could not decide, the store having failed: 503
// with Retry-After, the outage page or JSON. The visitor's cookie is left as it was.
func (m *handler) serveOutage(w http.ResponseWriter, r *http.Request) {
	cfg := m.room.Config()
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Retry-After", retryAfter(cfg.RefreshInterval))
	st := &waitingroom.Status{
		Room:            m.room.ID(),
		Method:          cfg.QueueingMethod,
		QueueAll:        cfg.QueueAll,
		Wait:            estimate.Unknown("the store failed"),
		LastUpdated:     m.clock(),
		RefreshInterval: cfg.RefreshInterval,
		Message:         m.room.Message(), // in the settings: no store needed
	}
	info := &pageInfo{kind: outageKind, interrupt: m.interruption(w, r)}
	if wantsJSON(r) {
		c := NewCloudflareStatus(*st)
		c.Outage = true
		m.answerJSON(w, r, http.StatusServiceUnavailable, st, info, c)
		return
	}
	sw := &statusWriter{ResponseWriter: w, code: http.StatusServiceUnavailable}
	m.outage.ServeHTTP(sw, withPageInfo(r, st, info))
	if !sw.wrote {
		sw.WriteHeader(http.StatusOK)
	}
}

// retryAfter is d as a Retry-After value: whole seconds, rounded up, at least 1, so that a
// client never comes back before d.
func retryAfter(d time.Duration) string { return strconv.FormatInt(max(secondsUp(d), 1), 10) }

// nextOpening is when the first of events after now opens its pre-queue, or starts; zero
// for none.
func nextOpening(events []waitingroom.Event, now time.Time) time.Time {
	for _, e := range events { // sorted by start
		open := e.PrequeueStart
		if open.IsZero() {
			open = e.Start
		}
		if open.After(now) {
			return open
		}
	}
	return time.Time{}
}
