package waitingroom

import (
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// filled is c with the defaults filled in and events sorted, as Room.Config returns it.
func filled(t testing.TB, c Config) Config {
	t.Helper()
	s, err := newSettings(c, "test", nil)
	if err != nil {
		t.Fatalf("a test config is invalid: %v", err)
	}
	return s.cfg
}

// sameConfig reports whether a and b are the same settings: times compared with Equal,
// pointers by value, no events nil or empty alike.
func sameConfig(a, b Config) bool {
	norm := func(c Config) Config {
		evs := make([]Event, len(c.Events))
		for i, e := range c.Events {
			e.PrequeueStart, e.Start, e.End = e.PrequeueStart.UTC(), e.Start.UTC(), e.End.UTC()
			evs[i] = e
		}
		c.Events = evs
		return c
	}
	return reflect.DeepEqual(norm(a), norm(b)) // DeepEqual compares what pointers point at
}

// wantDocError fails unless err is a *ConfigError wrapping ErrConfig about field, whose
// Problem names the field.
func wantDocError(t testing.TB, err error, field string) {
	t.Helper()
	ce, ok := errors.AsType[*ConfigError](err)
	switch {
	case !ok || !errors.Is(err, ErrConfig):
		t.Fatalf("error %v (%T), want a *ConfigError wrapping ErrConfig", err, err)
	case ce.Field != field:
		t.Fatalf("error %v names field %q, want %q", err, ce.Field, field)
	case !strings.Contains(ce.Problem, field):
		t.Fatalf("problem %q does not name the field %q", ce.Problem, field)
	}
}

var (
	jsonStart = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	berlin    = time.FixedZone("CET", 3600)
)

// fullConfig sets every field, events with every override, and fractional minutes.
func fullConfig() Config {
	return Config{
		TotalActiveUsers:       300,
		NewUsersPerMinute:      400,
		AllowRateAboveCapacity: true,
		SessionDuration:        90 * time.Second,
		DisableSessionRenewal:  true,
		RenewInterval:          7500 * time.Millisecond,
		MaxSessionDuration:     2 * time.Hour,
		QueueingMethod:         Passthrough,
		QueueAll:               true,
		QueueAllEndsSessions:   true,
		Suspended:              true,
		RefreshInterval:        2500 * time.Millisecond,
		QueueingStatusCode:     429,
		QueueHold:              100 * time.Second,
		ArrivalGrace:           3500 * time.Millisecond,
		TypicalSession:         95500 * time.Millisecond,
		CloseWhenSoldOut:       true,
		Messages:               map[string]string{"ja": "予約枠は残りわずかです。", "en": `Few slots left: "book" <now> & then`},
		Events: []Event{
			{Name: "later", Start: jsonStart.Add(48 * time.Hour), End: jsonStart.Add(49 * time.Hour)},
			{
				Name:                  "launch \"A\" & <B>",
				PrequeueStart:         jsonStart.Add(-10 * time.Minute).In(berlin),
				Start:                 jsonStart.Add(123456789 * time.Nanosecond),
				End:                   jsonStart.Add(time.Hour),
				ShuffleAtEventStart:   true,
				TotalActiveUsers:      50,
				NewUsersPerMinute:     20,
				SessionDuration:       12345 * time.Millisecond,
				DisableSessionRenewal: ptrTo(false),
				QueueingMethod:        ptrTo(Reject),
			},
		},
	}
}

func TestEncodeConfig(t *testing.T) {
	const defaults = `"allow_rate_above_capacity":false,"session_duration":5,"disable_session_renewal":false,` +
		`"renew_interval_seconds":60,"max_session_duration":0,"queueing_method":"fifo","queue_all":false,` +
		`"queue_all_ends_sessions":false,"suspended":false,"refresh_interval_seconds":20,"queueing_status_code":200,` +
		`"queue_hold_seconds":300,"arrival_grace_seconds":40,"typical_session_seconds":0`
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"defaults", filled(t, Config{TotalActiveUsers: 200, NewUsersPerMinute: 100}),
			`{"total_active_users":200,"new_users_per_minute":100,` + defaults + `,"events":[]}`},
		{"zero", Config{},
			`{"total_active_users":0,"new_users_per_minute":0,"allow_rate_above_capacity":false,"session_duration":0,` +
				`"disable_session_renewal":false,"renew_interval_seconds":0,"max_session_duration":0,"queueing_method":"fifo",` +
				`"queue_all":false,"queue_all_ends_sessions":false,"suspended":false,"refresh_interval_seconds":0,` +
				`"queueing_status_code":0,"queue_hold_seconds":0,"arrival_grace_seconds":0,"typical_session_seconds":0,` +
				`"events":[]}`},
		{"event, minimal, in another zone", filled(t, Config{TotalActiveUsers: 200, NewUsersPerMinute: 100, Events: []Event{
			{Name: "sale", Start: jsonStart.In(berlin), End: jsonStart.Add(90*time.Minute + 500*time.Millisecond)}}}),
			`{"total_active_users":200,"new_users_per_minute":100,` + defaults + `,"events":[{"name":"sale",` +
				`"event_start_time":"2026-03-01T09:00:00Z","event_end_time":"2026-03-01T10:30:00.5Z","shuffle_at_event_start":false}]}`},
		{"every field", fullConfig(),
			`{"total_active_users":300,"new_users_per_minute":400,"allow_rate_above_capacity":true,"session_duration":1.5,` +
				`"disable_session_renewal":true,"renew_interval_seconds":7.5,"max_session_duration":120,"queueing_method":"passthrough",` +
				`"queue_all":true,"queue_all_ends_sessions":true,"suspended":true,"refresh_interval_seconds":2.5,` +
				`"queueing_status_code":429,"queue_hold_seconds":100,"arrival_grace_seconds":3.5,"typical_session_seconds":95.5,` +
				`"close_when_sold_out":true,"messages":{"en":"Few slots left: \"book\" \u003cnow\u003e \u0026 then","ja":"予約枠は残りわずかです。"},"events":[` +
				`{"name":"later","event_start_time":"2026-03-03T09:00:00Z","event_end_time":"2026-03-03T10:00:00Z","shuffle_at_event_start":false},` +
				`{"name":"launch \"A\" \u0026 \u003cB\u003e","prequeue_start_time":"2026-03-01T08:50:00Z",` +
				`"event_start_time":"2026-03-01T09:00:00.123456789Z","event_end_time":"2026-03-01T10:00:00Z",` +
				`"shuffle_at_event_start":true,"total_active_users":50,"new_users_per_minute":20,"session_duration":0.20575,` +
				`"disable_session_renewal":false,"queueing_method":"reject"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := EncodeConfig(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("EncodeConfig:\n got %s\nwant %s", got, tc.want)
			}
			if !json.Valid(got) {
				t.Errorf("not valid JSON: %s", got)
			}
		})
	}
}

// What the form cannot hold is refused, naming the JSON field.
func TestEncodeConfigErrors(t *testing.T) {
	ev := Event{Name: "e", Start: jsonStart, End: jsonStart.Add(time.Hour)}
	for _, tc := range []struct {
		name, field string
		f           func(*Config)
	}{
		{"negative duration", "typical_session_seconds", func(c *Config) { c.TypicalSession = -time.Second }},
		{"unknown method", "queueing_method", func(c *Config) { c.QueueingMethod = 9 }},
		{"event's unknown method", `events["e"].queueing_method`, func(c *Config) { ev.QueueingMethod = ptrTo(Method(7)); c.Events = []Event{ev} }},
		{"negative event session", `events[0].session_duration`, func(c *Config) { c.Events = []Event{{SessionDuration: -time.Minute}} }},
		{"year 10000", `events["e"].event_end_time`, func(c *Config) {
			e := ev
			e.End = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
			c.Events = []Event{e}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Config{TotalActiveUsers: 1, NewUsersPerMinute: 1}
			tc.f(&c)
			_, err := EncodeConfig(c)
			wantDocError(t, err, tc.field)
		})
	}
}

// roundTripConfigs are valid configs, defaults filled in.
func roundTripConfigs(t testing.TB) map[string]Config {
	return map[string]Config{
		"defaults":           filled(t, Config{TotalActiveUsers: 1, NewUsersPerMinute: 1}),
		"every field":        filled(t, fullConfig()),
		"fractional minutes": filled(t, Config{TotalActiveUsers: 10, NewUsersPerMinute: 10, SessionDuration: 10 * time.Second, MaxSessionDuration: 12345 * time.Millisecond}),
		"odd milliseconds": filled(t, Config{TotalActiveUsers: 10, NewUsersPerMinute: 10, SessionDuration: 12345 * time.Millisecond,
			RefreshInterval: 1001 * time.Millisecond, QueueHold: 2002 * time.Millisecond, TypicalSession: 24 * time.Hour}),
		"events": filled(t, Config{TotalActiveUsers: 10, NewUsersPerMinute: 10, RenewInterval: 5 * time.Second, Events: []Event{
			{Name: "b", Start: jsonStart.Add(time.Hour), End: jsonStart.Add(2 * time.Hour), DisableSessionRenewal: ptrTo(true)},
			{Name: "a", PrequeueStart: jsonStart.Add(-time.Minute), Start: jsonStart, End: jsonStart.Add(time.Minute), SessionDuration: 30 * time.Second,
				QueueingMethod: ptrTo(FIFO), TotalActiveUsers: 5, NewUsersPerMinute: 5},
		}}),
	}
}

func TestDecodeConfigRoundTrip(t *testing.T) {
	for name, c := range roundTripConfigs(t) {
		t.Run(name, func(t *testing.T) {
			doc, err := EncodeConfig(c)
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeConfig(doc)
			if err != nil {
				t.Fatal(err)
			}
			if !sameConfig(got, c) {
				t.Errorf("DecodeConfig(EncodeConfig(c)):\n got %+v\nwant %+v", got, c)
			}
		})
	}
}

// Absent and null are zero; durations are rounded to the millisecond; times read into UTC.
func TestDecodeConfigValues(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      Config
	}{
		{"empty", `{}`, Config{}},
		{"nulls", ` { "total_active_users" : null , "events" : null , "queueing_method":null} `, Config{}},
		{"no events", `{"events":[]}`, Config{}},
		{"no messages", `{"messages":{}}`, Config{}},
		{"messages", `{"messages":{"ja":"残りわずか","en":"Few left"},"close_when_sold_out":true}`,
			Config{Messages: map[string]string{"ja": "残りわずか", "en": "Few left"}, CloseWhenSoldOut: true}},
		{"rounded to the millisecond", `{"session_duration":0.00001,"renew_interval_seconds":2.0006,"queue_hold_seconds":1e-4,"arrival_grace_seconds":-0}`,
			Config{SessionDuration: time.Millisecond, RenewInterval: 2001 * time.Millisecond}},
		{"integers", `{"total_active_users":7,"new_users_per_minute":-0,"queueing_status_code":202}`,
			Config{TotalActiveUsers: 7, QueueingStatusCode: 202}},
		{"an event, its time in a zone", `{"events":[{"name":"x","event_start_time":"2026-03-01T10:00:00+01:00","event_end_time":"2026-03-01T10:00:00.25Z","prequeue_start_time":null,"queueing_method":"random"}]}`,
			Config{Events: []Event{{Name: "x", Start: jsonStart, End: jsonStart.Add(time.Hour + 250*time.Millisecond), QueueingMethod: ptrTo(Random)}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeConfig([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			if !sameConfig(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
			for _, e := range got.Events {
				if e.Start.Location() != time.UTC {
					t.Errorf("event %q starts in %v, want UTC", e.Name, e.Start.Location())
				}
			}
		})
	}
	// A document of exactly MaxConfigJSON bytes is read.
	doc := `{"suspended":true` + strings.Repeat(" ", MaxConfigJSON-len(`{"suspended":true}`)) + `}`
	if c, err := DecodeConfig([]byte(doc)); err != nil || !c.Suspended {
		t.Errorf("a document of MaxConfigJSON bytes: %+v, %v", c, err)
	}
}

func TestDecodeConfigErrors(t *testing.T) {
	ev := func(fields string) string {
		return `{"events":[{"name":"a","event_start_time":"2026-03-01T09:00:00Z","event_end_time":"2026-03-01T10:00:00Z"},{` + fields + `}]}`
	}
	for _, tc := range []struct {
		name, doc, field string
	}{
		{"unknown field", `{"total_active_users":1,"colour":"red"}`, "colour"},
		{"unknown fields, the first by name", `{"zz":1,"aa":2}`, "aa"},
		{"unknown field in a named event", ev(`"name":"launch","colour":1`), `events["launch"].colour`},
		{"unknown field in an unnamed event", ev(`"colour":1`), `events[1].colour`},
		{"hosted name not ours", `{"queue_all":true,"cookie_suffix":"x"}`, "cookie_suffix"},
		{"malformed", `{"total_active_users":}`, ""},
		{"empty", ``, ""},
		{"trailing object", `{} {}`, ""},
		{"trailing junk", `{"suspended":true}x`, ""},
		{"array", `[]`, ""},
		{"null", `null`, ""},
		{"string", `"{}"`, ""},
		{"too large", `{"suspended":true` + strings.Repeat(" ", MaxConfigJSON) + `}`, ""},
		{"int as string", `{"total_active_users":"200"}`, "total_active_users"},
		{"int with a fraction", `{"new_users_per_minute":1.5}`, "new_users_per_minute"},
		{"int as exponent", `{"total_active_users":1e3}`, "total_active_users"},
		{"int overflow", `{"total_active_users":99999999999999999999}`, "total_active_users"},
		{"bool as string", `{"suspended":"yes"}`, "suspended"},
		{"bool as number", `{"queue_all":1}`, "queue_all"},
		{"duration as string", `{"session_duration":"5"}`, "session_duration"},
		{"duration as object", `{"queue_hold_seconds":{}}`, "queue_hold_seconds"},
		{"events as object", `{"events":{}}`, "events"},
		{"event as number", `{"events":[1]}`, "events[0]"},
		{"event as null", ev(``)[:len(ev(``))-4] + `null]}`, "events[1]"},
		{"event name as number", ev(`"name":7`), "events[1].name"},
		{"event bool as string", ev(`"name":"b","disable_session_renewal":"no"`), `events["b"].disable_session_renewal`},
		{"event int as bool", ev(`"name":"b","total_active_users":true`), `events["b"].total_active_users`},
		{"negative duration", `{"session_duration":-1}`, "session_duration"},
		{"negative fraction", `{"queue_hold_seconds":-0.001}`, "queue_hold_seconds"},
		{"negative event duration", ev(`"name":"b","session_duration":-5`), `events["b"].session_duration`},
		{"NaN", `{"session_duration":NaN}`, ""},
		{"NaN as string", `{"session_duration":"NaN"}`, "session_duration"},
		{"Infinity", `{"refresh_interval_seconds":Infinity}`, ""},
		{"beyond float64", `{"session_duration":1e400}`, "session_duration"},
		{"beyond float64, negative", `{"session_duration":-1e400}`, "session_duration"},
		{"beyond a duration", `{"max_session_duration":1e300}`, "max_session_duration"},
		{"just beyond a duration", `{"typical_session_seconds":9223372036.855}`, "typical_session_seconds"},
		{"beyond a duration in an event", ev(`"name":"b","session_duration":153722868`), `events["b"].session_duration`},
		{"time not RFC 3339", ev(`"name":"b","event_start_time":"2026-03-01 09:00"`), `events["b"].event_start_time`},
		{"time without zone", ev(`"name":"b","event_end_time":"2026-03-01T09:00:00"`), `events["b"].event_end_time`},
		{"time as number", ev(`"name":"b","event_end_time":1767258000`), `events["b"].event_end_time`},
		{"time empty", ev(`"name":"b","prequeue_start_time":""`), `events["b"].prequeue_start_time`},
		{"time past 9999 in UTC", ev(`"name":"b","event_end_time":"9999-12-31T23:30:00-01:00"`), `events["b"].event_end_time`},
		{"time before 0000 in UTC", ev(`"event_start_time":"0000-01-01T00:30:00+01:00"`), `events[1].event_start_time`},
		{"bad method", `{"queueing_method":"lifo"}`, "queueing_method"},
		{"method in capitals", `{"queueing_method":"FIFO"}`, "queueing_method"},
		{"method as number", `{"queueing_method":1}`, "queueing_method"},
		{"event's bad method", ev(`"name":"b","queueing_method":"priority"`), `events["b"].queueing_method`},
		{"messages as string", `{"messages":"hello"}`, "messages"},
		{"messages as array", `{"messages":["hello"]}`, "messages"},
		{"a message as number", `{"messages":{"en":"a","ja":5}}`, `messages["ja"]`},
		{"a message as null", `{"messages":{"en":null}}`, `messages["en"]`},
		{"sold out as string", `{"close_when_sold_out":"yes"}`, "close_when_sold_out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DecodeConfig([]byte(tc.doc))
			wantDocError(t, err, tc.field)
			if !sameConfig(c, Config{}) {
				t.Errorf("with an error, a config: %+v", c)
			}
		})
	}
}

func TestPatchConfig(t *testing.T) {
	base := filled(t, fullConfig())
	newEvent := Event{Name: "new", Start: jsonStart, End: jsonStart.Add(time.Hour)}
	for _, tc := range []struct {
		name, patch string
		want        func(*Config)
	}{
		{"nothing", `{}`, func(*Config) {}},
		{"one field", `{"total_active_users":500}`, func(c *Config) { c.TotalActiveUsers = 500 }},
		{"fractional minutes", `{"session_duration":0.5,"queueing_method":"random"}`, func(c *Config) {
			c.SessionDuration, c.QueueingMethod = 30*time.Second, Random
		}},
		{"null a required field", `{"total_active_users":null}`, func(c *Config) { c.TotalActiveUsers = 0 }},
		{"null an optional field", `{"queue_hold_seconds":null,"suspended":null}`, func(c *Config) { c.QueueHold, c.Suspended = 0, false }},
		{"null an unknown field", `{"colour":null}`, func(*Config) {}},
		{"null events", `{"events":null}`, func(c *Config) { c.Events = nil }},
		{"no events", `{"events":[]}`, func(c *Config) { c.Events = nil }},
		{"replace events", `{"events":[{"name":"new","event_start_time":"2026-03-01T09:00:00Z","event_end_time":"2026-03-01T10:00:00Z","queueing_method":null}]}`,
			func(c *Config) { c.Events = []Event{newEvent} }},
		// Messages are an object: merged by language (RFC 7396), not replaced.
		{"one message changed", `{"messages":{"ja":"締め切りました"}}`, func(c *Config) { c.Messages["ja"] = "締め切りました" }},
		{"one message added, one removed", `{"messages":{"zh-Hans":"名额有限","en":null}}`, func(c *Config) {
			c.Messages["zh-Hans"] = "名额有限"
			delete(c.Messages, "en")
		}},
		{"every message removed", `{"messages":null}`, func(c *Config) { c.Messages = nil }},
		{"the last message removed", `{"messages":{"en":null,"ja":null}}`, func(c *Config) { c.Messages = nil }},
		{"sold out off", `{"close_when_sold_out":false}`, func(c *Config) { c.CloseWhenSoldOut = false }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := base
			want.Events = slices.Clone(base.Events)
			want.Messages = maps.Clone(base.Messages)
			tc.want(&want)
			got, err := PatchConfig(base, []byte(tc.patch))
			if err != nil {
				t.Fatal(err)
			}
			if !sameConfig(got, want) {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
		})
	}

	// Nulled, a required field is zero and Validate names it; an optional one takes its default.
	c, err := PatchConfig(base, []byte(`{"total_active_users":null}`))
	if err != nil {
		t.Fatal(err)
	}
	if ce, ok := errors.AsType[*ConfigError](c.Validate()); !ok || ConfigJSONField(ce.Field) != "total_active_users" {
		t.Errorf("Validate after nulling total_active_users: %v", c.Validate())
	}
	c, err = PatchConfig(base, []byte(`{"queue_hold_seconds":null}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := filled(t, c).QueueHold; got != 5*time.Minute {
		t.Errorf("queue_hold_seconds nulled: QueueHold %v, want the default 5m", got)
	}

	for _, tc := range []struct {
		name, patch, field string
	}{
		{"array", `[]`, ""},
		{"null", `null`, ""},
		{"number", `5`, ""},
		{"malformed", `{"suspended":`, ""},
		{"trailing data", `{} x`, ""},
		{"too large", `{"suspended":true` + strings.Repeat(" ", MaxConfigJSON) + `}`, ""},
		{"unknown field", `{"colour":1}`, "colour"},
		{"wrong type", `{"total_active_users":"x"}`, "total_active_users"},
		{"object for a number", `{"session_duration":{"minutes":null}}`, "session_duration"},
		{"events as object", `{"events":{"a":1}}`, "events"},
		{"negative", `{"arrival_grace_seconds":-3}`, "arrival_grace_seconds"},
		{"unknown field in an event", `{"events":[{"name":"a","bad":1}]}`, `events["a"].bad`},
		{"a message as object", `{"messages":{"en":{"text":"x"}}}`, `messages["en"]`},
		{"messages as array", `{"messages":["x"]}`, "messages"},
	} {
		t.Run("error/"+tc.name, func(t *testing.T) {
			_, err := PatchConfig(base, []byte(tc.patch))
			wantDocError(t, err, tc.field)
		})
	}
}

