package waitingroom

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The one JSON form of a room's settings: what the admin API reads and writes and what a
// store keeps as the settings document. Field names are the hosted rooms' (snake_case), so
// operators' scripts carry over. Durations are numbers: minutes where the hosted room counts
// minutes (session_duration, max_session_duration), seconds where the name says so. The form
// carries durations to the millisecond, as the stores keep time.
//
// One table per type drives encoding, decoding and ConfigJSONField, so the three cannot
// drift apart.

// MaxConfigJSON is the largest settings document, in bytes, that DecodeConfig and
// PatchConfig read (and the largest patch).
const MaxConfigJSON = 64 << 10

// docField is one field of the JSON form.
type docField[T any] struct {
	json, goName string
	unit         time.Duration // a duration's unit in JSON: time.Minute or time.Second
	optional     bool          // omitted from the JSON when zero, nil or empty (an event's overrides)
	at           func(*T) any  // a pointer to the field in T
}

var configDocFields = []docField[Config]{
	{json: "total_active_users", goName: "TotalActiveUsers", at: func(c *Config) any { return &c.TotalActiveUsers }},
	{json: "new_users_per_minute", goName: "NewUsersPerMinute", at: func(c *Config) any { return &c.NewUsersPerMinute }},
	{json: "allow_rate_above_capacity", goName: "AllowRateAboveCapacity", at: func(c *Config) any { return &c.AllowRateAboveCapacity }},
	{json: "session_duration", goName: "SessionDuration", unit: time.Minute, at: func(c *Config) any { return &c.SessionDuration }},
	{json: "disable_session_renewal", goName: "DisableSessionRenewal", at: func(c *Config) any { return &c.DisableSessionRenewal }},
	{json: "renew_interval_seconds", goName: "RenewInterval", unit: time.Second, at: func(c *Config) any { return &c.RenewInterval }},
	{json: "max_session_duration", goName: "MaxSessionDuration", unit: time.Minute, at: func(c *Config) any { return &c.MaxSessionDuration }},
	{json: "queueing_method", goName: "QueueingMethod", at: func(c *Config) any { return &c.QueueingMethod }},
	{json: "queue_all", goName: "QueueAll", at: func(c *Config) any { return &c.QueueAll }},
	{json: "queue_all_ends_sessions", goName: "QueueAllEndsSessions", at: func(c *Config) any { return &c.QueueAllEndsSessions }},
	{json: "suspended", goName: "Suspended", at: func(c *Config) any { return &c.Suspended }},
	{json: "refresh_interval_seconds", goName: "RefreshInterval", unit: time.Second, at: func(c *Config) any { return &c.RefreshInterval }},
	{json: "queueing_status_code", goName: "QueueingStatusCode", at: func(c *Config) any { return &c.QueueingStatusCode }},
	{json: "queue_hold_seconds", goName: "QueueHold", unit: time.Second, at: func(c *Config) any { return &c.QueueHold }},
	{json: "arrival_grace_seconds", goName: "ArrivalGrace", unit: time.Second, at: func(c *Config) any { return &c.ArrivalGrace }},
	{json: "typical_session_seconds", goName: "TypicalSession", unit: time.Second, at: func(c *Config) any { return &c.TypicalSession }},
	// Written only when set: a release before them refuses a document with fields it does
	// not know, so rooms that use neither stay readable to it during a rolling deploy.
	{json: "close_when_sold_out", goName: "CloseWhenSoldOut", optional: true, at: func(c *Config) any { return &c.CloseWhenSoldOut }},
	{json: "messages", goName: "Messages", optional: true, at: func(c *Config) any { return &c.Messages }},
	{json: "events", goName: "Events", at: func(c *Config) any { return &c.Events }},
}

