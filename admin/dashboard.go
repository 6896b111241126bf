package admin

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The dashboard: the operator's pages, served by the Handler next to the API.
//
//	GET  /                                  303 to /dashboard/
//	GET  /dashboard/login, POST             the login form; a token's secret for a session cookie
//	POST /dashboard/logout
//	GET  /dashboard/                        every room, busiest first (?sort=, &order=)
//	GET  /dashboard/rooms.json              the same rows as JSON, for the page's script
//	GET  /dashboard/rooms/{id}              a room: live figures, chart, settings, forecast,
//	                                        what the queue is told
//	GET  /dashboard/rooms/{id}/live         its figures as JSON
//	GET  /dashboard/rooms/{id}/chart        its 60-minute chart, an HTML fragment
//	GET  /dashboard/rooms/{id}/forecast     the planner's forecast for settings in the query
//	POST /dashboard/rooms/{id}/settings     save the settings form
//	POST /dashboard/rooms/{id}/message      save its message to the queue, by language
//	POST /dashboard/rooms/{id}/slots        set its count of slots left, or stop counting
//	GET  /dashboard/rooms/{id}/{action}     confirm queue-all, suspend or resume; POST does it
//	GET  /dashboard/static/{file}           the stylesheet and the script
//
// Pages need a session; the API's bearer tokens do not open them, nor does a session open
// the API. Every unsafe request goes through http.CrossOriginProtection first, so another
// site cannot post a form here, even to log a browser in. The pages work without
// JavaScript; with it, they follow the rooms live (see dashboard/dashboard.js).

//go:embed dashboard
var dashboardFiles embed.FS

const dashboardRoot = "/dashboard/"

// dashboardPath reports whether the dashboard serves path.
func dashboardPath(p string) bool {
	return p == "/" || p == "/dashboard" || strings.HasPrefix(p, dashboardRoot)
}

// csp allows the dashboard's own stylesheet and script and nothing else: no inline code,
// no other origin, no framing.
const csp = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"

// dashboard serves the pages. Safe for concurrent use.
type dashboard struct {
	h        *Handler
	serve    http.Handler // the routes behind the cross-origin check
	sessions sessions
	logins   loginLimiter
	now      func() time.Time // the sessions' and the login limiter's clock
	plans    chan struct{}    // bounds the forecasts computed at once
}

func newDashboard(h *Handler) *dashboard {
	d := &dashboard{h: h, now: time.Now, plans: make(chan struct{}, 2)}
	m := http.NewServeMux()
	home := http.RedirectHandler(dashboardRoot, http.StatusSeeOther)
	m.Handle("GET /{$}", home)
	m.Handle("GET /dashboard", home)
	m.HandleFunc("GET /dashboard/static/{file}", serveAsset)
	m.HandleFunc("GET /dashboard/login", d.loginForm)
	m.HandleFunc("POST /dashboard/login", d.login)
	m.HandleFunc("POST /dashboard/logout", d.logout)
	m.HandleFunc("GET /dashboard/{$}", d.page(d.overview))
	m.HandleFunc("GET /dashboard/rooms.json", d.data(d.overviewJSON))
	m.HandleFunc("GET /dashboard/rooms/{id}", d.page(d.room))
	m.HandleFunc("GET /dashboard/rooms/{id}/live", d.data(d.roomJSON))
	m.HandleFunc("GET /dashboard/rooms/{id}/chart", d.data(d.chartFragment))
	m.HandleFunc("GET /dashboard/rooms/{id}/forecast", d.data(d.forecastJSON))
	m.HandleFunc("POST /dashboard/rooms/{id}/settings", d.write(d.saveSettings))
	m.HandleFunc("POST /dashboard/rooms/{id}/message", d.write(d.saveMessage))
	m.HandleFunc("POST /dashboard/rooms/{id}/slots", d.write(d.saveSlots))
	for _, a := range actions {
		m.HandleFunc("GET /dashboard/rooms/{id}/"+a.name, d.write(d.confirm))
		m.HandleFunc("POST /dashboard/rooms/{id}/"+a.name, d.write(d.act))
	}
	m.HandleFunc("/dashboard/", d.page(func(w http.ResponseWriter, r *http.Request, cred *credential) {
		d.problem(w, r, cred, http.StatusNotFound, "Not found", "There is no such page.")
	}))
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.log.Warn("admin: cross-origin request refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr,
			"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
		d.problem(w, r, nil, http.StatusForbidden, "Refused",
			"This request came from another site and was refused. Nothing was changed.")
	}))
	d.serve = cop.Handler(m)
	return d
}

