package middleware

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/language"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/estimate"
)

// CloudflareStatus is the JSON answer for apps that ask with Accept: application/json, in the
// hosted rooms' field names (so their clients work unchanged) plus usersAhead and the fields
// after it. Durations are whole minutes; the hosted room's times are ISO-8601.
type CloudflareStatus struct {
	InWaitingRoom                bool   `json:"inWaitingRoom"`
	WaitTimeKnown                bool   `json:"waitTimeKnown"`
	WaitTime                     int64  `json:"waitTime"`
	WaitTime25Percentile         int64  `json:"waitTime25Percentile"`
	WaitTime50Percentile         int64  `json:"waitTime50Percentile"`
	WaitTime75Percentile         int64  `json:"waitTime75Percentile"`
	WaitTimeFormatted            string `json:"waitTimeFormatted"`
	QueueIsFull                  bool   `json:"queueIsFull"`
	QueueAll                     bool   `json:"queueAll"`
	LastUpdated                  string `json:"lastUpdated"`
	RefreshIntervalSeconds       int64  `json:"refreshIntervalSeconds"` // rounded up
	QueueingMethod               string `json:"queueingMethod"`
	IsFIFOQueue                  bool   `json:"isFIFOQueue"`
	IsRandomQueue                bool   `json:"isRandomQueue"`
	IsPassthroughQueue           bool   `json:"isPassthroughQueue"`
	IsRejectQueue                bool   `json:"isRejectQueue"`
	IsEventActive                bool   `json:"isEventActive"`
	IsEventPrequeueing           bool   `json:"isEventPrequeueing"`
	TimeUntilEventStart          int64  `json:"timeUntilEventStart"`
	TimeUntilEventStartFormatted string `json:"timeUntilEventStartFormatted"`
	TimeUntilEventEnd            int64  `json:"timeUntilEventEnd"`
	TimeUntilEventEndFormatted   string `json:"timeUntilEventEndFormatted"`
	ShuffleAtEventStart          bool   `json:"shuffleAtEventStart"`
	Turnstile                    bool   `json:"turnstile"`
	InfiniteQueue                bool   `json:"infiniteQueue"`

	// Beyond the hosted rooms' fields.
	UsersAhead int64 `json:"usersAhead"`
	// RefreshIntervalMilliseconds is refreshIntervalSeconds to the millisecond: the room may
	// ask for the next poll sooner than a whole second, when the visitor's slot is due.
	RefreshIntervalMilliseconds int64  `json:"refreshIntervalMilliseconds"`
	UsersAheadAtEntry           int64  `json:"usersAheadAtEntry"`           // Status.AheadAtEntry
	Joined                      string `json:"joined,omitempty"`            // Status.Joined, ISO-8601
	Message                     string `json:"message,omitempty"`           // what the site tells the queue (see Pages.Announce)
	SlotsLeft                   *int64 `json:"slotsLeft,omitempty"`         // the places left, when shown (see Pages.Announce)
	SlotsRemaining              *int64 `json:"slotsRemaining,omitempty"`    // slotsLeft, under issue 14's name: always the same
	SoldOut                     bool   `json:"soldOut,omitempty"`           // Status.SoldOut: no place taken, none left (503)
	Outage                      bool   `json:"outage,omitempty"`            // the room cannot answer now (503)
	Reconnecting                bool   `json:"reconnecting,omitempty"`      // Status.Reconnecting
	SecondsUntilStart           int64  `json:"secondsUntilStart,omitempty"` // TimeUntilEventStart in seconds
}

