package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/store"
)

// The room page: its figures, chart and trail, the settings form and its save, and the
// confirmed state buttons.

// room answers GET /dashboard/rooms/{id}; with preview=1, the settings form's values in the
// query are shown with their forecast, saving nothing (the form's Preview without script).
func (d *dashboard) room(w http.ResponseWriter, r *http.Request, cred *credential) {
	rm, ok := d.roomOf(w, r, cred)
	if !ok {
		return
	}
	q := r.URL.Query()
	shown := roomForms{}
	if msg, speak := flash(q); speak {
		shown.speakFlash = msg
	} else {
		shown.flash = msg
	}
	if q.Get("preview") != "" {
		f := d.formFrom(rm, q)
		shown.settings = &f
	}
	d.renderRoom(w, r, cred, http.StatusOK, rm, shown)
}

// roomOf returns the room of the request's path, or answers 404: a page for a page
// (cred set), JSON for the script.
func (d *dashboard) roomOf(w http.ResponseWriter, r *http.Request, cred *credential) (*waitingroom.Room, bool) {
	id := r.PathValue("id")
	if store.ValidRoom(id) {
		if rm, ok := d.h.lookup(r.Context(), id); ok {
			return rm, true
		}
	}
	if cred == nil { // the script's requests: JSON
		writeJSON(w, http.StatusNotFound, errorBody{apiError{Code: "not_found", Message: "no such room"}})
		return nil, false
	}
	d.problem(w, r, cred, http.StatusNotFound, "No such room", fmt.Sprintf("There is no room %q.", id))
	return nil, false
}

// flash is the message a redirect after a change asks for, and whether it is of the
// queue's card (whose forms lead back to it, #speak) rather than of the page.
func flash(q url.Values) (string, bool) {
	switch n := q.Get("n"); q.Get("done") {
	case "slots":
		if c, err := strconv.ParseInt(n, 10, 64); err == nil && c >= 0 {
			return "Slots left set to " + thousands(c) + ": every waiter hears it with the next refresh.", true
		}
		return "", false
	case "slots-off":
		return "Slots are not counted any more: waiters are told no count, and the room does not close as sold out.", true
	}
	v := q.Get("v")
	if !digits(v) {
		return "", false
	}
	switch q.Get("done") {
	case "message":
		return "Saved: waiters hear it with the next refresh (version " + v + " of the room's settings).", true
	case "message-unchanged":
		return "Nothing to save: the message is already so (version " + v + ").", true
	case "settings":
		return "Saved: the room runs by version " + v + " of its settings.", false
	case "unchanged":
		return "Nothing to save: the settings are already so (version " + v + ").", false
	}
	for _, a := range actions {
		if a.name == q.Get("done") {
			return a.done + " (version " + v + ").", false
		}
	}
	return "", false
}

// roomView is the room page.
type roomView struct {
	Row        roomRow
	Version    int64
	At         string // when the figures were read, the store's time
	Reason     string // why the wait of a new arrival is unknown
	Live       string
	Chart      chartView
	Form       settingsForm
	Forecast   forecastView
	Said       saidView
	Speak      speakForm
	Slots      formInput // the count entered in the slots form
	Actions    []action
	Changes    []changeRow
	Flash      string
	SpeakFlash string // of the queue's card
	CanWrite   bool
}

// roomForms are what a room page shows other than the room as it is: a form as posted
// (nil: the room's values), and the flash of a change.
type roomForms struct {
	settings          *settingsForm
	speak             *speakForm
	slots             *formInput
	flash, speakFlash string
}

// changeRow is an entry of the trail as the page shows it.
type changeRow struct {
	Version    int64
	At, By, Do string
}