func (d *dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	if r.Method == http.MethodPost {
		// A form of a few numbers, or of ten messages of 500 bytes, percent-encoded.
		r.Body = http.MaxBytesReader(w, r.Body, 32<<10)
	}
	d.serve.ServeHTTP(w, r)
}

// Sessions and scopes.

// session returns the credential of r's session cookie, or nil.
func (d *dashboard) session(r *http.Request) *credential {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	return d.sessions.get(c.Value, d.now())
}

// page wraps a page: without a session, the browser is sent to log in and come back.
func (d *dashboard) page(f func(http.ResponseWriter, *http.Request, *credential)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cred := d.session(r)
		if cred == nil {
			http.Redirect(w, r, "/dashboard/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		f(w, r, cred)
	}
}

// data wraps what the pages' script fetches: without a session, 401 in JSON.
func (d *dashboard) data(f func(http.ResponseWriter, *http.Request, *credential)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cred := d.session(r)
		if cred == nil {
			writeJSON(w, http.StatusUnauthorized, errorBody{apiError{Code: "unauthorized", Message: "the session has ended; log in again"}})
			return
		}
		f(w, r, cred)
	}
}

// write wraps a change: it needs a session of a ReadWrite token.
func (d *dashboard) write(f func(http.ResponseWriter, *http.Request, *credential)) http.HandlerFunc {
	return d.page(func(w http.ResponseWriter, r *http.Request, cred *credential) {
		if cred.scope != ReadWrite {
			d.h.log.Warn("admin: request refused", "by", cred.name, "method", r.Method, "path", r.URL.Path, "status", http.StatusForbidden)
			d.problem(w, r, cred, http.StatusForbidden, "Read-only",
				fmt.Sprintf("Token %q is read-only: it can look, not change. Nothing was changed.", cred.name))
			return
		}
		f(w, r, cred)
	})
}

// loginForm answers GET /dashboard/login.
func (d *dashboard) loginForm(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if d.session(r) != nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	msg := ""
	if r.URL.Query().Has("out") {
		msg = "You are logged out."
	}
	d.render(w, r, http.StatusOK, "login", nil, "Log in", loginView{Next: next, Notice: msg})
}