// NewCloudflareStatus converts a Status to the hosted rooms' JSON fields, with the room's
// count of slots left when it keeps one (slotsLeft, slotsRemaining) and soldOut. It leaves
// message empty: the room's message depends on the visitor's language
// (st.Message.In(tag)), which the middleware's answers fill in (see Pages.Announce).
func NewCloudflareStatus(st waitingroom.Status) CloudflareStatus {
	untilFormatted := func(d time.Duration) string {
		if d <= 0 {
			return "unavailable"
		}
		return estimate.Wait{Known: true, P25: d, P75: d}.Format()
	}
	c := CloudflareStatus{
		InWaitingRoom:                true,
		WaitTimeKnown:                st.Wait.Known,
		WaitTimeFormatted:            st.Wait.Format(),
		QueueIsFull:                  st.QueueIsFull,
		QueueAll:                     st.QueueAll,
		LastUpdated:                  st.LastUpdated.UTC().Format(time.RFC3339),
		RefreshIntervalSeconds:       int64((st.RefreshInterval + time.Second - 1) / time.Second),
		QueueingMethod:               st.Method.String(),
		IsFIFOQueue:                  st.Method == waitingroom.FIFO,
		IsRandomQueue:                st.Method == waitingroom.Random,
		IsPassthroughQueue:           st.Method == waitingroom.Passthrough,
		IsRejectQueue:                st.Method == waitingroom.Reject,
		IsEventActive:                st.EventActive,
		IsEventPrequeueing:           st.EventPrequeueing,
		TimeUntilEventStart:          estimate.Minutes(st.TimeUntilEventStart),
		TimeUntilEventStartFormatted: untilFormatted(st.TimeUntilEventStart),
		TimeUntilEventEnd:            estimate.Minutes(st.TimeUntilEventEnd),
		TimeUntilEventEndFormatted:   untilFormatted(st.TimeUntilEventEnd),
		ShuffleAtEventStart:          st.ShuffleAtEventStart,
		UsersAhead:                   st.UsersAhead,
		Reconnecting:                 st.Reconnecting,
		RefreshIntervalMilliseconds:  st.RefreshInterval.Milliseconds(),
		UsersAheadAtEntry:            st.AheadAtEntry,
		SecondsUntilStart:            int64(max(st.TimeUntilEventStart+time.Second-1, 0) / time.Second),
	}
	if !st.Joined.IsZero() {
		c.Joined = st.Joined.UTC().Format(time.RFC3339)
	}
	c.SoldOut = st.SoldOut
	if st.SlotsCounted {
		n := st.Slots
		c.SlotsLeft, c.SlotsRemaining = &n, &n
	}
	if st.Wait.Known {
		c.WaitTime = estimate.Minutes(st.Wait.P50)
		c.WaitTime25Percentile = estimate.Minutes(st.Wait.P25)
		c.WaitTime50Percentile = c.WaitTime
		c.WaitTime75Percentile = estimate.Minutes(st.Wait.P75)
	}
	return c
}

// Pages configures the built-in waiting, closed and outage pages. Every field is optional.
//
// The pages need no external assets: their CSS and script are inline. The script polls the
// JSON status after each answer's refreshIntervalSeconds, updates the page in place,
// announces changes to screen readers through a polite live region, and moves on to the
// site when the visitor is let in; without JavaScript the page reloads itself.
type Pages struct {
	// Catalog holds the languages. Default: DefaultCatalog.
	Catalog *Catalog
	// Nonce returns the nonce of the host's Content-Security-Policy for r, which the
	// pages' <style> and <script> then carry. Default: each page sets a policy of its own
	// that allows only its own style and script, with a fresh nonce, and nothing else.
	Nonce func(r *http.Request) string
	// Location is the time zone of the times on the pages. Default time.Local.
	Location *time.Location
	// Announce returns what the site tells waiting visitors: a message, the number of
	// places (appointments, tickets) left. It is called for every waiting and closed
	// answer, JSON too, so it should be quick. Default: nothing.
	//
	// What Announce says comes first, each part on its own: its Message where it is not
	// empty, else the room's own (Config.Messages: the page's language, else English, else
	// the first); its SlotsLeft where ShowSlots, else the room's count (Room.SetSlots)
	// when it keeps one. So a host that answers from its own code keeps doing so, and a
	// room set up by an operator needs no code.
	Announce func(r *http.Request) Announcement
}

// Announcement is what the site tells waiting visitors, shown in the page's live region
// and sent in the JSON status (message, slotsLeft and slotsRemaining).
type Announcement struct {
	Message   string // plain text; empty for none
	SlotsLeft int64  // places left, shown when ShowSlots
	ShowSlots bool
}

