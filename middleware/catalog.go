package middleware

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/feature/plural"
	"golang.org/x/text/language"
)

// Messages are one language's texts for the built-in pages. A language is one value of
// this type (see English, Japanese and SimplifiedChinese, a file each); copy one to change
// a few texts, such as Site. Texts hold placeholders in braces, {n} or {time}, which the
// pages fill in; every field but Site is required (NewCatalog checks).
type Messages struct {
	Tag  language.Tag // the language, as in an Accept-Language header
	Name string       // its name in itself, for the language links: "English", "日本語"
	// Site names the site in titles ("Vaccination booking"); empty: the texts say "the site".
	Site string

	// Times: Go layouts (time.Time.Format), in which {weekday} and {month} stand for the
	// names below.
	Time, TimeSeconds, Date string
	Weekdays                [7]string // from Sunday
	Months                  [12]string
	Group                   string // thousands separator: "1,234"

	// Durations, rounded up: up to a minute in seconds, up to an hour in minutes, under two
	// days in hours and minutes, then in days.
	Seconds, Minutes, Hours, Days Plural // "{n} minutes"
	HoursMinutes                  string // joins them: "{hours} {minutes}"
	// Range is an estimated wait: "{from} to {to}"; MinutesRange, when both ends are in
	// minutes, has the upper end as {n}: "{from} to {n} minutes".
	Range        string
	MinutesRange Plural

	// The waiting page.
	WaitingTitle  string // heading while waiting
	FIFO          string // how the line works, in order
	Random        string // ... in a random order
	KeepOpen      string // keep the page open, it moves on by itself
	AheadLabel    string // "People ahead of you"
	People        Plural // the number under it: "{n}"; "{n}人"
	OthersLabel   string // under Random and in a pre-queue to be shuffled: "Others waiting"
	Next          string // nobody is ahead
	WaitLabel     string // "Estimated wait"
	Around        string // the time of day the wait ends: "around {time}"
	WaitUnknown   string // no estimate yet
	Progress      string // the progress bar's label
	ProgressValue string // "{gone} of the {total} people ahead of you when you arrived have gone in"
	Joined        string // "You joined the queue at {time}."
	Updated       string // "Last updated {time}"
	AnnounceAhead Plural // what a screen reader hears when the number ahead changes: "{n} people ahead of you."
	AnnounceWait  string // ... and the wait: "Estimated wait {wait}."
	Turn          string // it is the visitor's turn
	TurnTitle     string // the tab's title then: "Your turn"
	Reconnecting  string // the page lost the server and keeps trying
	CookiesOff    string // the browser refuses cookies, so the visitor cannot keep a place
	Paused        string // queue-all: nobody goes in for now
	Full          string // the wait is over a day
	MessageLabel  string // the site's announcement
	SlotsLeft     Plural // "{n} places left"
	NoneLeft      string // the host counts none left; the visitor keeps its place all the same
	NoScript      string // without JavaScript: "This page reloads every {time}." ({time}: Seconds of {n})

	// Scheduled events.
	PrequeueTitle string // heading before the opening
	Opens         string // "Opens at {time}, in {in}."
	OpensOn       string // on another day: "Opens on {date} at {time}, in {in}."
	PrequeueFIFO  string // the pre-queue goes in in arrival order
	Shuffle       string // the pre-queue will be shuffled: no need to hurry
	Drawn         string // after the draw: the pre-queue first, in the drawn order

	// The closed and outage pages.
	ClosedTitle string
	Closed      string
	ClosedOpens string // "It opens on {date} at {time}."
	OutageTitle string
	Outage      string // "This page tries again by itself in {time}." ({time}: Seconds of {n})
	// The waiting page while the room decides alone (waitingroom.WithFallback): the
	// visitor keeps its place.
	Fallback string

	// The closed page of a room that is sold out (waitingroom.Status.SoldOut): nothing is
	// left, so a newcomer gets no place.
	SoldOutTitle string
	SoldOut      string

	// A form (a POST) that could not be let through, and why.
	NotSentEnded      string // the session had ended: "... at {time}."
	NotSentEndedEarly string // it had ended, time unknown (released, or not valid in an event)
	NotSentNoCookie   string // no cookie: a visitor the room does not know
	NotSentCookiesOff string // ... whose browser refuses cookies (the page checks)
	NotSentWaiting    string // the visitor is still in the queue
	Kept              string // the host kept what was typed
	NotKept           string // it did not

	Language string // the language links' label
}

