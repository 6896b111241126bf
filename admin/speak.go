package admin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/text/language"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/admission"
)

// Speaking to the queue from the room page: the room's message in each language and
// whether it closes when sold out, which are settings (saved against the form's version,
// like the settings form), and the count of slots left, which is a counter in the store
// (set at once: the host's bookings take from it between any two page loads, so a version
// would only refuse every save).

// saidView is what the room tells its queue now, as the page shows it.
type saidView struct {
	Messages []saidText
	Close    bool // CloseWhenSoldOut
}

type saidText struct {
	Tag, Name, Text string
}

func saidOf(cfg waitingroom.Config) saidView {
	out := saidView{Close: cfg.CloseWhenSoldOut}
	for _, t := range langOrder(slices.Collect(maps.Keys(cfg.Messages))) {
		out.Messages = append(out.Messages, saidText{Tag: t, Name: languageName(t), Text: cfg.Messages[t]})
	}
	return out
}

// offered are the languages the message form always has a field for.
var offered = []string{"en", "ja"}

// languageNames name the languages the built-in pages speak; the others go by their tag.
var languageNames = map[string]string{"en": "English", "ja": "Japanese", "zh": "Chinese"}

// languageName names a canonical tag's language by its first subtag: "zh-Hans" is Chinese.
func languageName(tag string) string {
	base, _, _ := strings.Cut(tag, "-")
	return languageNames[base]
}

// langOrder returns tags without repeats, the offered ones first, then the others by tag.
func langOrder(tags []string) []string {
	var out []string
	for _, t := range offered {
		if slices.Contains(tags, t) {
			out = append(out, t)
		}
	}
	rest := slices.Sorted(slices.Values(tags))
	for _, t := range slices.Compact(rest) {
		if !slices.Contains(offered, t) {
			out = append(out, t)
		}
	}
	return out
}

// speakForm is the message form as shown: a text per language, another language to add,
// closing when sold out, and what is wrong.
type speakForm struct {
	Langs            []langField
	NewLang, NewText formInput
	Close            bool // close_when_sold_out, as entered
	CloseStored      bool
	Version          int64 // the version the form was loaded at: the precondition of the save
	Problem          string
	Conflict         string
	Conflicted       bool // another change came first: the Stored values are what it stored
	Stale            bool
	cfg              *waitingroom.Config
}

// langField is the message in one language.
type langField struct {
	Tag, Name, Value, Stored, Problem string
	Conflicted                        bool // another change came first: Stored is what it stored
}

// formInput is a text field of a form and its problem.
type formInput struct {
	Value, Problem string
}

// AddOpen reports whether the fields of another language are shown: they hold something.
func (f speakForm) AddOpen() bool {
	return f.NewLang.Value != "" || f.NewText.Value != "" || f.NewLang.Problem != "" || f.NewText.Problem != ""
}

func (f *speakForm) invalid() bool {
	if f.Problem != "" || f.NewLang.Problem != "" || f.NewText.Problem != "" {
		return true
	}
	return slices.ContainsFunc(f.Langs, func(l langField) bool { return l.Problem != "" })
}

// speakFormOf is the message form of version v's settings cfg as they are.
func speakFormOf(v int64, cfg waitingroom.Config) speakForm {
	f := speakForm{Version: v, Close: cfg.CloseWhenSoldOut, CloseStored: cfg.CloseWhenSoldOut}
	for _, t := range langOrder(append(slices.Collect(maps.Keys(cfg.Messages)), offered...)) {
		f.Langs = append(f.Langs, langField{Tag: t, Name: languageName(t), Value: cfg.Messages[t], Stored: cfg.Messages[t]})
	}
	return f
}

// messageField is the prefix of the form's fields of a language's text: message-ja.
const messageField = "message-"