var eventDocFields = []docField[Event]{
	{json: "name", goName: "Name", at: func(e *Event) any { return &e.Name }},
	{json: "prequeue_start_time", goName: "PrequeueStart", optional: true, at: func(e *Event) any { return &e.PrequeueStart }},
	{json: "event_start_time", goName: "Start", at: func(e *Event) any { return &e.Start }},
	{json: "event_end_time", goName: "End", at: func(e *Event) any { return &e.End }},
	{json: "shuffle_at_event_start", goName: "ShuffleAtEventStart", at: func(e *Event) any { return &e.ShuffleAtEventStart }},
	{json: "total_active_users", goName: "TotalActiveUsers", optional: true, at: func(e *Event) any { return &e.TotalActiveUsers }},
	{json: "new_users_per_minute", goName: "NewUsersPerMinute", optional: true, at: func(e *Event) any { return &e.NewUsersPerMinute }},
	{json: "session_duration", goName: "SessionDuration", unit: time.Minute, optional: true, at: func(e *Event) any { return &e.SessionDuration }},
	{json: "disable_session_renewal", goName: "DisableSessionRenewal", optional: true, at: func(e *Event) any { return &e.DisableSessionRenewal }},
	{json: "queueing_method", goName: "QueueingMethod", optional: true, at: func(e *Event) any { return &e.QueueingMethod }},
}

