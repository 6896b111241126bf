package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"html/template"
	"log"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/waitingroom-go/waitingroom/middleware"
)

// keepalivePath is where the form's keepalive script renews the session.
const keepalivePath = "/keepalive"

// catalog is the languages of the waiting pages, named for this site; the form's own texts
// follow the same choice (formTexts).
var catalog = func() *middleware.Catalog {
	en, ja := middleware.English, middleware.Japanese
	en.Site, ja.Site = "Vaccination booking", "ワクチン接種予約"
	c, err := middleware.NewCatalog(en, ja)
	if err != nil {
		panic(err) // both are complete
	}
	return c
}()

type app struct {
	booked atomic.Int64
	total  int64
	drafts drafts
}

func newApp(appointments int, clock func() time.Time) *app {
	return &app{total: int64(appointments), drafts: drafts{clock: clock, m: map[string]draft{}}}
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.form)
	mux.HandleFunc("POST /reserve", a.reserve)
	// A browser that was queued on POST /reserve may come back with GET /reserve (a reload,
	// the history): send it to the form.
	mux.HandleFunc("GET /reserve", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// left is how many appointments can still be booked.
func (a *app) left() int64 { return max(a.total-a.booked.Load(), 0) }

// announce tells waiting visitors how many appointments are left, and when there are none.
func (a *app) announce(r *http.Request) middleware.Announcement {
	m := middleware.Announcement{SlotsLeft: a.left(), ShowSlots: true}
	if m.SlotsLeft == 0 {
		m.Message = texts(catalog.Pick(r).Tag.String()).SoldOut
	}
	return m
}

// formView is what the form page shows.
type formView struct {
	T        *formText
	Lang     string
	Nonce    string
	Error    string
	Name     string
	Slot     string
	Restored bool
	Left     int64
	Script   template.HTML
}

func (a *app) form(w http.ResponseWriter, r *http.Request) {
	v := a.view(w, r)
	if d, ok := a.drafts.get(r); ok {
		v.Name, v.Slot, v.Restored = d.name, d.slot, true
	}
	pages.ExecuteTemplate(w, "form", v)
}

func (a *app) view(w http.ResponseWriter, r *http.Request) formView {
	msg := catalog.Pick(r)
	nonce := setPolicy(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	return formView{
		T: texts(msg.Tag.String()), Lang: msg.Tag.String(), Nonce: nonce, Left: a.left(),
		Script: middleware.KeepaliveScript(r, keepalivePath, nonce),
	}
}

func (a *app) reserve(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSpace(r.FormValue("name"))
	slot := r.FormValue("slot")
	if name == "" || len(name) > 100 || !validSlot(slot) {
		v := a.view(w, r)
		v.Error, v.Name, v.Slot = v.T.Missing, name, slot
		w.WriteHeader(http.StatusBadRequest)
		pages.ExecuteTemplate(w, "form", v)
		return
	}
	n := a.booked.Add(1)
	if n > a.total {
		a.booked.Add(-1)
		v := a.view(w, r)
		v.Error, v.Name, v.Slot = v.T.SoldOut, name, slot
		w.WriteHeader(http.StatusConflict)
		pages.ExecuteTemplate(w, "form", v)
		return
	}
	a.drafts.drop(w, r)
	// Booking done: give the place to the next person in the queue.
	if err := middleware.Release(r); err != nil {
		log.Printf("booking: release: %v", err)
	}
	v := a.view(w, r)
	pages.ExecuteTemplate(w, "booked", map[string]any{"T": v.T, "Lang": v.Lang, "Nonce": v.Nonce, "Name": name, "Slot": slot, "Number": n})
}

// keepDraft keeps a booking that the room could not let through (middleware.WithKeep), so
// that the form comes back filled in when the visitor's turn comes.
func (a *app) keepDraft(w http.ResponseWriter, r *http.Request, _ middleware.Interruption) bool {
	if r.URL.Path != "/reserve" {
		return false
	}
	name := strings.TrimSpace(r.FormValue("name"))
	slot := r.FormValue("slot")
	if name == "" && slot == "" || len(name) > 100 {
		return false
	}
	return a.drafts.put(w, r, draft{name: name, slot: slot})
}

// setPolicy sets a Content-Security-Policy allowing this page's own style and script only,
// and returns its nonce.
func setPolicy(w http.ResponseWriter) string {
	var b [16]byte
	rand.Read(b[:])
	n := base64.RawURLEncoding.EncodeToString(b[:])
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+n+"'; style-src 'nonce-"+n+
		"'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	return n
}

var slots = []string{"09:00", "09:15", "09:30", "09:45", "10:00"}

func validSlot(s string) bool {
	for _, v := range slots {
		if v == s {
			return true
		}
	}
	return false
}

// draft is a booking kept while its visitor waits again.
type draft struct {
	name, slot string
	saved      time.Time
}

// drafts keeps drafts in memory under a random ID in the visitor's cookie, at most
// maxDrafts of them for draftLife. (A site with several instances keeps them in its
// database.)
type drafts struct {
	clock func() time.Time
	mu    sync.Mutex
	m     map[string]draft
}

const (
	draftCookie = "booking_draft"
	draftLife   = 2 * time.Hour
	maxDrafts   = 10_000
)

func (d *drafts) put(w http.ResponseWriter, r *http.Request, v draft) bool {
	var b [16]byte
	rand.Read(b[:])
	id := base64.RawURLEncoding.EncodeToString(b[:])
	now := d.clock()
	v.saved = now
	d.mu.Lock()
	for k, old := range d.m {
		if now.Sub(old.saved) > draftLife {
			delete(d.m, k)
		}
	}
	full := len(d.m) >= maxDrafts
	if !full {
		d.m[id] = v
	}
	d.mu.Unlock()
	if full {
		return false
	}
	http.SetCookie(w, &http.Cookie{Name: draftCookie, Value: id, Path: "/", MaxAge: int(draftLife / time.Second),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	return true
}

func (d *drafts) get(r *http.Request) (draft, bool) {
	c, err := r.Cookie(draftCookie)
	if err != nil {
		return draft{}, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.m[c.Value]
	if !ok || d.clock().Sub(v.saved) > draftLife {
		return draft{}, false
	}
	return v, true
}

func (d *drafts) drop(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(draftCookie)
	if err != nil {
		return
	}
	d.mu.Lock()
	delete(d.m, c.Value)
	d.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: draftCookie, Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
}

// formText is the form's own texts in one language.
type formText struct {
	Title, Heading, Intro, Name, Slot, Book, Missing, Restored, Left     string
	SoldOut                                                              string
	SessionLeft, SessionWarning, KeepSession, SessionEnded, SessionFixed string
	BookedTitle, BookedText, Number                                      string
}

var formTexts = map[string]*formText{
	"en": {
		Title: "Vaccination booking", Heading: "Book your vaccination",
		Intro: "Fill in your name and choose a time. There is no need to hurry: while you type, your time on the site is extended.",
		Name:  "Full name", Slot: "Time", Book: "Book",
		Missing:        "Please give your name and choose a time.",
		Restored:       "We kept what you typed before. Please check it and press Book.",
		Left:           "Appointments left: %d",
		SoldOut:        "All the appointments have been booked. We are sorry.",
		SessionLeft:    "Time left to send the form:",
		SessionWarning: "Your session ends soon. Keep typing, or press “Keep my session”.",
		KeepSession:    "Keep my session",
		SessionEnded:   "Your session has ended. You can still press Book: if the booking cannot be made at once, what you typed is kept and you get it back when it is your turn.",
		SessionFixed:   "This session cannot be extended.",
		BookedTitle:    "Booked", BookedText: "%s, your vaccination is booked for %s.", Number: "Booking number %d.",
	},
	"ja": {
		Title: "ワクチン接種予約", Heading: "ワクチン接種のご予約",
		Intro: "お名前を入力し、時間帯をお選びください。入力中はご利用時間が自動で延長されますので、慌てずにご入力ください。",
		Name:  "お名前", Slot: "時間帯", Book: "予約する",
		Missing:        "お名前を入力し、時間帯をお選びください。",
		Restored:       "前回ご入力いただいた内容を保存してあります。内容をご確認のうえ、「予約する」を押してください。",
		Left:           "残りの予約枠：%d",
		SoldOut:        "ご用意した予約枠はすべて埋まりました。申し訳ありません。",
		SessionLeft:    "フォーム送信までの残り時間：",
		SessionWarning: "まもなくご利用時間が終了します。入力を続けるか、「時間を延長する」を押してください。",
		KeepSession:    "時間を延長する",
		SessionEnded:   "ご利用時間が終了しました。このまま「予約する」を押すこともできます。すぐに予約できない場合は入力内容を保存し、順番が来たときにお戻しします。",
		SessionFixed:   "このご利用時間は延長できません。",
		BookedTitle:    "予約が完了しました", BookedText: "%s様、%sに接種のご予約を承りました。", Number: "予約番号：%d",
	},
}

func texts(tag string) *formText {
	if t, ok := formTexts[tag]; ok {
		return t
	}
	return formTexts["en"]
}

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"slots":  func() []string { return slots },
	"printf": fmt.Sprintf,
}).Parse(`
{{define "head"}}<!doctype html><html lang="{{.Lang}}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{{.T.Title}}</title>
<style nonce="{{.Nonce}}">*,*::before,*::after{box-sizing:border-box}
body{margin:0;background:#f4f6f9;color:#1b1f24;font:1.125rem/1.6 system-ui,-apple-system,"Segoe UI","Hiragino Sans","Noto Sans CJK JP",sans-serif;overflow-wrap:anywhere}
main{max-width:36rem;margin:0 auto;padding:1.25rem 1rem 2.5rem}h1{font-size:1.6rem;line-height:1.3}
.box{background:#fff;border:1px solid #c9d0da;border-radius:.75rem;padding:1rem 1.25rem;margin:0 0 1.25rem}
label{display:block;font-weight:700;margin:0 0 .25rem}
input,select,button{font:inherit;min-height:2.75rem;width:100%;max-width:100%;padding:.5rem .75rem;border:1px solid #5b6470;border-radius:.5rem;background:#fff;color:inherit}
button{width:auto;min-width:8rem;background:#1d5fbf;border-color:#1d5fbf;color:#fff;font-weight:700;cursor:pointer}
button.secondary{background:#fff;color:#0b4aa2;border-color:#1d5fbf}
:focus-visible{outline:3px solid #a15c00;outline-offset:2px}
.error{border-left:.35rem solid #b3261e;background:#fdecea;padding:.75rem 1rem}
.note{border-left:.35rem solid #1d5fbf;background:#eaf1fc;padding:.75rem 1rem}
.session{font-size:1rem}.session p{margin:.25rem 0 .75rem}[hidden]{display:none!important}
</style></head><body><main>{{end}}
{{define "form"}}{{template "head" .}}<h1>{{.T.Heading}}</h1>
{{if .Error}}<p class="error" id="error" role="alert">{{.Error}}</p>{{end}}
{{if .Restored}}<p class="note" id="restored">{{.T.Restored}}</p>{{end}}
<p>{{.T.Intro}}</p>
<form class="box" method="post" action="/reserve">
<p><label for="name">{{.T.Name}}</label><input id="name" name="name" required maxlength="100" autocomplete="name" value="{{.Name}}"></p>
<p><label for="slot">{{.T.Slot}}</label><select id="slot" name="slot">{{$slot := .Slot}}{{range slots}}<option{{if eq . $slot}} selected{{end}}>{{.}}</option>{{end}}</select></p>
<p><button type="submit">{{.T.Book}}</button></p></form>
<div class="box session" role="group" aria-label="{{.T.KeepSession}}">
<p>{{.T.SessionLeft}} <strong data-wr-session-left>–</strong></p>
<p class="note" data-wr-session-warning role="status" hidden>{{.T.SessionWarning}}</p>
<p class="note" data-wr-session-ended role="status" hidden>{{.T.SessionEnded}}</p>
<p data-wr-session-fixed hidden>{{.T.SessionFixed}}</p>
<p><button type="button" class="secondary" data-wr-keep-session>{{.T.KeepSession}}</button></p>
</div>
<p id="left">{{printf .T.Left .Left}}</p>
</main>{{.Script}}</body></html>{{end}}
{{define "booked"}}{{template "head" .}}<h1>{{.T.BookedTitle}}</h1>
<p class="box" id="booked">{{printf .T.BookedText .Name .Slot}} {{printf .T.Number .Number}}</p></main></body></html>{{end}}
`))