func TestConfigJSONField(t *testing.T) {
	for _, tc := range []struct{ goField, want string }{
		{"TotalActiveUsers", "total_active_users"},
		{"NewUsersPerMinute", "new_users_per_minute"},
		{"SessionDuration", "session_duration"},
		{"RenewInterval", "renew_interval_seconds"},
		{"RefreshInterval", "refresh_interval_seconds"},
		{"QueueHold", "queue_hold_seconds"},
		{"ArrivalGrace", "arrival_grace_seconds"},
		{"TypicalSession", "typical_session_seconds"},
		{"MaxSessionDuration", "max_session_duration"},
		{"QueueingStatusCode", "queueing_status_code"},
		{"Events", "events"},
		{`Events["x"].SessionDuration`, `events["x"].session_duration`},
		{`Events["x"].Start`, `events["x"].event_start_time`},
		{`Events["x"].End`, `events["x"].event_end_time`},
		{`Events["x"].PrequeueStart`, `events["x"].prequeue_start_time`},
		{`Events["x"].ShuffleAtEventStart`, `events["x"].shuffle_at_event_start`},
		{`Events["x"].QueueingMethod`, `events["x"].queueing_method`},
		{`Events["a].b"].End`, `events["a].b"].event_end_time`},
		{"Events[0].Name", "events[0].name"},
		{"Events[2]", "events[2]"},
		{`Events["x"].NewThing`, `events["x"].new_thing`},
		{"Events[", "events["},
		{"Messages", "messages"},
		{`Messages["ja-JP"]`, `messages["ja-JP"]`},
		{"CloseWhenSoldOut", "close_when_sold_out"},
		{"FooBar", "foo_bar"},
		{"HTTPStatusCode", "http_status_code"},
		{"Retry2After", "retry2_after"},
		{"", ""},
	} {
		t.Run(tc.goField, func(t *testing.T) {
			if got := ConfigJSONField(tc.goField); got != tc.want {
				t.Errorf("ConfigJSONField(%q) = %q, want %q", tc.goField, got, tc.want)
			}
		})
	}
}