// WithPages configures the built-in pages (see Pages). Pages replaced with
// WithWaitingPage, WithClosedPage or WithOutagePage are not affected, but JSON answers
// still carry the Announcement.
func WithPages(p Pages) Option {
	return func(m *handler) error {
		if p.Catalog == nil {
			p.Catalog = DefaultCatalog()
		}
		if p.Location == nil {
			p.Location = time.Local
		}
		m.pages = &p
		return nil
	}
}

// WithOutagePage sets the page shown when the store fails and the middleware fails closed
// (see WithFailOpen). It may read a Status with StatusFromContext (RefreshInterval is when
// to try again); its status code 200 is replaced by 503, and Retry-After and
// Cache-Control: no-store are set. JSON clients get 503 with the status, "outage": true.
// Default (and nil): the built-in page, which tries again by itself.
func WithOutagePage(h http.Handler) Option {
	return func(m *handler) error {
		if h != nil {
			m.outage = h
		}
		return nil
	}
}

//go:embed page.gohtml
var pageHTML string

//go:embed page.js
var pageJS string

var pageTemplate = template.Must(template.New("page").Parse(pageHTML))

// PageHeader is the request header with which the built-in pages' script asks the JSON
// status to carry the page's texts as well ("Waiting-Room-Page: texts").
const PageHeader = "Waiting-Room-Page"

// closedRetry is the Retry-After of the closed page when no event opens the room later.
const closedRetry = 5 * time.Minute

type pageKind uint8

const (
	waitingKind pageKind = iota
	closedKind
	outageKind
)

// pageInfo is what the middleware tells the built-in pages beside the Status.
type pageInfo struct {
	kind      pageKind
	announce  Announcement
	opens     time.Time // closed: when an event opens the room again
	interrupt *Interruption
	msgLang   language.Tag // the language of announce.Message when it is the room's (Und: the host's)
}

type pageInfoKey struct{}

// texts are what a built-in page shows, rendered on the server for the first paint (and
// for browsers without JavaScript), and sent again with each JSON answer the page's script
// asks for, so that one piece of Go words every state.
type texts struct {
	Title        string `json:"title"`
	Heading      string `json:"heading"`
	Intro        string `json:"intro"`
	Opens        string `json:"opens"`
	AheadLabel   string `json:"aheadLabel"`
	Ahead        string `json:"ahead"`
	AheadWord    bool   `json:"aheadWord"` // Ahead is words, not a count
	Wait         string `json:"wait"`
	Around       string `json:"around"`
	Progress     int64  `json:"progress"` // percent
	ProgressText string `json:"progressText"`
	Note         string `json:"note"`
	Slots        string `json:"slots"`
	Message      string `json:"message"`
	// MessageLang is the language of Message where it is not the page's (the room's
	// message may be written in fewer languages than the page has): its lang attribute.
	MessageLang string `json:"messageLang,omitempty"`
	Keep        string `json:"keep"`
	Joined      string `json:"joined"`
	Updated     string `json:"updated"`
	Announce    string `json:"announce"` // what a screen reader hears when this changes
	// AnnounceMessage is what a screen reader hears when Message changes, once: the page's
	// one live region says it, as it says Announce (a live region inside the message's box,
	// hidden until there is a message, would miss it).
	AnnounceMessage string `json:"announceMessage,omitempty"`
}

