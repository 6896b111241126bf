package middleware

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/token"
)

// Protecting what people type. A session ends SessionDuration after its last renewal; a
// visitor slow to fill in a form may send it after that. Three things keep the form:
//
//   - PassFromContext gives the host the session's expiry, for a countdown, and the
//     keepalive (WithKeepalive, KeepaliveScript) renews the session while the person is
//     active on the page, within the room's rules.
//   - A form sent just after the session ended, within WithPostGrace, is let through when
//     the room can revive the session.
//   - Otherwise WithKeep lets the host keep what was sent, and the page says what happened:
//     the session had ended, or no cookie came (cookies blocked, or someone new), or the
//     visitor is still in the queue.

// Reason is why a request that sent data was not let through.
type Reason uint8

// Reasons, in Interruption.
const (
	// SessionEnded: the request carried the visitor's pass, whose session is over (it
	// expired, or was released, or is not valid in an event that began since).
	SessionEnded Reason = iota + 1
	// NoCookie: the request carried no ticket or pass the room knows: the browser refuses
	// cookies, or the visitor is new to the room (another browser, cookies cleared).
	NoCookie
	// InQueue: the request carried a ticket: the visitor is still waiting.
	InQueue
)

// Interruption says why a request that sent data (any method but GET, HEAD, OPTIONS and
// TRACE) got the waiting, closed or outage page instead of the site, and whether the host
// kept the data. The built-in pages show it; other pages read it with
// InterruptionFromContext.
type Interruption struct {
	Reason Reason
	// Ended is when the session expired, for SessionEnded with an expired pass; zero when
	// it ended otherwise (released, or not valid in an event).
	Ended time.Time
	// Kept reports that the WithKeep hook kept the request's data.
	Kept bool
}

// InterruptionFromContext returns the Interruption of a request that sent data and was not
// let through, for the waiting, closed or outage page.
func InterruptionFromContext(ctx context.Context) (Interruption, bool) {
	in, ok := ctx.Value(interruptKey{}).(*Interruption)
	if !ok {
		return Interruption{}, false
	}
	return *in, true
}

type interruptKey struct{}

// KeepFunc keeps the data of a request that cannot be let through (see Interruption), so
// that the visitor gets it back when admitted: the host reads the body (a form) and stores
// it where it will find it again, say under a random ID in a cookie it sets on w. It reports
// whether it kept the data. It must not write the response's body or status: the middleware
// answers with the page.
type KeepFunc func(w http.ResponseWriter, r *http.Request, in Interruption) bool

// WithKeep calls keep for every request that sent data and gets the waiting, closed or
// outage page instead of the site. Default: none; the page says that what was typed could
// not be kept.
func WithKeep(keep KeepFunc) Option {
	return func(m *handler) error { m.keep = keep; return nil }
}

// WithPostGrace lets a request that sends data (a form) through when it carries a pass that
// expired less than grace ago and the room revives its session, capacity allowing; the
// keepalive endpoint revives such sessions too. Otherwise the request goes on as without a
// grace (WithKeep). A pass's cookie outlives the pass by the grace, or an hour if longer,
// so that a late request is told its session ended rather than taken for a stranger's.
// Default 0: no grace; a negative grace is refused.
func WithPostGrace(grace time.Duration) Option {
	return func(m *handler) error {
		if grace < 0 {
			return fmt.Errorf("%w: WithPostGrace: negative grace %v", ErrOption, grace)
		}
		m.grace = grace
		return nil
	}
}

// errNoJoin keeps the keepalive endpoint from taking a place in the queue.
var errNoJoin = errors.New("middleware: the keepalive endpoint takes no place")

// passCookieLinger is how long, at least, a pass's cookie outlives the pass.
const passCookieLinger = time.Hour

// WithKeepalive answers requests for path (say "/waitingroom/keepalive") with the session's
// state as JSON, renewing the session as any admitted request does (at most once per
// RenewInterval, never with renewal disabled nor past the room's MaxSessionDuration):
//
//	{"active":true,"expiresInSeconds":287,"renewInSeconds":47}
//
// (renewInSeconds, rounded up, is when a renewal is due; 0 after a renewal was due means
// the room will not renew: Visit.Final), or {"active":false} once the session is over
// (beyond WithPostGrace). A renewal that was due and failed in the store answers 503 with
// Retry-After and {"active":true}: the session runs on and the script asks again. It never
// takes a place in the queue, so a page left open does not join it. KeepaliveScript calls
// it. Default: none.
func WithKeepalive(path string) Option {
	return func(m *handler) error { m.keepalive = path; return nil }
}

