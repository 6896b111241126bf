package waitingroom_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/waitingroom-go/waitingroom"
	"github.com/waitingroom-go/waitingroom/store"
	"github.com/waitingroom-go/waitingroom/store/memory"
	"github.com/waitingroom-go/waitingroom/store/redis"
	"golang.org/x/text/language"
)

// Every broken rule is one *ConfigError naming the field, from Validate and from New alike.
func TestConfigErrorsNameTheField(t *testing.T) {
	ok := waitingroom.Config{TotalActiveUsers: 10, NewUsersPerMinute: 5}
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		field string
		f     func(*waitingroom.Config)
	}{
		{"TotalActiveUsers", func(c *waitingroom.Config) { c.TotalActiveUsers = 0 }},
		{"NewUsersPerMinute", func(c *waitingroom.Config) { c.NewUsersPerMinute = -1 }},
		{"NewUsersPerMinute", func(c *waitingroom.Config) { c.NewUsersPerMinute = 11 }},
		{"SessionDuration", func(c *waitingroom.Config) { c.SessionDuration = time.Second }},
		{"QueueingMethod", func(c *waitingroom.Config) { c.QueueingMethod = 9 }},
		{"RenewInterval", func(c *waitingroom.Config) { c.RenewInterval = time.Hour }},
		{"RefreshInterval", func(c *waitingroom.Config) { c.RefreshInterval = time.Hour }},
		{"QueueHold", func(c *waitingroom.Config) { c.QueueHold = 10 * time.Second }},
		{"ArrivalGrace", func(c *waitingroom.Config) { c.ArrivalGrace = time.Hour }},
		{"QueueingStatusCode", func(c *waitingroom.Config) { c.QueueingStatusCode = 500 }},
		{"TypicalSession", func(c *waitingroom.Config) { c.TypicalSession = -time.Second }},
		{"MaxSessionDuration", func(c *waitingroom.Config) { c.MaxSessionDuration = time.Minute }},
		{`Events["a"].SessionDuration`, func(c *waitingroom.Config) {
			c.MaxSessionDuration = 10 * time.Minute
			c.Events = []waitingroom.Event{{Name: "a", Start: start, End: start.Add(time.Hour), SessionDuration: 20 * time.Minute}}
		}},
		{`Events[0].Name`, func(c *waitingroom.Config) {
			c.Events = []waitingroom.Event{{Start: start, End: start.Add(time.Hour)}}
		}},
		{`Events["a"].End`, func(c *waitingroom.Config) {
			c.Events = []waitingroom.Event{{Name: "a", Start: start, End: start.Add(time.Second)}}
		}},
		{`Events["a"].NewUsersPerMinute`, func(c *waitingroom.Config) {
			c.Events = []waitingroom.Event{{Name: "a", Start: start, End: start.Add(time.Hour), TotalActiveUsers: 1, NewUsersPerMinute: 2}}
		}},
		{"Messages", func(c *waitingroom.Config) {
			c.Messages = map[string]string{}
			for _, l := range []string{"en", "ja", "zh", "ko", "fr", "de", "es", "it", "pt", "nl", "sv"} {
				c.Messages[l] = "hello"
			}
		}},
		{`Messages["not a tag"]`, func(c *waitingroom.Config) { c.Messages = map[string]string{"en": "a", "not a tag": "b"} }},
		{`Messages[""]`, func(c *waitingroom.Config) { c.Messages = map[string]string{"": "b"} }},
		{`Messages["und"]`, func(c *waitingroom.Config) { c.Messages = map[string]string{"und": "b"} }},
		{`Messages["en"]`, func(c *waitingroom.Config) { c.Messages = map[string]string{"EN": "a", "en": "b"} }},
		{`Messages["ja"]`, func(c *waitingroom.Config) { c.Messages = map[string]string{"ja": ""} }},
		{`Messages["ja"]`, func(c *waitingroom.Config) { c.Messages = map[string]string{"ja": strings.Repeat("あ", 167)} }}, // 501 bytes
		{`Messages["en"]`, func(c *waitingroom.Config) { c.Messages = map[string]string{"en": "two\nlines"} }},
		{`Messages["en"]`, func(c *waitingroom.Config) { c.Messages = map[string]string{"en": "a bell \a"} }},
		{`Messages["en"]`, func(c *waitingroom.Config) { c.Messages = map[string]string{"en": "bad \xff UTF-8"} }},
		{`Events["b"].PrequeueStart`, func(c *waitingroom.Config) {
			c.Events = []waitingroom.Event{
				{Name: "a", Start: start, End: start.Add(time.Hour)},
				{Name: "b", PrequeueStart: start.Add(30 * time.Minute), Start: start.Add(2 * time.Hour), End: start.Add(3 * time.Hour)},
			}
		}},
	} {
		t.Run(tc.field, func(t *testing.T) {
			c := ok
			tc.f(&c)
			for name, err := range map[string]error{
				"Validate": c.Validate(),
				"New":      func() error { _, err := waitingroom.New("r", memory.New(), c); return err }(),
			} {
				var ce *waitingroom.ConfigError
				if !errors.As(err, &ce) || !errors.Is(err, waitingroom.ErrConfig) || ce.Field != tc.field {
					t.Errorf("%s: %v (%#v), want a ConfigError for %s", name, err, ce, tc.field)
				}
			}
		})
	}
	if err := ok.Validate(); err != nil {
		t.Errorf("a valid config: %v", err)
	}
}