// Plural is a text that depends on a count {n}. One is for the counts that a language calls
// "one" in the CLDR plural rules (1 in English; none in Japanese or Chinese), Other for the
// rest; languages with more forms phrase their texts around them.
type Plural struct{ One, Other string }

// Catalog is the languages of the built-in pages, of which each request gets one: the
// language named by the query parameter "lang" (which the page then keeps in the cookie
// "wr_lang"), else by that cookie, else the best match for Accept-Language
// (golang.org/x/text/language's Matcher, with high confidence), else the first. It is safe for concurrent use.
type Catalog struct {
	langs   []*Messages
	matcher language.Matcher
}

// ErrCatalog is returned by NewCatalog for messages that cannot make a catalog.
var ErrCatalog = errors.New("middleware: invalid catalog")

// NewCatalog returns a catalog of langs; the first is the default. Each must have every
// text (Site may be empty) and a tag of its own, except the texts this release added
// (NoneLeft, SoldOutTitle, SoldOut), which a catalogue written for the one before lacks:
// those come from the built-in catalogue of the same language, or English.
func NewCatalog(langs ...Messages) (*Catalog, error) {
	if len(langs) == 0 {
		return nil, fmt.Errorf("%w: no languages", ErrCatalog)
	}
	c := &Catalog{}
	tags := make([]language.Tag, len(langs))
	for i := range langs {
		m := langs[i]
		m.fillLate()
		if err := m.check(); err != nil {
			return nil, err
		}
		for _, t := range tags[:i] {
			if t == m.Tag {
				return nil, fmt.Errorf("%w: %v twice", ErrCatalog, m.Tag)
			}
		}
		tags[i] = m.Tag
		c.langs = append(c.langs, &m)
	}
	c.matcher = language.NewMatcher(tags)
	return c, nil
}

// fillLate fills the texts this release added, where m lacks them, from the built-in
// catalogue of m's language, or English.
func (m *Messages) fillLate() {
	from := &English
	base, _ := m.Tag.Base()
	for _, b := range []*Messages{&Japanese, &SimplifiedChinese} {
		if bb, _ := b.Tag.Base(); bb == base {
			from = b
		}
	}
	for _, f := range []struct{ to, from *string }{
		{&m.NoneLeft, &from.NoneLeft}, {&m.SoldOutTitle, &from.SoldOutTitle}, {&m.SoldOut, &from.SoldOut},
	} {
		if *f.to == "" {
			*f.to = *f.from
		}
	}
}

// DefaultCatalog returns English (the default), Japanese and Simplified Chinese.
func DefaultCatalog() *Catalog { return defaultCatalog }

var defaultCatalog = func() *Catalog {
	c, err := NewCatalog(English, Japanese, SimplifiedChinese)
	if err != nil {
		panic(err) // unreachable: the built-in texts are complete (a gap would fail every test of the package here, at init)
	}
	return c
}()

// Languages returns the catalog's languages, the default first.
func (c *Catalog) Languages() []*Messages { return c.langs }

// Pick returns the messages for r (see Catalog).
func (c *Catalog) Pick(r *http.Request) *Messages {
	m, _ := c.pick(r)
	return m
}

// langParam and langCookie carry a visitor's choice of language.
const (
	langParam  = "lang"
	langCookie = "wr_lang"
)

// pick returns the messages for r and the tag r chose with the query parameter, if any.
func (c *Catalog) pick(r *http.Request) (*Messages, string) {
	if q := r.URL.Query().Get(langParam); q != "" && len(q) < 64 {
		if t, err := language.Parse(q); err == nil {
			if _, i, conf := c.matcher.Match(t); conf >= language.High {
				return c.langs[i], c.langs[i].Tag.String()
			}
		}
	}
	var prefs []string
	if ck, err := r.Cookie(langCookie); err == nil && len(ck.Value) < 64 {
		prefs = append(prefs, ck.Value)
	}
	if al := r.Header.Get("Accept-Language"); len(al) < 1024 {
		prefs = append(prefs, al)
	}
	for _, pref := range prefs {
		desired, _, err := language.ParseAcceptLanguage(pref)
		if err != nil {
			continue
		}
		// A low confidence is a language the visitor may not read (Traditional for
		// Simplified Chinese): the default serves better.
		if _, i, conf := c.matcher.Match(desired...); conf >= language.High {
			return c.langs[i], ""
		}
	}
	return c.langs[0], ""
}