// PassFromContext returns the pass of an admitted request: its Expires is when the session
// ends unless renewed (after this request's renewal, if it made one), for a countdown.
func PassFromContext(ctx context.Context) (token.Pass, bool) {
	a, ok := ctx.Value(admittedKey{}).(*admittance)
	if !ok {
		return token.Pass{}, false
	}
	return a.pass, true
}

//go:embed keepalive.js
var keepaliveJS string

// KeepaliveScript returns the keepalive script for a form page of the admitted request r:
// while the page is open and the person types, clicks or scrolls, it renews the session
// through the keepalive endpoint at path (WithKeepalive) once the renewal is due, and never
// when the room does not renew. It fills elements of the host's page, in the host's words:
//
//	data-wr-session-left     the time left, m:ss
//	data-wr-session-warning  shown in the last two minutes (or third of the session)
//	data-wr-session-ended    shown once the session is over
//	data-wr-session-fixed    shown when the session cannot be extended
//	data-wr-keep-session     a button that renews at once ("Keep my session")
//
// nonce is the nonce of the page's Content-Security-Policy, if any.
func KeepaliveScript(r *http.Request, path, nonce string) template.HTML {
	cfg := struct {
		URL       string `json:"url"`
		ExpiresIn int64  `json:"expiresIn"`
		RenewIn   int64  `json:"renewIn"`
	}{URL: path, ExpiresIn: -1}
	if a, ok := r.Context().Value(admittedKey{}).(*admittance); ok {
		now := a.m.clock()
		cfg.ExpiresIn, cfg.RenewIn = seconds(a.pass.Expires.Sub(now)), secondsUp(a.pass.RenewAt.Sub(now))
	}
	b, _ := json.Marshal(cfg) // plain fields; json escapes < and > so no tag can close early
	var out []byte
	out = append(out, `<script type="application/json" id="wr-keepalive-config">`...)
	out = append(out, b...)
	out = append(out, `</script><script`...)
	if nonce != "" {
		out = append(out, ` nonce="`...)
		out = append(out, template.HTMLEscapeString(nonce)...)
		out = append(out, '"')
	}
	out = append(out, '>')
	out = append(out, keepaliveJS...)
	out = append(out, "</script>"...)
	return template.HTML(out)
}

// seconds is d in whole seconds, rounded down, at least 0: the time left is never overstated.
func seconds(d time.Duration) int64 { return int64(max(d, 0) / time.Second) }

// secondsUp is d in whole seconds, rounded up, at least 0: a renewal is never asked for
// before it is due, and 0 means it is due now, which after a renewal means none was made.
func secondsUp(d time.Duration) int64 { return int64((max(d, 0) + time.Second - 1) / time.Second) }