// Every field of Config and Event has a JSON field, named as ConfigJSONField names it: a
// field added to Config without a place in the form fails here.
func TestConfigJSONFieldCoversEveryField(t *testing.T) {
	doc, err := EncodeConfig(fullConfig())
	if err != nil {
		t.Fatal(err)
	}
	var top struct {
		Events []map[string]json.RawMessage `json:"events"`
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(doc, &keys); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(doc, &top); err != nil {
		t.Fatal(err)
	}
	for f := range reflect.TypeFor[Config]().Fields() {
		if _, ok := keys[ConfigJSONField(f.Name)]; !ok {
			t.Errorf("Config.%s has no JSON field (%q)", f.Name, ConfigJSONField(f.Name))
		}
	}
	full := top.Events[1] // the event with every override
	for f := range reflect.TypeFor[Event]().Fields() {
		name := ConfigJSONField(`Events["x"].` + f.Name)
		if _, ok := full[strings.TrimPrefix(name, `events["x"].`)]; !ok {
			t.Errorf("Event.%s has no JSON field (%q)", f.Name, name)
		}
	}
	if len(keys) != reflect.TypeFor[Config]().NumField() || len(full) != reflect.TypeFor[Event]().NumField() {
		t.Errorf("%d and %d JSON fields for %d and %d Go fields", len(keys), len(full),
			reflect.TypeFor[Config]().NumField(), reflect.TypeFor[Event]().NumField())
	}
}

// checkAccepted checks that c, an accepted config, encodes, and decodes back to itself.
func checkAccepted(t *testing.T, c Config) {
	doc, err := EncodeConfig(c)
	if err != nil {
		t.Fatalf("EncodeConfig of an accepted config: %v", err)
	}
	if len(doc) > MaxConfigJSON { // written out in full, a compact document may grow past it
		return
	}
	c2, err := DecodeConfig(doc)
	if err != nil {
		t.Fatalf("DecodeConfig(%s): %v", doc, err)
	}
	if !sameConfig(c2, c) {
		t.Fatalf("re-encoded and decoded:\n got %+v\nwant %+v", c2, c)
	}
	if doc2, _ := EncodeConfig(c2); string(doc2) != string(doc) {
		t.Fatalf("encoded again:\n got %s\nwant %s", doc2, doc)
	}
}

func fuzzSeeds(f *testing.F) {
	for _, c := range roundTripConfigs(f) {
		doc, err := EncodeConfig(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(doc)
	}
	for _, s := range []string{`{}`, `{"events":[]}`, `{"session_duration":0.5,"queueing_method":"random","events":null}`,
		`{"events":[{"name":"x","event_start_time":"2026-03-01T10:00:00.5+01:00","session_duration":1e-5,"disable_session_renewal":true}]}`} {
		f.Add([]byte(s))
	}
}

func FuzzDecodeConfig(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeConfig(data)
		if err != nil {
			if _, ok := errors.AsType[*ConfigError](err); !ok || !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v (%T), want a *ConfigError wrapping ErrConfig", err, err)
			}
			return
		}
		checkAccepted(t, c)
	})
}