// speakFormFrom reads the posted form over rm's settings. A language's field left empty
// removes it; languages the form does not name keep their text (as a PATCH merges them).
// The form's cfg is the result when every value is valid.
func (d *dashboard) speakFormFrom(rm *waitingroom.Room, q url.Values) speakForm {
	v, base := view(rm)
	f := speakForm{Version: v, Close: q.Has("close_when_sold_out"), CloseStored: base.CloseWhenSoldOut}
	if n, err := strconv.ParseInt(q.Get("version"), 10, 64); err != nil || n < 0 {
		f.Problem = "The form's version is not a number; reload the page."
	} else {
		f.Version = n
	}
	f.Stale = f.Version != v
	tags := append(slices.Collect(maps.Keys(base.Messages)), offered...)
	for k := range q {
		if t, ok := strings.CutPrefix(k, messageField); ok {
			tags = append(tags, t)
		}
	}
	texts := maps.Clone(base.Messages)
	if texts == nil {
		texts = map[string]string{}
	}
	for _, t := range langOrder(tags) {
		lf := langField{Tag: t, Name: languageName(t), Value: base.Messages[t], Stored: base.Messages[t]}
		if q.Has(messageField + t) {
			lf.Value = strings.TrimSpace(q.Get(messageField + t))
			if lf.Value == "" {
				delete(texts, t)
			} else {
				texts[t] = lf.Value
			}
		}
		f.Langs = append(f.Langs, lf)
	}

	f.NewLang.Value, f.NewText.Value = strings.TrimSpace(q.Get("new_lang")), strings.TrimSpace(q.Get("new_text"))
	newTag := ""
	switch {
	case f.NewLang.Value == "" && f.NewText.Value == "":
	case f.NewLang.Value == "":
		f.NewLang.Problem = "Enter the language's tag, such as zh-Hans or ko."
	case f.NewText.Value == "":
		f.NewText.Problem = "Write the message in this language, or leave the language empty."
	default:
		// The tag alone first, with a text that passes, so that its problem is the tag's.
		probe := base
		probe.Messages = map[string]string{f.NewLang.Value: "-"}
		if err := probe.Validate(); err != nil {
			f.NewLang.Problem = problemOf(err)
			break
		}
		newTag = language.Make(f.NewLang.Value).String() // the canonical form, as the room keeps it
		if slices.ContainsFunc(f.Langs, func(l langField) bool { return l.Tag == newTag }) {
			f.NewLang.Problem = fmt.Sprintf("%s has its field above: write the message there.", newTag)
			break
		}
		texts[newTag] = f.NewText.Value
	}
	if f.invalid() {
		return f
	}

	cfg := base
	cfg.Messages, cfg.CloseWhenSoldOut = texts, f.Close
	if len(texts) == 0 {
		cfg.Messages = nil
	}
	err := cfg.Validate()
	if err == nil {
		f.cfg = &cfg
		return f
	}
	ce, ok := errors.AsType[*waitingroom.ConfigError](err)
	tag, isMsg := messageTag(ce) // the tags were checked: a problem of a text, or a tag given twice
	switch {
	case !ok:
		f.Problem = "The message could not be read."
	case isMsg && tag == newTag:
		f.NewText.Problem = problemOf(err)
	case isMsg && slices.ContainsFunc(f.Langs, func(l langField) bool { return l.Tag == tag }):
		f.Langs[slices.IndexFunc(f.Langs, func(l langField) bool { return l.Tag == tag })].Problem = problemOf(err)
	case ce.Field == "Messages" && newTag != "": // too many languages, with the one added
		f.NewLang.Problem = problemOf(err)
	default:
		f.Problem = problemOf(err)
	}
	return f
}

// messageTag returns the language of a problem of Messages[tag]; false for another field.
func messageTag(ce *waitingroom.ConfigError) (string, bool) {
	if ce == nil {
		return "", false
	}
	rest, ok := strings.CutPrefix(ce.Field, "Messages[")
	if !ok {
		return "", false
	}
	rest, ok = strings.CutSuffix(rest, "]")
	if !ok {
		return "", false
	}
	tag, err := strconv.Unquote(rest)
	return tag, err == nil
}

// problemOf is a settings problem as the API words it (JSON names).
func problemOf(err error) string {
	if ce, ok := errors.AsType[*waitingroom.ConfigError](err); ok {
		return jsonProblem(ce.Problem)
	}
	return "The message could not be read."
}