// docError is a *ConfigError about the JSON field named field (empty: the whole document).
func docError(field, format string, args ...any) *ConfigError {
	return &ConfigError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// EncodeConfig returns the JSON form of c: every field of Config, as given in c (Room.Config
// has the defaults filled in), events in c's order, [] when none, and messages an object
// by language tag, sorted; messages and close_when_sold_out only when set, so that the
// previous release reads the documents of rooms that use neither. It refuses only what
// the form cannot hold: negative durations, an unknown method, times outside the years
// 0000 to 9999 in UTC.
func EncodeConfig(c Config) ([]byte, error) {
	return appendObject(nil, &c, configDocFields, "")
}

// appendObject appends v as a JSON object of fields; prefix goes before the fields' names
// in errors (an event's).
func appendObject[T any](b []byte, v *T, fields []docField[T], prefix string) ([]byte, error) {
	b = append(b, '{')
	first := true
	for _, f := range fields {
		p := f.at(v)
		if e := reflect.ValueOf(p).Elem(); f.optional && (e.IsZero() || e.Kind() == reflect.Map && e.Len() == 0) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(append(append(b, '"'), f.json...), `":`...)
		var err error
		if b, err = appendValue(b, p, f.unit, prefix+f.json); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

func appendValue(b []byte, p any, unit time.Duration, name string) ([]byte, error) {
	switch p := p.(type) {
	case *int:
		return strconv.AppendInt(b, int64(*p), 10), nil
	case *bool:
		return strconv.AppendBool(b, *p), nil
	case **bool:
		return strconv.AppendBool(b, **p), nil // optional: a nil one was left out
	case *string:
		s, err := json.Marshal(*p)
		return append(b, s...), err
	case *time.Duration:
		if *p < 0 {
			return nil, docError(name, "%s must not be negative, got %v", name, *p)
		}
		// The shortest decimal that reads back as the same float64: 5 for 5m, 0.5 for 30s.
		return strconv.AppendFloat(b, float64(*p)/float64(unit), 'f', -1, 64), nil
	case *time.Time:
		t := p.UTC()
		if t.Year() < 0 || t.Year() > 9999 {
			return nil, docError(name, "%s must be within the years 0000 to 9999 (UTC) to be written in RFC 3339, got %v", name, t)
		}
		// RFC3339Nano writes fractional seconds only when there are some.
		return append(append(append(b, '"'), t.Format(time.RFC3339Nano)...), '"'), nil
	case *Method:
		return appendMethod(b, *p, name)
	case **Method:
		return appendMethod(b, **p, name)
	case *map[string]string:
		b = append(b, '{')
		for i, k := range slices.Sorted(maps.Keys(*p)) {
			if i > 0 {
				b = append(b, ',')
			}
			key, _ := json.Marshal(k) // strings always marshal
			val, _ := json.Marshal((*p)[k])
			b = append(append(append(b, key...), ':'), val...)
		}
		return append(b, '}'), nil
	case *[]Event:
		b = append(b, '[')
		for i := range *p {
			if i > 0 {
				b = append(b, ',')
			}
			e := &(*p)[i]
			var err error
			if b, err = appendObject(b, e, eventDocFields, eventPrefix(i, e.Name)); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	}
	panic(fmt.Sprintf("waitingroom: settings field %s has no JSON form (%T)", name, p))
}

func appendMethod(b []byte, m Method, name string) ([]byte, error) {
	if m > Reject {
		return nil, docError(name, "%s must be fifo, random, passthrough or reject, got %v", name, m)
	}
	return append(append(append(b, '"'), m.String()...), '"'), nil
}

// eventPrefix is how errors name the fields of events[i]: by its name when it has one.
func eventPrefix(i int, name string) string {
	if name == "" {
		return fmt.Sprintf("events[%d].", i)
	}
	return fmt.Sprintf("events[%q].", name)
}

// DecodeConfig reads the JSON form of a room's settings, strictly: unknown fields, trailing
// data, wrong JSON types, negative or oversized durations and times that are not RFC 3339
// are refused, as is a document over MaxConfigJSON bytes. An absent or null field is its
// zero value (a default where Config has one). Durations are rounded to the millisecond;
// times are read into UTC. Every error is a *ConfigError naming the JSON field (empty for
// the document as a whole). It does not run Validate: the caller does.
func DecodeConfig(data []byte) (Config, error) {
	obj, err := readObject(data, "the settings document")
	if err != nil {
		return Config{}, err
	}
	var c Config
	if err := decodeObject(&c, configDocFields, obj, ""); err != nil {
		return Config{}, err
	}
	return c, nil
}

// readObject parses data, a whole document (what names it in errors), as a JSON object.
func readObject(data []byte, what string) (map[string]json.RawMessage, error) {
	if len(data) > MaxConfigJSON {
		return nil, docError("", "%s is %d bytes, more than the %d allowed", what, len(data), MaxConfigJSON)
	}
	var obj map[string]json.RawMessage
	// Unmarshal checks the whole input, trailing data included, before it decodes.
	if err := json.Unmarshal(data, &obj); err != nil {
		if syn, ok := errors.AsType[*json.SyntaxError](err); ok {
			return nil, docError("", "%s is not valid JSON: %v (at byte %d)", what, err, syn.Offset)
		}
		return nil, docError("", "%s must be a JSON object, got %s", what, jsonKind(data))
	}
	if obj == nil { // null
		return nil, docError("", "%s must be a JSON object, got null", what)
	}
	return obj, nil
}

// decodeObject sets the fields of v from obj; prefix goes before the fields' names.
func decodeObject[T any](v *T, fields []docField[T], obj map[string]json.RawMessage, prefix string) error {
	// Sorted, so that of several unknown fields the same one is reported every time.
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		if !slices.ContainsFunc(fields, func(f docField[T]) bool { return f.json == k }) {
			return docError(prefix+k, "unknown field %s", prefix+k)
		}
	}
	for _, f := range fields {
		if raw, ok := obj[f.json]; ok && string(raw) != "null" {
			if err := decodeValue(raw, f.at(v), f.unit, prefix+f.json); err != nil {
				return err
			}
		}
	}
	return nil
}

// maxMillis is the longest time.Duration in whole milliseconds.
const maxMillis = math.MaxInt64 / int64(time.Millisecond)

// decodeValue sets *p from raw (not null), the value of the field name.
func decodeValue(raw json.RawMessage, p any, unit time.Duration, name string) error {
	switch p := p.(type) {
	case *int:
		if json.Unmarshal(raw, p) != nil {
			return docError(name, "%s must be an integer that fits in %d bits, got %s", name, strconv.IntSize, jsonKind(raw))
		}
	case *bool, **bool:
		if json.Unmarshal(raw, p) != nil {
			return docError(name, "%s must be true or false, got %s", name, jsonKind(raw))
		}
	case *string:
		if json.Unmarshal(raw, p) != nil {
			return docError(name, "%s must be a string, got %s", name, jsonKind(raw))
		}
	case *time.Duration:
		units := "seconds"
		if unit == time.Minute {
			units = "minutes"
		}
		var v float64
		err := json.Unmarshal(raw, &v) // fails on a number beyond float64 too (1e400)
		ms := math.Round(v * float64(unit/time.Millisecond))
		switch {
		case err == nil && v >= 0 && ms <= float64(maxMillis):
			*p = time.Duration(ms) * time.Millisecond
		case raw[0] >= '0' && raw[0] <= '9':
			return docError(name, "%s is too long: %s %s is more than a duration holds (about %d years)", name, jsonKind(raw), units, maxMillis/(1000*3600*24*365))
		default:
			return docError(name, "%s must be a non-negative number of %s, got %s", name, units, jsonKind(raw))
		}
	case *time.Time:
		var s string
		var t time.Time
		err := json.Unmarshal(raw, &s)
		if err == nil {
			t, err = time.Parse(time.RFC3339, s)
		}
		// The form writes UTC: a time it could not write back is refused here.
		if t = t.UTC(); err != nil || t.Year() < 0 || t.Year() > 9999 {
			return docError(name, "%s must be an RFC 3339 time from year 0000 to 9999 UTC, such as \"2026-03-01T09:00:00Z\", got %s", name, jsonKind(raw))
		}
		*p = t
	case *Method:
		return decodeMethod(raw, p, name)
	case **Method:
		*p = new(Method)
		return decodeMethod(raw, *p, name)
	case *map[string]string:
		var raws map[string]json.RawMessage
		if json.Unmarshal(raw, &raws) != nil || raws == nil {
			return docError(name, "%s must be an object of language tags to texts, such as {\"en\": \"...\"}, got %s", name, jsonKind(raw))
		}
		*p = nil // no messages is nil, as a room's Config has it
		for _, k := range slices.Sorted(maps.Keys(raws)) {
			var text string
			if string(raws[k]) == "null" || json.Unmarshal(raws[k], &text) != nil {
				field := fmt.Sprintf("%s[%q]", name, k)
				return docError(field, "%s must be a string, got %s", field, jsonKind(raws[k]))
			}
			if *p == nil {
				*p = make(map[string]string, len(raws))
			}
			(*p)[k] = text
		}
	case *[]Event:
		var raws []json.RawMessage
		if json.Unmarshal(raw, &raws) != nil {
			return docError(name, "%s must be an array of events, got %s", name, jsonKind(raw))
		}
		*p = nil // no events is nil, as a room's Config has it
		for i, r := range raws {
			var obj map[string]json.RawMessage
			if json.Unmarshal(r, &obj) != nil || obj == nil {
				field := fmt.Sprintf("%s[%d]", name, i)
				return docError(field, "%s must be an object, got %s", field, jsonKind(r))
			}
			var e Event
			var evName string
			_ = json.Unmarshal(obj["name"], &evName) // a bad name is reported below, by index
			if err := decodeObject(&e, eventDocFields, obj, eventPrefix(i, evName)); err != nil {
				return err
			}
			*p = append(*p, e)
		}
	default:
		panic(fmt.Sprintf("waitingroom: settings field %s has no JSON form (%T)", name, p))
	}
	return nil
}

func decodeMethod(raw json.RawMessage, m *Method, name string) error {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if err := m.UnmarshalText([]byte(s)); err == nil {
			return nil
		}
	}
	return docError(name, "%s must be \"fifo\", \"random\", \"passthrough\" or \"reject\", got %s", name, jsonKind(raw))
}

// jsonKind describes a JSON value for an error: short values as they are, others by kind.
func jsonKind(raw []byte) string {
	s := strings.TrimSpace(string(raw))
	if len(s) <= 40 && utf8.ValidString(s) {
		return s
	}
	switch s[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a long string"
	}
	return "a long value"
}

// PatchConfig applies patch, a JSON merge patch (RFC 7396), to the JSON form of base and
// decodes the result as DecodeConfig does: a field in the patch replaces base's, null
// removes it (a required field becomes its zero value, for Validate to refuse; an optional
// one its default), events, an array, are replaced whole, and messages, an object, are
// merged language by language ({"messages": {"ja": null}} removes the Japanese one). The
// patch must be a JSON object of at most MaxConfigJSON bytes. It does not run Validate.
func PatchConfig(base Config, patch []byte) (Config, error) {
	p, err := readObject(patch, "the patch")
	if err != nil {
		return Config{}, err
	}
	doc, err := EncodeConfig(base)
	if err != nil {
		return Config{}, err
	}
	target, err := readObject(doc, "the settings document")
	if err != nil {
		return Config{}, err
	}
	for k, v := range p {
		if string(v) == "null" {
			delete(target, k)
		} else if target[k], err = mergePatch(target[k], v, 1); err != nil {
			return Config{}, docError(k, "%s cannot be merged: %v", k, err)
		}
	}
	merged, err := json.Marshal(target)
	if err != nil {
		return Config{}, docError("", "the patched settings cannot be written: %v", err)
	}
	return DecodeConfig(merged)
}

// maxPatchDepth bounds how deep a patch's objects nest: the settings' deepest is two
// (messages, then a language), and each level costs a decoding of what is below it.
const maxPatchDepth = 4

// mergePatch is RFC 7396's MergePatch(target, patch) for one value at depth (a top-level
// member's is 1): a patch that is an object is merged into target member by member (null
// removes one; a target that is no object counts as {}), anything else replaces target.
func mergePatch(target, patch json.RawMessage, depth int) (json.RawMessage, error) {
	var p map[string]json.RawMessage
	if json.Unmarshal(patch, &p) != nil || p == nil {
		return patch, nil // not an object
	}
	if depth >= maxPatchDepth {
		return nil, fmt.Errorf("objects nest more than %d deep", maxPatchDepth)
	}
	var t map[string]json.RawMessage
	if json.Unmarshal(target, &t) != nil || t == nil {
		t = map[string]json.RawMessage{}
	}
	for k, v := range p {
		if string(v) == "null" {
			delete(t, k)
			continue
		}
		m, err := mergePatch(t[k], v, depth+1)
		if err != nil {
			return nil, err
		}
		t[k] = m
	}
	return json.Marshal(t)
}

// ConfigJSONField returns the JSON name of a field as a *ConfigError from Validate names it:
// "QueueHold" is "queue_hold_seconds", `Events["x"].Start` is `events["x"].event_start_time`,
// "Events[0].Name" is "events[0].name", `Messages["ja"]` is `messages["ja"]`. A name it does
// not know comes back in snake_case.
func ConfigJSONField(goField string) string {
	if rest, ok := strings.CutPrefix(goField, "Messages["); ok {
		return "messages[" + rest
	}
	if rest, ok := strings.CutPrefix(goField, "Events["); ok {
		// The event: a quoted name (which may hold "]") or an index, kept as it is.
		sel, err := strconv.QuotedPrefix(rest)
		if err != nil {
			sel, _, _ = strings.Cut(rest, "]")
		}
		if tail, ok := strings.CutPrefix(rest[len(sel):], "]"); ok {
			if tail == "" {
				return "events[" + sel + "]"
			}
			if f, ok := strings.CutPrefix(tail, "."); ok {
				return "events[" + sel + "]." + jsonFieldName(eventDocFields, f)
			}
		}
	}
	return jsonFieldName(configDocFields, goField)
}

func jsonFieldName[T any](fields []docField[T], goName string) string {
	if i := slices.IndexFunc(fields, func(f docField[T]) bool { return f.goName == goName }); i >= 0 {
		return fields[i].json
	}
	return snakeCase(goName)
}

// snakeCase writes a Go name in snake_case: "QueueHold" as "queue_hold", "HTTPCode" as
// "http_code".
func snakeCase(s string) string {
	r := []rune(s)
	var b strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) {
			if i > 0 && (unicode.IsLower(r[i-1]) || unicode.IsDigit(r[i-1]) ||
				unicode.IsUpper(r[i-1]) && i+1 < len(r) && unicode.IsLower(r[i+1])) {
				b.WriteByte('_')
			}
			c = unicode.ToLower(c)
		}
		b.WriteRune(c)
	}
	return b.String()
}