// login answers POST /dashboard/login: the secret of a token for a session.
func (d *dashboard) login(w http.ResponseWriter, r *http.Request) {
	now := d.now()
	next := safeNext(r.PostFormValue("next"))
	if !d.logins.allowed(r, now) {
		d.h.log.Warn("admin: dashboard login refused: too many failures", "remote", r.RemoteAddr)
		w.Header().Set("Retry-After", strconv.Itoa(int(loginEvery/time.Second)))
		d.render(w, r, http.StatusTooManyRequests, "login", nil, "Log in",
			loginView{Next: next, Error: "Too many failed logins from your address. Wait a minute and try again."})
		return
	}
	cred := d.h.match(r.PostFormValue("secret"))
	if cred == nil {
		d.logins.failed(r, now)
		d.h.log.Warn("admin: dashboard login failed", "remote", r.RemoteAddr, "reason", "unknown token")
		d.render(w, r, http.StatusUnauthorized, "login", nil, "Log in",
			loginView{Next: next, Error: "That is not the secret of a token of this dashboard."})
		return
	}
	id, err := d.sessions.start(cred, now)
	if err != nil {
		d.h.log.Error("admin: starting a dashboard session failed", "by", cred.name, "err", err)
		d.problem(w, r, nil, http.StatusServiceUnavailable, "Try again", "The session could not be started. Try again.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true,
		Secure: overTLS(r), SameSite: http.SameSiteStrictMode})
	d.h.log.Info("admin: dashboard login", "by", cred.name, "scope", cred.scope.String(), "remote", r.RemoteAddr)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout answers POST /dashboard/logout.
func (d *dashboard) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if cred := d.sessions.get(c.Value, d.now()); cred != nil {
			d.h.log.Info("admin: dashboard logout", "by", cred.name)
		}
		d.sessions.end(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: overTLS(r), SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/dashboard/login?out=1", http.StatusSeeOther)
}

// overTLS reports whether r came over TLS, to this server or to a proxy in front of it
// (which, if it lies, only keeps its own clients' cookies from coming back).
func overTLS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// safeNext is where to go after logging in: a dashboard path, never another site.
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, dashboardRoot) ||
		strings.Contains(next, "//") || strings.Contains(next, `\`) {
		return dashboardRoot
	}
	return u.RequestURI()
}

// Rendering.

// pages are the templates, each page with the layout and the shared parts.
var pages = func() map[string]*template.Template {
	funcs := template.FuncMap{
		"clock": clock,
		"about": about,
		"thousands": func(n any) string {
			switch n := n.(type) {
			case int:
				return thousands(n)
			case int64:
				return thousands(n)
			}
			return fmt.Sprint(n)
		},
		"perMinute": func(f float64) string {
			if f >= 10 {
				return thousands(int64(math.Round(f)))
			}
			return strconv.FormatFloat(f, 'f', 1, 64)
		},
		"asset": func(name string) string { return "/dashboard/static/" + name + "?v=" + assets[name].hash },
		"f1":    func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	}
	out := map[string]*template.Template{}
	for _, p := range []string{"login", "rooms", "room", "confirm", "problem"} {
		out[p] = template.Must(template.New(p).Funcs(funcs).ParseFS(dashboardFiles,
			"dashboard/layout.gohtml", "dashboard/parts.gohtml", "dashboard/"+p+".gohtml"))
	}
	return out
}()

// pageView is what every page shows around its own part.
type pageView struct {
	Title string
	Who   string // the token's name; empty on the login page
	Scope string
	Data  any
}

// loginView is the login page.
type loginView struct {
	Next, Notice, Error string
}

func (d *dashboard) render(w http.ResponseWriter, r *http.Request, status int, page string, cred *credential, title string, data any) {
	v := pageView{Title: title, Data: data}
	if cred != nil {
		v.Who, v.Scope = cred.name, cred.scope.String()
	}
	var b strings.Builder
	if err := pages[page].ExecuteTemplate(&b, "layout", v); err != nil {
		d.h.log.Error("admin: rendering a page failed", "page", page, "err", err)
		http.Error(w, "the page could not be shown", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// problemView is a page that says what went wrong.
type problemView struct {
	Heading, Text string
}

func (d *dashboard) problem(w http.ResponseWriter, r *http.Request, cred *credential, status int, heading, text string) {
	d.render(w, r, status, "problem", cred, heading, problemView{Heading: heading, Text: text})
}

// unavailable answers 503 for a failed store call: its cause is logged, never shown.
func (d *dashboard) unavailable(w http.ResponseWriter, r *http.Request, cred *credential, err error) {
	d.h.log.Error("admin: store failed", "by", cred.name, "method", r.Method, "path", r.URL.Path, "err", err)
	d.problem(w, r, cred, http.StatusServiceUnavailable, "Store unavailable",
		"The settings store could not be reached. Nothing was changed; try again.")
}

// The stylesheet and the script, served with a hash of their content in the URL.

type asset struct {
	body, ctype, hash string
}

var assets = func() map[string]asset {
	out := map[string]asset{}
	for name, ctype := range map[string]string{
		"dashboard.css": "text/css; charset=utf-8", "dashboard.js": "text/javascript; charset=utf-8", "favicon.svg": "image/svg+xml",
	} {
		b, err := dashboardFiles.ReadFile("dashboard/" + name)
		if err != nil {
			panic(err) // embedded: a build without it is broken
		}
		sum := sha256.Sum256(b)
		out[name] = asset{body: string(b), ctype: ctype, hash: hex.EncodeToString(sum[:6])}
	}
	return out
}()

func serveAsset(w http.ResponseWriter, r *http.Request) {
	a, ok := assets[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.URL.Query().Get("v") == a.hash {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	w.Header().Set("Content-Type", a.ctype)
	_, _ = w.Write([]byte(a.body))
}

// Numbers and times as the pages write them.

// thousands writes n with thin separators: 12,345.
func thousands[T int | int64](n T) string {
	s := strconv.FormatInt(int64(n), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// clock writes a duration as a person reads it: 45 s, 3 min 20 s, 2 h 05 min.
func clock(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour && d%time.Minute == 0:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < time.Hour:
		return fmt.Sprintf("%d min %02d s", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%d h %02d min", int(d.Hours()), int(d.Minutes())%60)
}

// about writes a forecast's duration in whole minutes: under a minute, 12 min, 3 h 20 min.
func about(d time.Duration) string {
	switch {
	case d <= 0:
		return "no wait"
	case d < time.Minute:
		return "under a minute"
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(math.Round(d.Minutes())))
	case d < 48*time.Hour:
		m := int(math.Round(d.Minutes()))
		return fmt.Sprintf("%d h %02d min", m/60, m%60)
	}
	return fmt.Sprintf("%.1f days", d.Hours()/24)
}