// words words the state st of a page of kind.
func (p *Pages) words(msg *Messages, st *waitingroom.Status, info *pageInfo) texts {
	at := func(t time.Time) time.Time { return t.In(p.Location) }
	var t texts
	switch info.kind {
	case closedKind:
		t.Heading, t.Intro = msg.ClosedTitle, msg.Closed
		if st.SoldOut {
			t.Heading, t.Intro = msg.SoldOutTitle, msg.SoldOut
		}
		if !info.opens.IsZero() {
			o := at(info.opens)
			t.Opens = fill(msg.ClosedOpens, "date", msg.date(o), "time", msg.clock(o))
		}
		t.Announce = t.Heading + " " + t.Intro
	case outageKind:
		t.Heading = msg.OutageTitle
		n := max(secondsUp(st.RefreshInterval), 1) // as Retry-After says
		t.Intro = fill(msg.Outage, "time", msg.count(msg.Seconds, n), "n", msg.number(n))
		t.Updated = fill(msg.Updated, "time", msg.clockSeconds(at(st.LastUpdated)))
		t.Announce = t.Heading
	default:
		p.wordsWaiting(msg, st, &t, at)
	}
	t.Message = info.announce.Message
	if t.Message != "" {
		t.AnnounceMessage = msg.MessageLabel + ": " + t.Message
		if info.msgLang != language.Und && !sameLanguage(info.msgLang, msg.Tag) {
			t.MessageLang = info.msgLang.String()
		}
	}
	if info.announce.ShowSlots && !st.SoldOut { // (sold out, the heading says it)
		t.Slots = msg.count(msg.SlotsLeft, max(info.announce.SlotsLeft, 0))
		t.Announce += " " + sentence(msg.Tag, t.Slots) // said with the count, as often
		if info.kind == waitingKind && info.announce.SlotsLeft <= 0 {
			// Honest about what the wait may bring; the place is kept all the same. Said
			// too: the note's change is a new state, said at once (page.js).
			t.Note = strings.TrimSpace(msg.NoneLeft + " " + t.Note)
			t.Announce += " " + msg.NoneLeft
		}
	}
	t.Title = t.Heading
	if msg.Site != "" {
		t.Title += " – " + msg.Site
	}
	return t
}

// sentence ends s with a full stop of language tag's (。 in Japanese and Chinese) unless it
// ends with one: a count ("3 places left") said before another sentence.
func sentence(tag language.Tag, s string) string {
	if s == "" || strings.ContainsAny(s[len(s)-1:], ".!?") || strings.HasSuffix(s, "。") {
		return s
	}
	if b, _ := tag.Base(); b.String() == "ja" || b.String() == "zh" {
		return s + "。"
	}
	return s + "."
}

// sameLanguage reports whether a and b are one language in one script: "en-GB" and "en",
// but not "zh-Hant" and "zh-Hans".
func sameLanguage(a, b language.Tag) bool {
	ba, _ := a.Base()
	bb, _ := b.Base()
	sa, _ := a.Script()
	sb, _ := b.Script()
	return ba == bb && sa == sb
}

func (p *Pages) wordsWaiting(msg *Messages, st *waitingroom.Status, t *texts, at func(time.Time) time.Time) {
	shuffle := st.ShuffleAtEventStart
	ordered := st.Method != waitingroom.Random && !(st.EventPrequeueing && shuffle)
	t.Heading, t.Keep = msg.WaitingTitle, msg.KeepOpen
	t.AheadLabel = msg.AheadLabel
	if !ordered {
		t.AheadLabel = msg.OthersLabel
	}
	switch {
	case st.EventPrequeueing:
		t.Heading, t.Intro = msg.PrequeueTitle, msg.PrequeueFIFO
		if shuffle {
			t.Intro = msg.Shuffle
		}
		now, start := at(st.LastUpdated), at(st.LastUpdated.Add(st.TimeUntilEventStart))
		layout := msg.Opens
		if y, m, d := now.Date(); start.Year() != y || start.Month() != m || start.Day() != d {
			layout = msg.OpensOn
		}
		t.Opens = fill(layout, "date", msg.date(start), "time", msg.clock(start), "in", msg.duration(st.TimeUntilEventStart))
	case st.Reconnecting:
		t.Intro = msg.Fallback
	case st.Method == waitingroom.Random:
		t.Intro = msg.Random
	default:
		t.Intro = msg.FIFO
		if st.EventActive && shuffle {
			t.Note = msg.Drawn
		}
	}
	t.Ahead = msg.count(msg.People, st.UsersAhead)
	if ordered && st.UsersAhead == 0 {
		t.Ahead, t.AheadWord = msg.Next, true
	}
	switch {
	case st.QueueAll:
		t.Note = msg.Paused
	case st.EventPrequeueing:
	case !st.Wait.Known:
		t.Wait = msg.WaitUnknown
	default:
		t.Wait = msg.waitRange(st.Wait.P25, st.Wait.P75)
		if st.QueueIsFull {
			t.Note = msg.Full
		} else {
			t.Around = fill(msg.Around, "time", msg.clock(at(st.LastUpdated.Add(st.Wait.P50))))
		}
	}
	t.Progress = -1
	if ordered && !st.EventPrequeueing && st.AheadAtEntry > 0 {
		gone := st.AheadAtEntry - min(st.UsersAhead, st.AheadAtEntry)
		t.Progress = gone * 100 / st.AheadAtEntry
		t.ProgressText = fill(msg.ProgressValue, "gone", msg.number(gone), "total", msg.number(st.AheadAtEntry))
	}
	if !st.Joined.IsZero() {
		t.Joined = fill(msg.Joined, "time", msg.clock(at(st.Joined)))
	}
	t.Updated = fill(msg.Updated, "time", msg.clockSeconds(at(st.LastUpdated)))
	switch {
	case st.QueueAll:
		t.Announce = msg.Paused
	case st.EventPrequeueing:
		t.Announce = t.Opens
	case ordered && st.UsersAhead == 0:
		t.Announce = msg.Next + "."
	default:
		t.Announce = msg.count(msg.AnnounceAhead, st.UsersAhead)
	}
	if t.Wait != "" && !st.QueueAll {
		t.Announce += " " + fill(msg.AnnounceWait, "wait", t.Wait)
	}
}