func (d *dashboard) renderRoom(w http.ResponseWriter, r *http.Request, cred *credential, status int, rm *waitingroom.Room, shown roomForms) {
	ctx := r.Context()
	st := d.h.snapshot(ctx, rm)
	row := newRow(rm, st)
	form := shown.settings
	if form == nil {
		f := d.formOf(rm)
		form = &f
	}
	cfg := rm.Config()
	if form.cfg != nil {
		cfg = *form.cfg
	}
	out := roomView{
		Row: row, Version: row.version, At: d.at([]roomRow{row}), Reason: row.estimateReason, Live: row.Href + "/live",
		Chart: d.chart(ctx, rm, st), Form: *form, Said: saidOf(row.cfg), Flash: shown.flash, SpeakFlash: shown.speakFlash, CanWrite: cred.scope == ReadWrite,
	}
	if shown.speak != nil {
		out.Speak = *shown.speak
	} else {
		out.Speak = speakFormOf(row.version, row.cfg)
	}
	if shown.slots != nil {
		out.Slots = *shown.slots
	}
	if form.invalid() {
		out.Forecast = forecastView{Problem: "Fix the settings marked in the form to see their forecast."}
	} else {
		out.Forecast = d.forecast(ctx, cfg, st)
	}
	if out.CanWrite {
		for _, a := range actions {
			if a.applies(rm.Config()) {
				out.Actions = append(out.Actions, a)
			}
		}
	}
	ctx2, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if ch, err := d.h.ctl.Changes(ctx2, rm.ID()); err == nil {
		for _, c := range ch[:min(len(ch), 5)] {
			out.Changes = append(out.Changes, changeRow{Version: c.Version, At: c.At.UTC().Format("2006-01-02 15:04 UTC"), By: c.By, Do: c.What})
		}
	} else {
		d.h.log.Warn("admin: reading a room's changes failed", "room", rm.ID(), "err", err)
	}
	d.render(w, r, status, "room", cred, "Room "+rm.ID(), out)
}

// roomJSON answers GET /dashboard/rooms/{id}/live.
func (d *dashboard) roomJSON(w http.ResponseWriter, r *http.Request, cred *credential) {
	rm, ok := d.roomOf(w, r, nil)
	if !ok {
		return
	}
	row := newRow(rm, d.h.snapshot(r.Context(), rm))
	said := saidOf(row.cfg)
	var html strings.Builder
	if err := pages["room"].ExecuteTemplate(&html, "said", said); err != nil {
		d.h.log.Error("admin: rendering a room's message failed", "err", err)
	}
	writeJSON(w, http.StatusOK, struct {
		roomRow
		Version  int64             `json:"version"`
		At       string            `json:"at"`
		Reason   string            `json:"reason"`
		Messages map[string]string `json:"messages"`            // Config.Messages
		Close    bool              `json:"close_when_sold_out"` // Config.CloseWhenSoldOut
		SaidHTML string            `json:"said_html"`           // both, as the page shows them
	}{row, row.version, d.at([]roomRow{row}), row.estimateReason, row.cfg.Messages, row.cfg.CloseWhenSoldOut, html.String()})
}

// The settings form.

// settingsFields are the settings the form changes, by their JSON names: those an operator
// turns during a rush. The rest (events, methods) stay as they are; the API changes them.
var settingsFields = []struct {
	name, label, hint, unit string
	whole, more             bool // more: under "Polling", folded away until wrong or changed
}{
	{"total_active_users", "Capacity", "People on the site at once.", "", true, false},
	{"new_users_per_minute", "Rate", "People let in per minute, at most.", "/ min", true, false},
	{"session_duration", "Session", "Active this long after the last request.", "min", false, false},
	{"typical_session_seconds", "Typical stay", "A usual visit, for the estimates; 0: unknown.", "s", false, false},
	{"refresh_interval_seconds", "Refresh interval", "Waiting pages poll this often.", "s", false, true},
	{"queue_hold_seconds", "Queue hold", "A place is kept this long without a poll.", "s", false, true},
	{"arrival_grace_seconds", "Arrival grace", "A slot waits this long for its waiter.", "s", false, true},
}

// settingsForm is the form as shown: the values entered (or stored), and what is wrong.
type settingsForm struct {
	Fields   []formField
	Version  int64  // the version the form was loaded at: the precondition of the save
	Problem  string // a problem of a setting not on the form, or of the whole
	Conflict string // another change came first
	Stale    bool   // the room's version is not the form's
	cfg      *waitingroom.Config
}

type formField struct {
	Name, Label, Hint, Unit, Step string
	Value, Stored                 string
	Problem                       string
	More                          bool // folded under "Polling"
	Conflicted                    bool // another change came first: Stored is what it stored
}

// MoreOpen reports whether the folded fields are shown: one of them is wrong, was
// changed, or differs from what another change stored.
func (f settingsForm) MoreOpen() bool {
	for _, x := range f.Fields {
		if x.More && (x.Problem != "" || x.Value != x.Stored) {
			return true
		}
	}
	return false
}

func (f *settingsForm) invalid() bool {
	if f.Problem != "" {
		return true
	}
	for _, x := range f.Fields {
		if x.Problem != "" {
			return true
		}
	}
	return false
}