// saveMessage answers POST /dashboard/rooms/{id}/message: the message form, saved
// against the version it was loaded at, as the settings form is (409 for a change made
// since, 422 for an invalid value; either way nothing is saved).
func (d *dashboard) saveMessage(w http.ResponseWriter, r *http.Request, cred *credential) {
	ctx := r.Context()
	rm, ok := d.roomOf(w, r, cred)
	if !ok {
		return
	}
	if err := r.ParseForm(); err != nil || !r.PostForm.Has("version") {
		d.problem(w, r, cred, http.StatusUnprocessableEntity, "Not saved", "The form could not be read, or has no version; reload the page. Nothing was saved.")
		return
	}
	form := d.speakFormFrom(rm, r.PostForm)
	if form.Stale {
		if err := rm.Sync(ctx); err != nil {
			d.unavailable(w, r, cred, err)
			return
		}
		form = d.speakFormFrom(rm, r.PostForm)
	}
	if form.Stale {
		d.speakConflict(w, r, cred, rm, form)
		return
	}
	if form.invalid() {
		d.h.log.Info("admin: request refused", "by", cred.name, "method", r.Method, "path", r.URL.Path, "status", http.StatusUnprocessableEntity)
		d.renderRoom(w, r, cred, http.StatusUnprocessableEntity, rm, roomForms{speak: &form})
		return
	}
	if sameSettings(rm.Config(), *form.cfg) {
		http.Redirect(w, r, fmt.Sprintf("/dashboard/rooms/%s?done=message-unchanged&v=%d#speak", rm.ID(), form.Version), http.StatusSeeOther)
		return
	}
	nv, conflict, err := d.put(ctx, cred, rm, *form.cfg, form.Version, "message")
	switch _, isConfig := errors.AsType[*waitingroom.ConfigError](err); {
	case isConfig: // a rule of the room's store: CloseWhenSoldOut on one that counts nothing
		form.Problem = problemOf(err)
		d.renderRoom(w, r, cred, http.StatusUnprocessableEntity, rm, roomForms{speak: &form})
		return
	case err != nil:
		d.unavailable(w, r, cred, err)
		return
	case conflict:
		d.speakConflict(w, r, cred, rm, d.speakFormFrom(rm, r.PostForm))
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/dashboard/rooms/%s?done=message&v=%d#speak", rm.ID(), nv), http.StatusSeeOther)
}

// speakConflict shows the message form again after another change came first, as
// conflict does the settings form: the operator's texts in the fields, the stored ones
// beside them, and the stored version, so that saving again replaces them.
func (d *dashboard) speakConflict(w http.ResponseWriter, r *http.Request, cred *credential, rm *waitingroom.Room, form speakForm) {
	v, _ := view(rm)
	form.Conflicted = true
	for i := range form.Langs {
		form.Langs[i].Conflicted = true
	}
	form.Conflict = fmt.Sprintf("The settings changed since you opened this form: they are at version %d now%s, "+
		"and you edited version %d. Nothing was saved. Your message is kept below, the stored one next to it; "+
		"save again to replace it with yours.", v, d.madeBy(r.Context(), rm, v), form.Version)
	form.Version, form.Stale = v, false
	d.h.log.Info("admin: request refused", "by", cred.name, "method", r.Method, "path", r.URL.Path,
		"status", http.StatusConflict, "code", "version_mismatch")
	d.renderRoom(w, r, cred, http.StatusConflict, rm, roomForms{speak: &form})
}

// saveSlots answers POST /dashboard/rooms/{id}/slots: do=set sets the count of slots
// left to remaining, do=stop stops counting (Room.SetSlots), as PUT /api/rooms/{id}/slots
// does; 422 for a count that is not one.
func (d *dashboard) saveSlots(w http.ResponseWriter, r *http.Request, cred *credential) {
	rm, ok := d.roomOf(w, r, cred)
	if !ok {
		return
	}
	if err := r.ParseForm(); err != nil {
		d.problem(w, r, cred, http.StatusUnprocessableEntity, "Not set", "The form could not be read. Nothing was changed.")
		return
	}
	var f formInput // the count entered
	n := admission.NotCounted
	if r.PostForm.Get("do") != "stop" {
		f.Value = strings.TrimSpace(r.PostForm.Get("remaining"))
		n, f.Problem = parseSlots(f.Value)
	}
	if f.Problem == "" {
		err := d.h.setSlots(r.Context(), cred, rm, n)
		switch {
		case errors.Is(err, waitingroom.ErrConfig):
			f.Problem = "The rooms' store keeps no count of slots."
		case err != nil:
			d.unavailable(w, r, cred, err)
			return
		}
	}
	if f.Problem != "" {
		d.h.log.Info("admin: request refused", "by", cred.name, "method", r.Method, "path", r.URL.Path, "status", http.StatusUnprocessableEntity)
		d.renderRoom(w, r, cred, http.StatusUnprocessableEntity, rm, roomForms{slots: &f})
		return
	}
	to := "/dashboard/rooms/" + rm.ID() + "?done=slots-off#speak"
	if n >= 0 {
		to = fmt.Sprintf("/dashboard/rooms/%s?done=slots&n=%d#speak", rm.ID(), n)
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// parseSlots reads a count of slots as the form's field has it, or says what is wrong.
func parseSlots(s string) (int64, string) {
	if s == "" {
		return 0, "Enter the number of slots left, or stop counting."
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > admission.MaxSlots {
		return 0, fmt.Sprintf("Enter a whole number from 0 to %s.", thousands(admission.MaxSlots))
	}
	return n, ""
}

// stateNow is rm's state in words under cfg, with its count of slots as last read.
func (d *dashboard) stateNow(ctx context.Context, rm *waitingroom.Room, cfg waitingroom.Config) string {
	slots := admission.NotCounted
	if st := d.h.snapshot(ctx, rm); st.err == nil {
		slots = st.snap.Slots
	}
	_, text := stateOf(cfg, slots)
	return text
}