// pageView is what page.gohtml renders.
type pageView struct {
	Lang            string
	Msg             *Messages
	T               texts
	Nonce           string
	Notice          *noticeView
	NoScriptRefresh string
	NoScriptText    string
	Languages       []langLink
	Config          pageConfig
	Script          template.JS
}

type noticeView struct {
	Text, Kept, CookiesOff string
}

type langLink struct {
	Tag, Name, Href string
	Current         bool
}

// pageConfig is the script's configuration, in the page as JSON.
type pageConfig struct {
	Poll         string `json:"poll"`    // the URL polled, with Accept: application/json
	Next         string `json:"next"`    // where to go when the visitor is let in
	Refresh      int64  `json:"refresh"` // milliseconds to the first poll; 0: none
	Reopen       int64  `json:"reopen"`  // closed page: seconds to the opening, then reload
	NeedsCookies bool   `json:"needsCookies"`
	Turn         string `json:"turn"`
	TurnTitle    string `json:"turnTitle"`
	Reconnecting string `json:"reconnecting"`
	CookiesOff   string `json:"cookiesOff"`
}

// page is the built-in page of the kind in the request's context.
func (p *Pages) page(cookie Cookie) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, _ := StatusFromContext(r.Context())
		info, _ := r.Context().Value(pageInfoKey{}).(*pageInfo)
		if info == nil {
			info = &pageInfo{}
			if st.Method == waitingroom.Reject {
				info.kind = closedKind
			}
		}
		msg, chosen := p.Catalog.pick(r)
		h := w.Header()
		if chosen != "" {
			http.SetCookie(w, &http.Cookie{Name: langCookie, Value: chosen, Path: "/", MaxAge: 365 * 24 * 3600,
				HttpOnly: true, Secure: cookie.secure(r), SameSite: http.SameSiteLaxMode})
		}
		nonce := p.nonce(w, r)
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Add("Vary", "Accept-Language, Cookie")

		next := nextURL(r, cookie.Path)
		v := pageView{
			Lang:   msg.Tag.String(),
			Msg:    msg,
			T:      p.words(msg, &st, info),
			Nonce:  nonce,
			Script: template.JS(pageJS),
			Config: pageConfig{
				Poll: next, Next: next,
				Turn: msg.Turn, TurnTitle: msg.TurnTitle, Reconnecting: msg.Reconnecting, CookiesOff: msg.CookiesOff,
			},
		}
		if info.kind != closedKind {
			secs := max(secondsUp(st.RefreshInterval), 1)
			v.Config.Refresh, v.Config.NeedsCookies = max(st.RefreshInterval.Milliseconds(), 100), info.kind == waitingKind
			v.NoScriptRefresh = strconv.FormatInt(secs, 10)
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				v.NoScriptRefresh += "; url=" + next
			}
			v.NoScriptText = fill(msg.NoScript, "time", msg.count(msg.Seconds, secs), "n", msg.number(secs))
		} else if !info.opens.IsZero() && !st.LastUpdated.IsZero() {
			v.Config.Reopen = int64(info.opens.Sub(st.LastUpdated)/time.Second) + 1
		}
		if in := info.interrupt; in != nil {
			v.Notice = in.notice(msg, p.Location)
		}
		for _, l := range p.Catalog.Languages() {
			v.Languages = append(v.Languages, langLink{Tag: l.Tag.String(), Name: l.Name, Href: withLang(next, l.Tag.String()), Current: l == msg})
		}
		pageTemplate.Execute(w, v)
	})
}