func (m *Messages) check() error {
	if m.Tag == language.Und {
		return fmt.Errorf("%w: a language has no tag", ErrCatalog)
	}
	v := reflect.ValueOf(m).Elem()
	for i := 0; i < v.NumField(); i++ {
		f, name := v.Field(i), v.Type().Field(i).Name
		missing := false
		switch x := f.Interface().(type) {
		case string:
			missing = x == "" && name != "Site"
		case Plural:
			missing = x.Other == ""
		case [7]string:
			missing = x[0] == "" || x[6] == ""
		case [12]string:
			missing = x[0] == "" || x[11] == ""
		}
		if missing {
			return fmt.Errorf("%w: %v has no %s", ErrCatalog, m.Tag, name)
		}
	}
	return nil
}

// fill replaces each {key} in s by its value; pairs are key, value, key, value...
func fill(s string, pairs ...string) string {
	if !strings.Contains(s, "{") {
		return s
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		s = strings.ReplaceAll(s, "{"+pairs[i]+"}", pairs[i+1])
	}
	return s
}

// count chooses p's form for n and fills {n}.
func (m *Messages) count(p Plural, n int64) string {
	s := p.Other
	if p.One != "" && plural.Cardinal.MatchPlural(m.Tag, int(min(max(n, 0), 1<<31-1)), 0, 0, 0, 0) == plural.One {
		s = p.One
	}
	return fill(s, "n", m.number(n))
}

// number writes n with the language's thousands separator.
func (m *Messages) number(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString(m.Group)
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (m *Messages) names(layout string, t time.Time) string {
	return fill(t.Format(layout), "weekday", m.Weekdays[t.Weekday()], "month", m.Months[t.Month()-1])
}

func (m *Messages) clock(t time.Time) string        { return m.names(m.Time, t) }
func (m *Messages) clockSeconds(t time.Time) string { return m.names(m.TimeSeconds, t) }
func (m *Messages) date(t time.Time) string         { return m.names(m.Date, t) }

// duration writes d rounded up: seconds up to a minute, minutes up to an hour, hours and
// minutes under two days, then days.
func (m *Messages) duration(d time.Duration) string {
	switch {
	case d <= time.Minute:
		return m.count(m.Seconds, int64(max(d+time.Second-1, 0)/time.Second))
	case d <= time.Hour:
		return m.count(m.Minutes, int64((d+time.Minute-1)/time.Minute))
	case d < 48*time.Hour:
		mins := int64((d + time.Minute - 1) / time.Minute)
		h, rest := mins/60, mins%60
		if rest == 0 {
			return m.count(m.Hours, h)
		}
		return fill(m.HoursMinutes, "hours", m.count(m.Hours, h), "minutes", m.count(m.Minutes, rest))
	}
	return m.count(m.Days, int64((d+24*time.Hour-1)/(24*time.Hour)))
}

// waitRange writes an estimated wait from lo to hi, in whole minutes as the JSON has them.
func (m *Messages) waitRange(lo, hi time.Duration) string {
	lo = lo.Round(time.Minute)
	hi = hi.Round(time.Minute)
	lo, hi = max(lo, time.Minute), max(hi, time.Minute)
	if hi < lo {
		lo, hi = hi, lo
	}
	switch {
	case hi <= time.Hour && lo == hi:
		return m.count(m.Minutes, int64(hi/time.Minute))
	case hi <= time.Hour:
		return fill(m.count(m.MinutesRange, int64(hi/time.Minute)), "from", m.number(int64(lo/time.Minute)))
	case lo == hi:
		return m.duration(hi)
	}
	return fill(m.Range, "from", m.duration(lo), "to", m.duration(hi))
}