func FuzzPatchConfig(f *testing.F) {
	fuzzSeeds(f)
	for _, s := range []string{`{"total_active_users":null}`, `{"events":[{"name":"n","queueing_method":null}]}`, `{"a":{"b":null}}`} {
		f.Add([]byte(s))
	}
	base := filled(f, fullConfig())
	f.Fuzz(func(t *testing.T, patch []byte) {
		c, err := PatchConfig(base, patch)
		if err != nil {
			if _, ok := errors.AsType[*ConfigError](err); !ok || !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v (%T), want a *ConfigError wrapping ErrConfig", err, err)
			}
			return
		}
		checkAccepted(t, c)
		if same, err := PatchConfig(c, []byte(`{}`)); err == nil && !sameConfig(same, c) {
			t.Fatalf("an empty patch changed %+v to %+v", c, same)
		}
	})
}

// A room that uses neither a message nor the sold-out setting stores a document the
// previous release reads: it refuses fields it does not know, and these are the ones it
// knew.
func TestDocumentReadableByThePreviousRelease(t *testing.T) {
	previous := []string{"total_active_users", "new_users_per_minute", "allow_rate_above_capacity", "session_duration",
		"disable_session_renewal", "renew_interval_seconds", "max_session_duration", "queueing_method", "queue_all",
		"queue_all_ends_sessions", "suspended", "refresh_interval_seconds", "queueing_status_code", "queue_hold_seconds",
		"arrival_grace_seconds", "typical_session_seconds", "events"}
	doc, err := EncodeConfig(Config{TotalActiveUsers: 10, NewUsersPerMinute: 10, Messages: map[string]string{}})
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(doc, &fields); err != nil {
		t.Fatal(err)
	}
	for k := range fields {
		if !slices.Contains(previous, k) {
			t.Errorf("the document has %q, which the previous release refuses: %s", k, doc)
		}
	}
	doc, err = EncodeConfig(Config{TotalActiveUsers: 10, NewUsersPerMinute: 10,
		Messages: map[string]string{"en": "Booking opens Monday at 9:00."}, CloseWhenSoldOut: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), `"close_when_sold_out":true`) || !strings.Contains(string(doc), `"messages":{"en":"Booking opens Monday at 9:00."}`) {
		t.Fatalf("the fields in use are written: %s", doc)
	}
}

// A patch nested deeper than any setting is refused at once, not merged level by level (one
// 9,990 levels deep took 4 s of CPU).
func TestPatchTooDeep(t *testing.T) {
	deep := `{"messages":` + strings.Repeat(`{"a":`, 9_000) + `"x"` + strings.Repeat(`}`, 9_000) + `}`
	_, err := PatchConfig(Config{TotalActiveUsers: 1, NewUsersPerMinute: 1}, []byte(deep))
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "nest") {
		t.Fatalf("a patch 9,000 deep: %v, want an error saying it nests too deep", err)
	}
	if _, err := PatchConfig(Config{TotalActiveUsers: 1, NewUsersPerMinute: 1}, []byte(`{"messages":{"ja":"こんにちは"}}`)); err != nil {
		t.Fatalf("a message patch: %v", err)
	}
}