// A typed nil store (a constructor's error dropped) is refused at New, not at the first
// request; the room ID error is the stores' own.
func TestNewRefusesANilStore(t *testing.T) {
	cfg := waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1}
	var rs *redis.Store
	for name, s := range map[string]store.Store{"nil": nil, "typed nil": rs} {
		if _, err := waitingroom.New("r", s, cfg); !errors.Is(err, waitingroom.ErrConfig) {
			t.Errorf("%s store: %v, want ErrConfig", name, err)
		}
	}
	if _, err := waitingroom.New("a b", memory.New(), cfg); !errors.Is(err, store.ErrInvalidRoom) || !errors.Is(err, waitingroom.ErrInvalidRoom) {
		t.Errorf("invalid ID: %v, want the one ErrInvalidRoom", err)
	}
}

// The settings Config returns, defaults filled in, are valid settings that mean the same:
// an event with a shorter session than the default RenewInterval included.
func TestConfigRoundTrip(t *testing.T) {
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	cfg := waitingroom.Config{TotalActiveUsers: 10, NewUsersPerMinute: 10, Events: []waitingroom.Event{
		{Name: "short", Start: start, End: start.Add(time.Hour), SessionDuration: 30 * time.Second},
	}}
	r, err := waitingroom.New("rt", memory.New(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	back := r.Config()
	if err := back.Validate(); err != nil {
		t.Fatalf("Config() does not validate again: %v", err)
	}
	doc, err := waitingroom.EncodeConfig(back)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := waitingroom.DecodeConfig(doc)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := waitingroom.New("rt", memory.New(), dec)
	if err != nil {
		t.Fatalf("the decoded settings: %v", err)
	}
	if !reflect.DeepEqual(r2.Events(), r.Events()) || r2.Config().RenewInterval != back.RenewInterval {
		t.Errorf("the settings given back differ: %+v, want %+v", r2.Config(), back)
	}
}

func TestPassthroughEventInPassthroughRoom(t *testing.T) {
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	pass := waitingroom.Passthrough
	cfg := waitingroom.Config{TotalActiveUsers: 10, NewUsersPerMinute: 10, QueueingMethod: waitingroom.Passthrough,
		Events: []waitingroom.Event{{Name: "open", Start: start, End: start.Add(time.Hour), QueueingMethod: &pass}}}
	var ce *waitingroom.ConfigError
	if err := cfg.Validate(); !errors.As(err, &ce) || ce.Field != `Events["open"].QueueingMethod` {
		t.Fatalf("Validate: %v, want a ConfigError on the event's QueueingMethod", err)
	}
	fifo := waitingroom.FIFO
	cfg.Events[0].QueueingMethod = &fifo
	if err := cfg.Validate(); err != nil {
		t.Errorf("a FIFO event in a passthrough room: %v", err)
	}
}

// A room's message: its tags in canonical form, read in the visitor's language, else in
// English, else in the first language by tag; the room keeps its own copy.
func TestMessageIn(t *testing.T) {
	texts := map[string]string{"ja-jp": "お知らせ", "en-GB": "Notice", "zh-Hans": "通知", "fr": "Avis"}
	r, err := waitingroom.New("r", memory.New(), waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1, Messages: texts})
	if err != nil {
		t.Fatal(err)
	}
	texts["fr"] = "changed by the caller"
	got := r.Config().Messages
	want := map[string]string{"ja-JP": "お知らせ", "en-GB": "Notice", "zh-Hans": "通知", "fr": "Avis"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Config().Messages = %v, want %v (canonical tags, the room's own copy)", got, want)
	}
	got["fr"] = "changed again"
	if r.Config().Messages["fr"] != "Avis" {
		t.Errorf("a change to Config's map reached the room")
	}
	msg := r.Message()
	for _, tc := range []struct{ tag, text, lang string }{
		{"ja", "お知らせ", "ja-JP"},
		{"en-US", "Notice", "en-GB"},
		{"zh", "通知", "zh-Hans"},
		{"zh-Hant", "Notice", "en-GB"}, // Traditional is not Simplified: English
		{"ko", "Notice", "en-GB"},
		{"fr-CA", "Avis", "fr"},
	} {
		text, lang := msg.In(language.MustParse(tc.tag))
		if text != tc.text || lang.String() != tc.lang {
			t.Errorf("In(%s) = %q (%v), want %q (%s)", tc.tag, text, lang, tc.text, tc.lang)
		}
	}
	noEnglish, err := waitingroom.New("r2", memory.New(), waitingroom.Config{TotalActiveUsers: 1, NewUsersPerMinute: 1,
		Messages: map[string]string{"zh-Hans": "通知", "ja": "お知らせ"}})
	if err != nil {
		t.Fatal(err)
	}
	if text, lang := noEnglish.Message().In(language.Korean); text != "お知らせ" || lang != language.Japanese {
		t.Errorf("no English: In(ko) = %q (%v), want the first by tag, ja", text, lang)
	}
	var none waitingroom.Message
	if text, lang := none.In(language.English); text != "" || lang != language.Und || none.Len() != 0 || none.Texts() != nil {
		t.Errorf("the zero Message: %q %v", text, lang)
	}
}