// sendsData reports whether r's method sends data the site would act on.
func sendsData(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// tryRevive asks the room to revive the session of raw, a pass that expired less than the
// grace ago: the visit, Admitted when it did.
func (m *handler) tryRevive(r *http.Request, raw string) (waitingroom.Visit, bool) {
	if m.grace <= 0 || raw == "" || token.LooksLikeTicket(raw) {
		return waitingroom.Visit{}, false
	}
	now := m.clock()
	p, err := m.room.Codec().ParsePass(m.room.ID(), raw, now)
	if !errors.Is(err, token.ErrExpired) || now.Sub(p.Expires) >= m.grace {
		return waitingroom.Visit{}, false
	}
	v, err := m.revive(r.Context(), p, m.enterOptions(r)...)
	if err != nil {
		if !errors.Is(err, waitingroom.ErrCanceled) {
			m.onError(r, err)
		}
		return waitingroom.Visit{}, false
	}
	return v, v.Outcome == waitingroom.Admitted
}

// interruption is why r, which sent data, was not let through, after the keep hook ran; nil
// for a request that sent none.
func (m *handler) interruption(w http.ResponseWriter, r *http.Request) *Interruption {
	if !sendsData(r) {
		return nil
	}
	in := &Interruption{Reason: NoCookie}
	raw := m.token(r)
	now := m.clock()
	switch {
	case raw == "" || raw == infiniteQueueMarker:
	case token.LooksLikeTicket(raw):
		if _, err := m.room.Codec().ParseTicket(m.room.ID(), raw, now); err == nil {
			in.Reason = InQueue
		}
	default:
		p, err := m.room.Codec().ParsePass(m.room.ID(), raw, now)
		switch {
		case err == nil:
			in.Reason = SessionEnded
		case errors.Is(err, token.ErrExpired):
			in.Reason, in.Ended = SessionEnded, p.Expires
		}
	}
	if m.keep != nil {
		in.Kept = m.keep(w, r, *in)
	}
	return in
}

// notice words in for the page.
func (in *Interruption) notice(msg *Messages, loc *time.Location) *noticeView {
	n := &noticeView{Kept: msg.NotKept}
	if in.Kept {
		n.Kept = msg.Kept
	}
	switch in.Reason {
	case SessionEnded:
		n.Text = msg.NotSentEndedEarly
		if !in.Ended.IsZero() {
			n.Text = fill(msg.NotSentEnded, "time", msg.clock(in.Ended.In(loc)))
		}
	case InQueue:
		n.Text = msg.NotSentWaiting
	default:
		n.Text, n.CookiesOff = msg.NotSentNoCookie, msg.NotSentCookiesOff+" "+n.Kept
	}
	return n
}

// keepaliveAnswer is the keepalive endpoint's JSON.
type keepaliveAnswer struct {
	Active    bool   `json:"active"`
	ExpiresIn *int64 `json:"expiresInSeconds,omitempty"`
	RenewIn   *int64 `json:"renewInSeconds,omitempty"`
}

// serveKeepalive answers the keepalive endpoint (WithKeepalive).
func (m *handler) serveKeepalive(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	raw := m.token(r)
	if raw == "" || token.LooksLikeTicket(raw) || raw == infiniteQueueMarker {
		m.writeKeepalive(w, http.StatusOK, keepaliveAnswer{})
		return
	}
	v, ok := m.tryRevive(r, raw)
	if !ok {
		var err error
		// Never a join: an open page must not take a place in the queue by itself.
		v, err = m.room.Enter(r.Context(), raw, m.enterOptions(r, waitingroom.BeforeJoin(func() error { return errNoJoin }))...)
		if errors.Is(err, waitingroom.ErrCanceled) {
			clientGone(w)
			return
		}
		if err != nil {
			m.onError(r, err)
			m.keepaliveLater(w)
			return
		}
	}
	if v.Degraded != nil {
		m.onError(r, v.Degraded)
	}
	switch v.Outcome {
	case waitingroom.Admitted:
		if v.Token != "" {
			// As on any admitted request, the cookie outlives the pass (WithPostGrace).
			m.setCookie(w, r, v.Token, m.cookieAge(v))
		}
		now := m.clock()
		if v.Token == "" && !v.Final && !now.Before(v.Pass.RenewAt) {
			// The renewal was due and did not happen: the store failed, for this request or
			// one alongside it. The session runs on; the script asks again (a renewal due
			// with renewInSeconds 0 would tell it the session cannot be extended).
			m.keepaliveLater(w)
			return
		}
		exp, renew := seconds(v.Pass.Expires.Sub(now)), secondsUp(v.Pass.RenewAt.Sub(now))
		m.writeKeepalive(w, http.StatusOK, keepaliveAnswer{Active: true, ExpiresIn: &exp, RenewIn: &renew})
	case waitingroom.Suspended:
		m.writeKeepalive(w, http.StatusOK, keepaliveAnswer{Active: true}) // no session to keep
	default:
		m.writeKeepalive(w, http.StatusOK, keepaliveAnswer{})
	}
}

// keepaliveLater answers a keepalive the store could not serve: the session runs on, and
// the script asks again (503, Retry-After).
func (m *handler) keepaliveLater(w http.ResponseWriter) {
	w.Header().Set("Retry-After", retryAfter(m.room.Config().RefreshInterval))
	m.writeKeepalive(w, http.StatusServiceUnavailable, keepaliveAnswer{Active: true})
}

func (m *handler) writeKeepalive(w http.ResponseWriter, code int, a keepaliveAnswer) {
	b, _ := json.Marshal(a) // plain fields
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