// stored returns the form's fields of cfg, as the JSON form writes them (its units).
func stored(cfg waitingroom.Config) map[string]string {
	doc, err := waitingroom.EncodeConfig(cfg)
	out := map[string]string{}
	var m map[string]json.RawMessage
	if err == nil && json.Unmarshal(doc, &m) == nil {
		for _, f := range settingsFields {
			out[f.name] = string(m[f.name])
		}
	}
	return out
}

// formOf is the form of rm's settings as they are.
func (d *dashboard) formOf(rm *waitingroom.Room) settingsForm {
	v, cfg := view(rm)
	vals := stored(cfg)
	f := settingsForm{Version: v}
	for _, sf := range settingsFields {
		f.Fields = append(f.Fields, newField(sf.name, vals[sf.name], vals[sf.name]))
	}
	return f
}

func newField(name, value, storedValue string) formField {
	for _, sf := range settingsFields {
		if sf.name == name {
			step := "any"
			if sf.whole {
				step = "1"
			}
			return formField{Name: name, Label: sf.label, Hint: sf.hint, Unit: sf.unit, Step: step, Value: value, Stored: storedValue, More: sf.more}
		}
	}
	return formField{Name: name, Value: value}
}

// formFrom reads the settings in q (a form or a query) over rm's: fields left out keep the
// room's values. The form's cfg is the result when every value is valid.
func (d *dashboard) formFrom(rm *waitingroom.Room, q url.Values) settingsForm {
	v, base := view(rm)
	vals := stored(base)
	f := settingsForm{Version: v}
	if fv := q.Get("version"); fv != "" {
		n, err := strconv.ParseInt(fv, 10, 64)
		if err != nil || n < 0 {
			f.Problem = "The form's version is not a number; reload the page."
		}
		f.Version = n
	}
	f.Stale = f.Version != v
	patch := map[string]json.RawMessage{}
	for _, sf := range settingsFields {
		ff := newField(sf.name, vals[sf.name], vals[sf.name])
		if q.Has(sf.name) {
			ff.Value = strings.TrimSpace(q.Get(sf.name))
			n, err := strconv.ParseFloat(ff.Value, 64)
			switch {
			case ff.Value == "":
				ff.Problem = "Enter a number."
			case err != nil || math.IsInf(n, 0) || math.IsNaN(n):
				ff.Problem = "Enter a number, such as 50."
			default:
				patch[sf.name] = json.RawMessage(strconv.FormatFloat(n, 'f', -1, 64))
			}
		}
		f.Fields = append(f.Fields, ff)
	}
	if f.invalid() {
		return f
	}
	doc, err := json.Marshal(patch)
	if err != nil {
		f.Problem = "The settings could not be read."
		return f
	}
	cfg, err := waitingroom.PatchConfig(base, doc)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		field, problem := "", "The settings could not be read."
		if ce, ok := errors.AsType[*waitingroom.ConfigError](err); ok {
			field, problem = ce.Field, ce.Problem
			if _, isJSON := goToJSON[field]; isJSON || strings.Contains(field, "Events[") {
				field, problem = waitingroom.ConfigJSONField(field), jsonProblem(problem)
			}
		}
		f.fail(field, problem)
		return f
	}
	f.cfg = &cfg
	return f
}

// fail marks field's problem, or the form's if the form has no such field.
func (f *settingsForm) fail(field, problem string) {
	for i := range f.Fields {
		if f.Fields[i].Name == field {
			f.Fields[i].Problem = problem
			return
		}
	}
	f.Problem = problem
}