// nonce returns the nonce for r's page, setting a policy of the page's own when the host
// gave none.
func (p *Pages) nonce(w http.ResponseWriter, r *http.Request) string {
	if p.Nonce != nil {
		return p.Nonce(r)
	}
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	n := base64.RawURLEncoding.EncodeToString(b[:])
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+n+"'; style-src 'nonce-"+n+
		"'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	return n
}

// nextURL is where the page goes when the visitor is let in, and what it polls: the
// request's own URL for a GET; for a form sent (a POST), the page it came from when the
// browser says so and it is this site's, else the cookie's path, so that a reload never
// sends the form again.
func nextURL(r *http.Request, fallback string) string {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return localPath(r.URL.RequestURI())
	}
	if ref, err := url.Parse(r.Referer()); err == nil && ref.Host == r.Host && ref.Host != "" &&
		(ref.Scheme == "http" || ref.Scheme == "https") {
		return localPath(ref.RequestURI())
	}
	return localPath(fallback)
}

// localPath is u as a path on this site: a request for //elsewhere.example/ must not send
// the page there once the visitor is let in.
func localPath(u string) string {
	if !strings.HasPrefix(u, "/") {
		return "/"
	}
	return "/" + strings.TrimLeft(u, `/\`)
}

// withLang is u with the query parameter that chooses the language set to tag.
func withLang(u, tag string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "?" + langParam + "=" + url.QueryEscape(tag)
	}
	q := p.Query()
	q.Set(langParam, tag)
	p.RawQuery = q.Encode()
	return p.RequestURI()
}

// pageJSON is a JSON answer: the status and, when the built-in page's script asks, its texts.
type pageJSON struct {
	Room CloudflareStatus `json:"cfWaitingRoom"`
	Page *texts           `json:"waitingRoomPage,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v pageJSON) {
	body, err := json.Marshal(v)
	if err != nil { // unreachable: plain fields only
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(code)
	w.Write(append(body, '\n'))
}

// answerJSON writes st as JSON for r, with the page's texts when r asks for them.
func (m *handler) answerJSON(w http.ResponseWriter, r *http.Request, code int, st *waitingroom.Status, info *pageInfo, c CloudflareStatus) {
	c.Message = info.announce.Message
	if info.announce.ShowSlots {
		n := info.announce.SlotsLeft
		c.SlotsLeft, c.SlotsRemaining = &n, &n
	}
	v := pageJSON{Room: c}
	if r.Header.Get(PageHeader) != "" {
		t := m.pages.words(m.pages.Catalog.Pick(r), st, info)
		v.Page = &t
	}
	writeJSON(w, code, v)
}

// withPageInfo is r carrying st and info for the page.
func withPageInfo(r *http.Request, st *waitingroom.Status, info *pageInfo) *http.Request {
	ctx := context.WithValue(r.Context(), statusKey{}, st)
	ctx = context.WithValue(ctx, pageInfoKey{}, info)
	if info.interrupt != nil {
		ctx = context.WithValue(ctx, interruptKey{}, info.interrupt)
	}
	return r.WithContext(ctx)
}