// saveSettings answers POST /dashboard/rooms/{id}/settings: the form's values, saved
// against the version the form was loaded at. A change made since is shown, not
// overwritten (409); invalid values are marked (422); either way nothing is saved.
func (d *dashboard) saveSettings(w http.ResponseWriter, r *http.Request, cred *credential) {
	ctx := r.Context()
	rm, ok := d.roomOf(w, r, cred)
	if !ok {
		return
	}
	if err := r.ParseForm(); err != nil {
		d.problem(w, r, cred, http.StatusUnprocessableEntity, "Not saved", "The form could not be read. Nothing was saved.")
		return
	}
	if !r.PostForm.Has("version") {
		d.problem(w, r, cred, http.StatusUnprocessableEntity, "Not saved", "The form has no version; reload the page. Nothing was saved.")
		return
	}
	form := d.formFrom(rm, r.PostForm)
	if form.Stale {
		// The room here may be behind the store; or the form is behind the room.
		if err := rm.Sync(ctx); err != nil {
			d.unavailable(w, r, cred, err)
			return
		}
		form = d.formFrom(rm, r.PostForm)
	}
	if form.Stale {
		d.conflict(w, r, cred, rm, form)
		return
	}
	if form.invalid() {
		d.h.log.Info("admin: request refused", "by", cred.name, "method", r.Method, "path", r.URL.Path, "status", http.StatusUnprocessableEntity)
		d.renderRoom(w, r, cred, http.StatusUnprocessableEntity, rm, roomForms{settings: &form})
		return
	}
	if sameSettings(rm.Config(), *form.cfg) {
		http.Redirect(w, r, fmt.Sprintf("%s?done=unchanged&v=%d", "/dashboard/rooms/"+rm.ID(), form.Version), http.StatusSeeOther)
		return
	}
	nv, conflict, err := d.put(ctx, cred, rm, *form.cfg, form.Version, "dashboard")
	switch ce, isConfig := errors.AsType[*waitingroom.ConfigError](err); {
	case isConfig: // a rule of the room's store (Validate passed)
		form.fail(waitingroom.ConfigJSONField(ce.Field), jsonProblem(ce.Problem))
		d.renderRoom(w, r, cred, http.StatusUnprocessableEntity, rm, roomForms{settings: &form})
		return
	case err != nil:
		d.unavailable(w, r, cred, err)
		return
	case conflict:
		d.conflict(w, r, cred, rm, d.formFrom(rm, r.PostForm))
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/dashboard/rooms/%s?done=settings&v=%d", rm.ID(), nv), http.StatusSeeOther)
}

// put stores cfg as room rm's settings against version, in the trail as cred's what, as
// the API's writes do: the new version, or conflict when another change came first (the
// room is then synced to it). The error is the store's failure, or a *ConfigError for a
// setting the room's store refuses.
func (d *dashboard) put(ctx context.Context, cred *credential, rm *waitingroom.Room, cfg waitingroom.Config, version int64, what string) (nv int64, conflict bool, err error) {
	_, nv, err = d.h.reg.Put(ctx, rm.ID(), cfg, version, store.Change{By: cred.name, What: what})
	if _, ok := errors.AsType[*store.VersionError](err); ok {
		return 0, true, rm.Sync(ctx)
	}
	if err == nil {
		d.h.changed(cred, rm.ID(), what, nv)
	}
	return nv, false, err
}

// sameSettings reports whether two settings are the same, as their JSON forms say.
func sameSettings(a, b waitingroom.Config) bool {
	x, err1 := waitingroom.EncodeConfig(a)
	y, err2 := waitingroom.EncodeConfig(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

// conflict shows the form again after another change came first: the operator's values
// stay in the fields, the stored ones beside them, and the form's version becomes the
// stored one, so that saving again, having seen them, replaces them.
func (d *dashboard) conflict(w http.ResponseWriter, r *http.Request, cred *credential, rm *waitingroom.Room, form settingsForm) {
	v, cfg := view(rm)
	vals := stored(cfg)
	for i := range form.Fields {
		form.Fields[i].Stored = vals[form.Fields[i].Name]
		form.Fields[i].Conflicted = true
	}
	form.Conflict = fmt.Sprintf("The settings changed since you opened this form: they are at version %d now%s, "+
		"and you edited version %d. Nothing was saved. Your values are kept below, the stored ones next to them; "+
		"save again to replace the stored ones with yours.", v, d.madeBy(r.Context(), rm, v), form.Version)
	form.Version, form.Stale = v, false
	d.h.log.Info("admin: request refused", "by", cred.name, "method", r.Method, "path", r.URL.Path,
		"status", http.StatusConflict, "code", "version_mismatch")
	d.renderRoom(w, r, cred, http.StatusConflict, rm, roomForms{settings: &form})
}

// madeBy says what made version v of rm's settings, and who, as " (patch, by alice at
// 09:12:05 UTC)"; "" when the trail cannot say.
func (d *dashboard) madeBy(ctx context.Context, rm *waitingroom.Room, v int64) string {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if ch, err := d.h.ctl.Changes(ctx, rm.ID()); err == nil && len(ch) > 0 && ch[0].Version == v {
		return fmt.Sprintf(" (%s, by %s at %s)", ch[0].What, ch[0].By, ch[0].At.UTC().Format("15:04:05 UTC"))
	}
	return ""
}

// The state buttons.

// action is a change of the room's state that the page asks to confirm first.
type action struct {
	name, What, Title, Effect, Button, done string
	set                                     func(*waitingroom.Config)
	applies                                 func(waitingroom.Config) bool
}

// Name is the last segment of the action's paths.
func (a action) Name() string { return a.name }

var actions = []action{
	{name: "queue-all", What: "queue everyone", Title: "Queue everyone", Button: "Queue everyone",
		Effect:  "Nobody new is admitted: every new visitor queues, with the wait unknown, until you resume. Those on the site keep their sessions.",
		done:    "Queue-all is on: nobody new is admitted",
		set:     func(c *waitingroom.Config) { c.QueueAll, c.Suspended = true, false },
		applies: func(c waitingroom.Config) bool { return !c.QueueAll || c.Suspended }},
	{name: "suspend", What: "suspend the room", Title: "Suspend", Button: "Suspend",
		Effect:  "The waiting room steps aside: every request goes straight through to the site, uncounted, and the queue is not served until you resume.",
		done:    "Suspended: traffic passes untouched",
		set:     func(c *waitingroom.Config) { c.Suspended = true },
		applies: func(c waitingroom.Config) bool { return !c.Suspended }},
	{name: "resume", What: "resume admissions", Title: "Resume", Button: "Resume",
		Effect:  "Queue-all and suspension are both lifted: the room admits by its capacity and rate again.",
		done:    "Resumed: the room admits by its limits",
		set:     func(c *waitingroom.Config) { c.QueueAll, c.Suspended = false, false },
		applies: func(c waitingroom.Config) bool { return c.QueueAll || c.Suspended }},
}

func actionOf(r *http.Request) action {
	name := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	for _, a := range actions {
		if a.name == name {
			return a
		}
	}
	return action{}
}

// confirmView is the confirmation page of an action.
type confirmView struct {
	Room     string
	Version  int64
	State    string
	Action   action
	Conflict string
}

// confirm answers GET /dashboard/rooms/{id}/{action}: the confirmation form.
func (d *dashboard) confirm(w http.ResponseWriter, r *http.Request, cred *credential) {
	rm, ok := d.roomOf(w, r, cred)
	if !ok {
		return
	}
	a := actionOf(r)
	v, cfg := view(rm)
	state := d.stateNow(r.Context(), rm, cfg)
	d.render(w, r, http.StatusOK, "confirm", cred, a.Title+" "+rm.ID()+"?", confirmView{
		Room: rm.ID(), Version: v, State: state, Action: a})
}

// act answers POST /dashboard/rooms/{id}/{action}, against the version the confirmation
// was shown at.
func (d *dashboard) act(w http.ResponseWriter, r *http.Request, cred *credential) {
	ctx := r.Context()
	rm, ok := d.roomOf(w, r, cred)
	if !ok {
		return
	}
	a := actionOf(r)
	version, err := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	if err != nil || version < 1 {
		d.problem(w, r, cred, http.StatusUnprocessableEntity, "Not done", "The form has no version; go back and try again. Nothing was changed.")
		return
	}
	v, cfg := view(rm)
	if v != version {
		if err := rm.Sync(ctx); err != nil {
			d.unavailable(w, r, cred, err)
			return
		}
		v, cfg = view(rm)
	}
	if v == version {
		if !a.applies(cfg) {
			http.Redirect(w, r, fmt.Sprintf("/dashboard/rooms/%s?done=unchanged&v=%d", rm.ID(), v), http.StatusSeeOther)
			return
		}
		a.set(&cfg)
		nv, conflict, err := d.put(ctx, cred, rm, cfg, version, a.name)
		if err != nil {
			d.unavailable(w, r, cred, err)
			return
		}
		if !conflict {
			http.Redirect(w, r, fmt.Sprintf("/dashboard/rooms/%s?done=%s&v=%d", rm.ID(), a.name, nv), http.StatusSeeOther)
			return
		}
	}
	v, cfg = view(rm)
	state := d.stateNow(ctx, rm, cfg)
	d.h.log.Info("admin: request refused", "by", cred.name, "method", r.Method, "path", r.URL.Path,
		"status", http.StatusConflict, "code", "version_mismatch")
	d.render(w, r, http.StatusConflict, "confirm", cred, a.Title+" "+rm.ID()+"?", confirmView{
		Room: rm.ID(), Version: v, State: state, Action: a,
		Conflict: fmt.Sprintf("The room changed since you asked (version %d, now %d): nothing was done. Check its state and confirm again.", version, v)})
}
